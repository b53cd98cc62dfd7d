#!/usr/bin/env bash
# What the access log costs in requests/s: the same replicas behind ringlb with the log off and
# with every connection logged to a file (JSON), measured by the harness with the paths' rounds
# interleaved, so machine drift hits every configuration alike; a second ringlb with the log
# off shows the noise floor.
#
#   loadtest/access-log-cost.sh [rounds=10] [duration=20s]
#       env: CONNS=32, MODE=connect (a new connection per request: the log's worst case) or
#       MODE=max (keep-alive requests, closed loop: one line per connection, not per request)
#
# Prints, per configuration, the median over rounds of its req/s relative to `off` in the same
# round, the spread of those ratios (min..max), ringlb's CPU per request, and the lines the
# logging instance wrote and dropped. Only loopback addresses are used.
set -euo pipefail
cd "$(dirname "$0")/.."
. loadtest/lib.sh
ROUNDS=${1:-10}
DURATION=${2:-20s}
CONNS=${CONNS:-32}
MODE=${MODE:-connect}

setup_run
out=target/loadtest/access-log-cost-$MODE-$(date +%Y%m%d-%H%M%S)  # kept after the run
start_replicas 3

targets=()
declare -A port pid admin_port
start_ringlb() { # name access-log-path
  local a; a=$(free_port)
  # From a process substitution, not a pipe: start_instance must run in this shell to record
  # the port and pid.
  start_instance "$1" "$BIN/ringlb" < <(
    printf 'workers = 1\n[health_check]\ninterval = "1s"\n'
    printf '[admin]\nlisten = "127.0.0.1:%s"\n' "$a"
    printf '[access_log]\npath = "%s"\nformat = "json"\n' "$2"
    replica_targets
  )
  admin_port[$1]=$a
  targets+=(--target "$1=127.0.0.1:${port[$1]}")
}
start_ringlb off off
start_ringlb off-again off
start_ringlb file "$tmp/access.log"

declare -A before
for name in "${!pid[@]}"; do before[$name]=$(cpu_ticks "${pid[$name]}"); done
"$BIN/loadtest" --mode "$MODE" --connections "$CONNS" --rounds "$ROUNDS" --duration "$DURATION" \
  --out "$out" "${targets[@]}" 2>&1 | tee "$tmp/run.txt"

echo
for name in off off-again file; do
  echo "$name $(( $(cpu_ticks "${pid[$name]}") - before[$name] ))"
done >"$tmp/cpu.txt"
metric() { # name family
  curl -s "http://127.0.0.1:${admin_port[$1]}/metrics" | awk -v f="$2" '$1 == f {print $2}'
}
written=$(metric file ringlb_access_log_written_total)
dropped=$(metric file ringlb_access_log_dropped_total)
lines=$(wc -l <"$tmp/access.log")
python3 - "$tmp/run.txt" "$tmp/cpu.txt" "$out/summary.json" "$(getconf CLK_TCK)" <<'PY'
import json, statistics, sys
run, cpu, summary, hz = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rounds = {}
for line in open(run):
    f = line.split()
    if len(f) >= 7 and f[0] == "round" and f[6] in ("conn/s", "req/s"):
        rounds.setdefault(f[1], {})[f[2]] = float(f[5].replace(",", ""))
reqs = {p["name"]: p["requests"] for p in json.load(open(summary))["paths"]}
ticks = dict((n, int(t)) for n, t in (l.split() for l in open(cpu)))
base_cpu = ticks["off"] / hz / reqs["off"]
print(f"{'path':10} {'median req/s vs off':>20} {'min..max':>13} {'ringlb CPU/req':>15} {'vs off':>7}")
for name in ["off", "off-again", "file"]:
    ratios = [r[name] / r["off"] for r in rounds.values() if name in r and "off" in r]
    per_req = ticks[name] / hz / reqs[name]
    spread = f"{min(ratios):.3f}..{max(ratios):.3f}"
    print(f"{name:10} {statistics.median(ratios):20.3f} {spread:>13} {per_req * 1e6:12.1f} µs {per_req / base_cpu:7.3f}")
PY
echo "file: $lines lines in the log, ringlb_access_log_written_total $written, ringlb_access_log_dropped_total $dropped"
