#!/usr/bin/env bash
# What the metrics cost: the same ringlb build twice, side by side, one with `[admin] enabled =
# false`, one with the admin listener on and /metrics scraped every second, both in front of the
# same replicas, measured by `loadtest --mode max` in interleaved rounds (so drift on the machine
# hits both alike). Prints each instance's req/s per round and the ratio on/off, and the CPU
# time each ringlb process used per request (every thread, from /proc/PID/task/*/schedstat):
# on a shared machine throughput swings with whatever else runs, CPU per request much less.
#
#   loadtest/metrics-cost.sh [duration=30s] [rounds=10]
#       env: CONNS=32 WORKERS=1 RELAY=copy MODE=max (or rate, with RATE=4000)
#
# CONTROL=1 measures the noise floor instead: the second instance has its admin listener off
# too (named `control`, nothing scraped), so any on/off difference is the machine's.
#
# Counting itself is always on; to measure it too, set BASELINE=path/to/ringlb, a build from
# before the metrics (e.g. `git worktree add /tmp/base <commit> && cargo build --release` there):
# it then runs instead of the admin-off instance, as path `baseline`, with no [admin] table.
#
# Needs curl (the scraper). Only loopback addresses are used; everything stops on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
. loadtest/lib.sh
DURATION=${1:-30s}
ROUNDS=${2:-10}
CONNS=${CONNS:-32}
WORKERS=${WORKERS:-1}
RELAY=${RELAY:-copy}
BASELINE=${BASELINE:-}
CONTROL=${CONTROL:-}
MODE=${MODE:-max}
RATE=${RATE:-4000}
command -v curl >/dev/null || { echo "curl not found: apt-get install curl" >&2; exit 1; }

setup_run
out=target/loadtest/metrics-cost-$(date +%Y%m%d-%H%M%S)
start_replicas 3

# $1 = name, $2 = listen port, $3 = the [admin] table, $4 = the binary.
start_ringlb() {
  {
    printf 'listen = "127.0.0.1:%s"\nworkers = %s\nrelay = "%s"\n' "$2" "$WORKERS" "$RELAY"
    printf '[health_check]\ninterval = "1s"\n%s\n' "$3"
    replica_targets
  } >"$tmp/$1.toml"
  RUST_LOG=warn "$4" --config "$tmp/$1.toml" >"$tmp/$1.log" 2>&1 & pids+=($!)
  wait_port "$2"
}
off=$(free_port); on=$(free_port); admin=$(free_port)
if [ -n "$BASELINE" ]; then
  base=baseline
  start_ringlb baseline "$off" "" "$BASELINE"
else
  base=admin-off
  start_ringlb admin-off "$off" $'[admin]\nenabled = false' "$BIN/ringlb"
fi
pid_base=${pids[-1]}
if [ -n "$CONTROL" ]; then
  second=control
  start_ringlb control "$on" $'[admin]\nenabled = false' "$BIN/ringlb"
else
  second=admin-on
  start_ringlb admin-on "$on" "$(printf '[admin]\nlisten = "127.0.0.1:%s"' "$admin")" "$BIN/ringlb"
fi
pid_on=${pids[-1]}

# Nanoseconds on CPU of every thread of process $1.
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{ ns += $1 } END { printf "%.0f", ns }'; }
if [ -z "$CONTROL" ]; then
  wait_port "$admin"
  # The scraper: one GET /metrics a second, counted.
  ( n=0; while sleep 1; do
      curl -sf -o /dev/null "http://127.0.0.1:$admin/metrics" && n=$((n + 1)) && echo "$n" >"$tmp/scrapes"
    done ) & pids+=($!)
fi

# No warm-up: every request the CPU time covers is counted in summary.json.
cpu_before="$(cpu_ns "$pid_base") $(cpu_ns "$pid_on")"
"$BIN/loadtest" --mode "$MODE" --rate "$RATE" --connections "$CONNS" --workers "$WORKERS" \
  --duration "$DURATION" --rounds "$ROUNDS" --warmup 0s --out "$out" \
  --target "$base=127.0.0.1:$off" --target "$second=127.0.0.1:$on"

cpu_after="$(cpu_ns "$pid_base") $(cpu_ns "$pid_on")"
echo "ringlb pids $pid_base ($base) $pid_on ($second); CPU ns before: $cpu_before, after: $cpu_after"
echo "scrapes of /metrics during the run: $(cat "$tmp/scrapes" 2>/dev/null || echo 0)"
[ -n "$CONTROL" ] || echo "one scrape, idle, 5 tries (s): $(for _ in 1 2 3 4 5; do
  curl -s -o /dev/null -w '%{time_total} ' "http://127.0.0.1:$admin/metrics"; done)"
# Per round: requests counted in each path's interval (the .hlog holds one per round), so every
# ratio compares two slices measured a few seconds apart.
python3 - "$out" "$base" "$cpu_before" "$cpu_after" "$second" <<'PY'
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

off = list(rounds(f"{sys.argv[1]}/{sys.argv[2]}.hlog"))
second = sys.argv[5]
on = list(rounds(f"{sys.argv[1]}/{second}.hlog"))
ratios = [b / a for a, b in zip(off, on)]
print(f"{'round':>5} {sys.argv[2] + ' req/s':>16} {second + ' req/s':>16} {'ratio':>7}")
for i, (a, b, r) in enumerate(zip(off, on, ratios), 1):
    print(f"{i:>5} {a:>16,.0f} {b:>16,.0f} {r:>7.3f}")
sem = statistics.stdev(ratios) / len(ratios) ** 0.5 if len(ratios) > 1 else float("nan")
print(f"{second}/{sys.argv[2]}: median {statistics.median(ratios):.3f}, "
      f"mean {statistics.mean(ratios):.3f} ± {sem:.3f} (standard error), "
      f"whole run {sum(on) / sum(off):.3f} ({len(ratios)} rounds; results in {sys.argv[1]})")

import json
requests = {p["name"]: p["requests"] for p in json.load(open(f"{sys.argv[1]}/summary.json"))["paths"]}
before, after = (list(map(int, a.split())) for a in sys.argv[3:5])
per_request = [(b - a) / 1e3 / requests[name]
               for a, b, name in zip(before, after, [sys.argv[2], second])]
print(f"ringlb CPU per request: {sys.argv[2]} {per_request[0]:.2f} µs, {second} "
      f"{per_request[1]:.2f} µs, ratio {per_request[1] / per_request[0]:.3f}")
PY
