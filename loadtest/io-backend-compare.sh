#!/usr/bin/env bash
# The epoll backend against io_uring: the same ringlb build twice, one with io_backend = "epoll",
# one with io_backend = "io_uring", side by side with HAProxy (when installed) and the direct
# path, all in front of the same three replicas, measured by one `loadtest` run whose rounds
# interleave the paths (so drift on the machine hits all of them alike).
#
#   loadtest/io-backend-compare.sh [mode=max] [duration=6s]   (env: CONNS=32 WORKERS=1)
#
# mode is loadtest's --mode (rate, max, bulk, connect). Only loopback addresses are used;
# everything stops on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-max}
DURATION=${2:-6s}
CONNS=${CONNS:-32}
WORKERS=${WORKERS:-1}

# shellcheck source=loadtest/lib.sh
. loadtest/lib.sh
setup_run
start_replicas 3

targets=(--target "direct=127.0.0.1:${replicas[0]}")
for backend in epoll io_uring; do
  port=$(free_port)
  {
    printf 'listen = "127.0.0.1:%s"\nworkers = %s\nio_backend = "%s"\n' "$port" "$WORKERS" "$backend"
    printf '[admin]\nenabled = false\n[health_check]\ninterval = "1s"\n'
    replica_targets
  } >"$tmp/ringlb-$backend.toml"
  RUST_LOG=warn "$BIN/ringlb" --config "$tmp/ringlb-$backend.toml" >"$tmp/ringlb-$backend.log" 2>&1 &
  pids+=($!)
  wait_port "$port"
  targets+=(--target "ringlb-$backend=127.0.0.1:$port")
done

if command -v haproxy >/dev/null; then
  port=$(free_port)
  {
    printf 'global\n    nbthread %s\n    maxconn 4096\n' "$WORKERS"
    printf 'defaults\n    mode tcp\n    balance roundrobin\n    timeout connect 5s\n'
    printf '    timeout client 60s\n    timeout server 60s\n'
    printf 'frontend lt\n    bind 127.0.0.1:%s\n    default_backend replicas\n' "$port"
    printf 'backend replicas\n    option httpchk GET /healthz\n'
    for p in "${replicas[@]}"; do
      printf '    server r%s 127.0.0.1:%s check inter 1s\n' "$p" "$p"
    done
  } >"$tmp/haproxy.cfg"
  haproxy -f "$tmp/haproxy.cfg" -db >"$tmp/haproxy.log" 2>&1 & pids+=($!)
  wait_port "$port"
  targets+=(--target "haproxy=127.0.0.1:$port")
else
  echo "haproxy not installed: comparing without it" >&2
fi

"$BIN/loadtest" --mode "$MODE" --connections "$CONNS" --workers "$WORKERS" \
  --duration "$DURATION" "${targets[@]}"
