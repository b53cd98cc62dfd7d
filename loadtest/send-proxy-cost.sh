#!/usr/bin/env bash
# What send_proxy costs in connections/s: the same replicas behind ringlb without a PROXY header
# and with v1 / v2 headers (one listener bound to 127.0.0.1, one to 0.0.0.0, which asks the
# kernel for the local address per connection), measured by the harness's connect mode with the
# paths' rounds interleaved, so machine drift hits every configuration alike; a second ringlb
# without headers shows the noise floor.
#
#   loadtest/send-proxy-cost.sh [rounds=10] [duration=20s]      (env: CONNS=32)
#
# The replicas skip the PROXY header ringlb sends. Only loopback addresses are used.
set -euo pipefail
cd "$(dirname "$0")/.."
. loadtest/lib.sh
ROUNDS=${1:-10}
DURATION=${2:-20s}
CONNS=${CONNS:-32}

setup_run
out=target/loadtest/send-proxy-cost-$(date +%Y%m%d-%H%M%S)  # kept after the run
start_replicas 3

targets=()
declare -A ringlb_pid
start_ringlb() { # name listen-ip send_proxy
  local p; p=$(free_port)
  {
    printf 'listen = "%s:%s"\nworkers = 1\nsend_proxy = "%s"\n' "$2" "$p" "$3"
    # Five instances at once: no admin listener (its default port would clash).
    printf '[health_check]\ninterval = "1s"\n[admin]\nenabled = false\n'
    replica_targets
  } >"$tmp/$1.toml"
  RUST_LOG=warn "$BIN/ringlb" --config "$tmp/$1.toml" >"$tmp/$1.log" 2>&1 & pids+=($!)
  ringlb_pid[$1]=$!
  wait_port "$p"
  targets+=(--target "$1=127.0.0.1:$p")
}
start_ringlb off 127.0.0.1 off
start_ringlb off-again 127.0.0.1 off
start_ringlb v1 127.0.0.1 v1
start_ringlb v2 127.0.0.1 v2
start_ringlb v2-any 0.0.0.0 v2

declare -A before
for name in "${!ringlb_pid[@]}"; do before[$name]=$(cpu_ticks "${ringlb_pid[$name]}"); done
"$BIN/loadtest" --mode connect --connections "$CONNS" --rounds "$ROUNDS" --duration "$DURATION" \
  --out "$out" "${targets[@]}" 2>&1 | tee "$tmp/run.txt"

# Two figures less exposed to the noise of a shared machine than the means above: the median
# over rounds of each configuration's conn/s relative to `off` in the same round, and ringlb's
# own CPU time per connection (warm-up included, alike for every configuration). `off-again`
# is a second, identical ringlb without headers: how far it lands from `off` is the noise.
echo
for name in off off-again v1 v2 v2-any; do
  echo "$name $(( $(cpu_ticks "${ringlb_pid[$name]}") - before[$name] ))"
done >"$tmp/cpu.txt"
python3 - "$tmp/run.txt" "$tmp/cpu.txt" "$out/summary.json" "$(getconf CLK_TCK)" <<'PY'
import json, statistics, sys
run, cpu, summary, hz = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rounds = {}
for line in open(run):
    f = line.split()
    if len(f) >= 7 and f[0] == "round" and f[6] == "conn/s":
        rounds.setdefault(f[1], {})[f[2]] = float(f[5].replace(",", ""))
conns = {p["name"]: p["requests"] for p in json.load(open(summary))["paths"]}
ticks = dict((n, int(t)) for n, t in (l.split() for l in open(cpu)))
base_cpu = ticks["off"] / hz / conns["off"]
print(f"{'path':8} {'median conn/s vs off':>21} {'ringlb CPU/conn':>16} {'vs off':>8}")
for name in ["off", "off-again", "v1", "v2", "v2-any"]:
    ratios = [r[name] / r["off"] for r in rounds.values() if name in r and "off" in r]
    per_conn = ticks[name] / hz / conns[name]
    print(f"{name:8} {statistics.median(ratios):21.3f} {per_conn * 1e6:13.1f} µs {per_conn / base_cpu:8.3f}")
PY
