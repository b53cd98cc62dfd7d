#!/usr/bin/env bash
# What the metrics cost: the same ringlb build twice, side by side, one with `[admin] enabled =
# false`, one with the admin listener on and /metrics scraped every second, both in front of the
# same replicas, measured by `loadtest --mode max` in interleaved rounds (so drift on the machine
# hits both alike). Prints each instance's req/s and the ratio on/off.
#
#   loadtest/metrics-cost.sh [duration=30s] [rounds=10]   (env: CONNS=32 WORKERS=1 RELAY=copy)
#
# Needs curl (the scraper). Only loopback addresses are used; everything stops on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-30s}
ROUNDS=${2:-10}
CONNS=${CONNS:-32}
WORKERS=${WORKERS:-1}
RELAY=${RELAY:-copy}
command -v curl >/dev/null || { echo "curl not found: apt-get install curl" >&2; exit 1; }

cargo build --release -q -p ringlb -p loadtest
BIN=target/release
tmp=$(mktemp -d)
out=target/loadtest/metrics-cost-$(date +%Y%m%d-%H%M%S)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

# Ports below the ephemeral range, so no client socket of this run can take one meanwhile.
free_port() {
  python3 - <<'PY'
import random, socket
while True:
    p = random.randrange(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        s.close()
PY
}
wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on 127.0.0.1:$1" >&2; return 1
}

replicas=()
for _ in 1 2 3; do
  p=$(free_port); replicas+=("$p")
  "$BIN/loadtest" replica --listen "127.0.0.1:$p" >"$tmp/replica-$p.log" 2>&1 & pids+=($!)
done
for p in "${replicas[@]}"; do wait_port "$p"; done

# $1 = name, $2 = listen port, $3 = the [admin] table.
start_ringlb() {
  {
    printf 'listen = "127.0.0.1:%s"\nworkers = %s\nrelay = "%s"\n' "$2" "$WORKERS" "$RELAY"
    printf '[health_check]\ninterval = "1s"\n%s\n' "$3"
    for p in "${replicas[@]}"; do
      printf '[[targets]]\naddress = "127.0.0.1:%s"\nhealth_check_endpoint = "/healthz"\n' "$p"
    done
  } >"$tmp/$1.toml"
  RUST_LOG=warn "$BIN/ringlb" --config "$tmp/$1.toml" >"$tmp/$1.log" 2>&1 & pids+=($!)
  wait_port "$2"
}
off=$(free_port); on=$(free_port); admin=$(free_port)
start_ringlb admin-off "$off" $'[admin]\nenabled = false'
start_ringlb admin-on "$on" "$(printf '[admin]\nlisten = "127.0.0.1:%s"' "$admin")"
wait_port "$admin"

# The scraper: one GET /metrics a second, counted.
( n=0; while sleep 1; do
    curl -sf -o /dev/null "http://127.0.0.1:$admin/metrics" && n=$((n + 1)) && echo "$n" >"$tmp/scrapes"
  done ) & pids+=($!)

"$BIN/loadtest" --mode max --connections "$CONNS" --workers "$WORKERS" \
  --duration "$DURATION" --rounds "$ROUNDS" --out "$out" \
  --target "admin-off=127.0.0.1:$off" --target "admin-on=127.0.0.1:$on"

echo "scrapes of /metrics during the run: $(cat "$tmp/scrapes" 2>/dev/null || echo 0)"
# Per round: requests counted in each path's interval (the .hlog holds one per round), so every
# ratio compares two slices measured a few seconds apart.
python3 - "$out" <<'PY'
import base64, statistics, struct, sys, zlib

def count(encoded):
    """Total count of one HdrHistogram V2 compressed histogram."""
    raw = base64.b64decode(encoded)
    _cookie, length = struct.unpack(">ii", raw[:8])
    payload = zlib.decompress(raw[8:8 + length])
    _cookie, size = struct.unpack(">ii", payload[:8])
    data, total, i = payload[40:40 + size], 0, 0
    while i < len(data):
        value, shift = 0, 0
        while True:
            byte = data[i]; i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        total += max((value >> 1) ^ -(value & 1), 0)  # ZigZag; negatives are runs of zeros
    return total

def rounds(path):
    for line in open(path):
        if not line.startswith(("#", '"')):
            _start, length, _max, histogram = line.strip().split(",")
            yield count(histogram) / float(length)

off = list(rounds(f"{sys.argv[1]}/admin-off.hlog"))
on = list(rounds(f"{sys.argv[1]}/admin-on.hlog"))
ratios = [b / a for a, b in zip(off, on)]
print(f"{'round':>5} {'admin off req/s':>16} {'admin on req/s':>16} {'on/off':>7}")
for i, (a, b, r) in enumerate(zip(off, on, ratios), 1):
    print(f"{i:>5} {a:>16,.0f} {b:>16,.0f} {r:>7.3f}")
print(f"median on/off {statistics.median(ratios):.3f}, mean {statistics.mean(ratios):.3f}, "
      f"whole run {sum(on) / sum(off):.3f} ({len(ratios)} rounds; results in {sys.argv[1]})")
PY
