#!/usr/bin/env bash
# What `source` and `defer_accept` cost per connection, and that their absence costs nothing: a
# new connection per request (wrk with "Connection: close", so every request is an accept, a
# backend connect and two closes) through five ringlbs in front of one nginx, rounds interleaved
# with the order rotated:
#   before   BASELINE, a build from before `source` existed
#   after    this tree's build, neither key (must equal before: no system call added)
#   source   this tree's build, source = ["127.0.0.2"] (setsockopt + bind per backend socket)
#   defer    this tree's build, defer_accept = "5s" (wrk speaks at once: accepted with its request)
#   control  a second `after`: the same-run noise floor
# Prints per round and the median and mean ± sd of the per-round ratios of requests/s and of
# ringlb CPU (user + system, /proc/PID/stat) per request; then, with strace installed, the
# system calls per connection of each build over 2,000 connections (exact, unlike the timings).
#
#   BASELINE=/path/to/old/ringlb loadtest/connection-setup-cost.sh [rounds=10] [seconds=5]
#       env: CONNS=16 RELAY=copy IO_BACKEND=io_uring
#
# Needs wrk and nginx (apt-get install wrk nginx-light); strace optional. Loopback only; stops
# all on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
. loadtest/lib.sh
ROUNDS=${1:-10}
SECS=${2:-5}
CONNS=${CONNS:-16}
RELAY=${RELAY:-copy}
IO_BACKEND=${IO_BACKEND:-io_uring}
: "${BASELINE:?set BASELINE to the ringlb binary to compare against}"
for tool in wrk nginx; do
  command -v "$tool" >/dev/null || { echo "$tool not found: apt-get install wrk nginx-light" >&2; exit 1; }
done

setup_run
backend=$(free_port)
cat >"$tmp/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  server {
    listen 127.0.0.1:$backend;
    location / { return 200 "ok\n"; }
  }
}
CONF
nginx -p "$tmp" -c "$tmp/nginx.conf" -e "$tmp/nginx-error.log" >"$tmp/nginx.log" 2>&1 & pids+=($!)
wait_port "$backend"

declare -A port pid
# $1 = name, $2 = binary, $3 = extra top-level keys.
start_ringlb() {
  start_instance "$1" "$2" <<TOML
workers = 1
relay = "$RELAY"
io_backend = "$IO_BACKEND"
$3
[health_check]
interval = "1s"
[admin]
enabled = false
[[targets]]
address = "127.0.0.1:$backend"
health_check_endpoint = "/"
TOML
}
start_ringlb before "$BASELINE" ""
start_ringlb after "$BIN/ringlb" ""
start_ringlb source "$BIN/ringlb" 'source = ["127.0.0.2"]'
start_ringlb defer "$BIN/ringlb" 'defer_accept = "5s"'
start_ringlb control "$BIN/ringlb" ""
sleep 1.5 # the first health round

hz=$(getconf CLK_TCK)
paths=(before after source defer control)
declare -A rps cpu
echo "connection per request: wrk -t1 -c$CONNS -H 'Connection: close', ${SECS}s, relay $RELAY on $IO_BACKEND, nginx backend, $ROUNDS rounds, $(nproc) cores, $(uname -r)"
for r in $(seq 1 "$ROUNDS"); do
  order=("${paths[@]:$((r % 5))}" "${paths[@]:0:$((r % 5))}")
  for path in "${order[@]}"; do
    t0=$(cpu_ticks "${pid[$path]}")
    out=$(wrk -t1 -c"$CONNS" -d"${SECS}s" -H "Connection: close" "http://127.0.0.1:${port[$path]}/")
    t1=$(cpu_ticks "${pid[$path]}")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    errs=$(awk '/Non-2xx|Socket errors/' <<<"$out" | tr '\n' ' ')
    rps[$path,$r]=$(awk -v n="$reqs" -v s="$SECS" 'BEGIN{print n/s}')
    cpu[$path,$r]=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v n="$reqs" 'BEGIN{print t/hz*1e6/n}')
    printf 'round %2d  %-8s %8.0f conn/s  %6.2f µs CPU/connection  %s\n' "$r" "$path" \
      "${rps[$path,$r]}" "${cpu[$path,$r]}" "$errs"
  done
done

# Median, then mean ± sd, of the per-round ratio $2/$1 of metric array $3.
ratio() {
  local a=$1 b=$2 name=$3 vals=()
  local -n m=$name
  for r in $(seq 1 "$ROUNDS"); do
    vals+=("$(awk -v x="${m[$b,$r]}" -v y="${m[$a,$r]}" 'BEGIN{print x/y}')")
  done
  printf '%s\n' "${vals[@]}" | sort -g | awk '{v[NR]=$1; s+=$1; q+=$1*$1} END {
    med = (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2; m = s/NR; d = q/NR - m*m
    if (d < 0) d = 0; printf "%.3f; %.3f ± %.3f", med, m, sqrt(d) }'
}
median() {
  local path=$1 name=$2
  local -n m=$name
  for r in $(seq 1 "$ROUNDS"); do echo "${m[$path,$r]}"; done | sort -g |
    awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'
}
echo
printf '%-18s %-26s %-26s\n' "ratio" "conn/s (median; mean ± sd)" "CPU/connection"
printf '%-18s %-26s %-26s\n' "after / before" "$(ratio before after rps)" "$(ratio before after cpu)"
printf '%-18s %-26s %-26s\n' "source / after" "$(ratio after source rps)" "$(ratio after source cpu)"
printf '%-18s %-26s %-26s\n' "defer / after" "$(ratio after defer rps)" "$(ratio after defer cpu)"
printf '%-18s %-26s %-26s\n' "control / after" "$(ratio after control rps)" "$(ratio after control cpu)"
for path in "${paths[@]}"; do
  printf 'median %-8s %8.0f conn/s  %6.2f µs CPU/connection\n' "$path" "$(median "$path" rps)" "$(median "$path" cpu)"
done

command -v strace >/dev/null || { echo "strace not installed: no system call counts"; exit 0; }
echo
echo "system calls per connection (strace -c -f while wrk -c1 opens connections one at a time for 3 s):"
for path in before after source defer; do
  strace -qq -c -f -o "$tmp/strace-$path.txt" -p "${pid[$path]}" & tracer=$!
  sleep 0.5
  out=$(wrk -t1 -c1 -d3s -H "Connection: close" "http://127.0.0.1:${port[$path]}/")
  kill -INT "$tracer"; wait "$tracer" 2>/dev/null || true
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  # Health probes (one a second) are counted too: a few against thousands of connections.
  python3 - "$tmp/strace-$path.txt" "$path" "$n" <<'PY'
import sys
path, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
calls, total = {}, 0
for line in open(path):
    f = line.split()
    if len(f) >= 5 and f[0][0].isdigit():
        if f[-1] == "total":
            total = int(f[3])
        else:
            calls[f[-1]] = int(f[3])
shown = ["io_uring_enter", "epoll_wait", "accept4", "socket", "setsockopt", "bind", "connect",
         "close", "shutdown", "getpeername", "getsockname"]
per = "  ".join(f"{k} {calls[k] / n:.2f}" for k in shown if k in calls)
print(f"{name:8} {n} connections: {total / n:.2f} calls each ({per})")
PY
done
