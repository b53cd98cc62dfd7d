#!/usr/bin/env bash
# Before/after: what a change costs, measured side by side. Two ringlb builds (BASELINE, e.g. a
# build from before the change, and this tree's) plus a second instance of this tree's (the
# same-run noise floor), one worker each, in front of one nginx (a fast, neutral backend, so the
# proxy is what is measured), loaded by wrk keep-alive in interleaved rounds. Prints per round
# and in the mean: req/s and CPU µs per request of each instance (user + system, from
# /proc/PID/stat around each wrk run) and the ratios after/before and control/after.
#
#   BASELINE=/path/to/old/ringlb loadtest/ab-compare.sh [rounds=10] [seconds=5]
#       env: CONNS=32 RELAY=copy IO_BACKEND=io_uring MODE=rr (wrk keep-alive requests to
#       nginx), MODE=close (the same with `Connection: close`: a new connection per request,
#       so the CPU figure is per connection) or MODE=bulk (one iperf3 stream per round to an
#       iperf3 server: Gbit/s and CPU per GiB instead); BASELINE_RELAY=... runs the baseline with another relay (e.g.
#       BASELINE=target/release/ringlb BASELINE_RELAY=copy RELAY=auto: one build, two relays)
#
# On loopback ~96 % of a proxy's CPU is the kernel's TCP stack: CPU per request is the honest
# efficiency figure; throughput on a shared 2-core machine swings with everything else.
# Needs wrk and nginx (apt-get install wrk nginx-light). Loopback only; stops all on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
. loadtest/lib.sh
ROUNDS=${1:-10}
SECS=${2:-5}
CONNS=${CONNS:-32}
RELAY=${RELAY:-copy}
IO_BACKEND=${IO_BACKEND:-io_uring}
MODE=${MODE:-rr}
case $MODE in
  rr) close=() ;;
  close) close=(-H "Connection: close") ;;
  bulk) ;;
  *) echo "MODE must be rr, close or bulk, not '$MODE'" >&2; exit 1 ;;
esac
: "${BASELINE:?set BASELINE to the ringlb binary to compare against}"
for tool in wrk nginx iperf3; do
  command -v "$tool" >/dev/null || { echo "$tool not found: apt-get install wrk nginx-light iperf3" >&2; exit 1; }
done

setup_run
backend=$(free_port)
if [ "$MODE" = bulk ]; then
  iperf3 -s -p "$backend" >"$tmp/iperf3.log" 2>&1 & pids+=($!)
  check='health_check = "none"'
else
  check='health_check_endpoint = "/"'
fi
[ "$MODE" = bulk ] || cat >"$tmp/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$backend;
    location / { return 200 "ok\n"; }
  }
}
CONF
[ "$MODE" = bulk ] || { nginx -p "$tmp" -c "$tmp/nginx.conf" -e "$tmp/nginx-error.log" >"$tmp/nginx.log" 2>&1 & pids+=($!); }
wait_port "$backend"

declare -A port pid
# $1 = name, $2 = binary, $3 = relay.
start_ringlb() {
  start_instance "$1" "$2" <<TOML
workers = 1
relay = "$3"
io_backend = "$IO_BACKEND"
[health_check]
interval = "1s"
[admin]
enabled = false
[[targets]]
address = "127.0.0.1:$backend"
$check
TOML
}
start_ringlb before "$BASELINE" "${BASELINE_RELAY:-$RELAY}"
start_ringlb after "$BIN/ringlb" "$RELAY"
start_ringlb control "$BIN/ringlb" "$RELAY"
sleep 1.5 # the first health round

hz=$(getconf CLK_TCK)
paths=(before after control)
declare -A rps cpu
echo "$MODE: wrk -t1 -c$CONNS or iperf3 -P1, ${SECS}s, relay $RELAY (baseline ${BASELINE_RELAY:-$RELAY}) on $IO_BACKEND, $([ "$MODE" = bulk ] && echo iperf3 || echo nginx) backend, $ROUNDS rounds, $(nproc) cores, $(uname -r)"
for r in $(seq 1 "$ROUNDS"); do
  order=("${paths[@]:$((r % 3))}" "${paths[@]:0:$((r % 3))}")
  for path in "${order[@]}"; do
    t0=$(cpu_ticks "${pid[$path]}")
    if [ "$MODE" = bulk ]; then
      bytes=$(iperf3 -c 127.0.0.1 -p "${port[$path]}" -t "$SECS" -J | python3 -c \
        'import json,sys; print(int(json.load(sys.stdin)["end"]["sum_received"]["bytes"]))')
      t1=$(cpu_ticks "${pid[$path]}")
      rps[$path,$r]=$(awk -v b="$bytes" -v s="$SECS" 'BEGIN{print b*8/s/1e9}')
      cpu[$path,$r]=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v b="$bytes" 'BEGIN{print t/hz/(b/1073741824)}')
      printf 'round %2d  %-8s %7.2f Gbit/s  %6.3f s CPU/GiB\n' "$r" "$path" "${rps[$path,$r]}" "${cpu[$path,$r]}"
      continue
    fi
    out=$(wrk -t1 -c"$CONNS" -d"${SECS}s" "${close[@]}" "http://127.0.0.1:${port[$path]}/")
    t1=$(cpu_ticks "${pid[$path]}")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    errs=$(awk '/Non-2xx|Socket errors/' <<<"$out" | tr '\n' ' ')
    rps[$path,$r]=$(awk -v n="$reqs" -v s="$SECS" 'BEGIN{print n/s}')
    cpu[$path,$r]=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v n="$reqs" 'BEGIN{print t/hz*1e6/n}')
    printf 'round %2d  %-8s %9.0f req/s  %6.2f µs CPU/request  %s\n' "$r" "$path" \
      "${rps[$path,$r]}" "${cpu[$path,$r]}" "$errs"
  done
done

# Mean and standard deviation of the per-round ratio $2/$1 of metric array $3.
ratio() {
  local a=$1 b=$2 name=$3 vals=()
  for r in $(seq 1 "$ROUNDS"); do
    local -n m=$name
    vals+=("$(awk -v x="${m[$b,$r]}" -v y="${m[$a,$r]}" 'BEGIN{print x/y}')")
  done
  printf '%s\n' "${vals[@]}" | awk '{s+=$1; q+=$1*$1; n++} END {m=s/n; v=q/n-m*m; if (v<0) v=0; printf "%.3f ± %.3f", m, sqrt(v)}'
}
echo
unit=req/s; [ "$MODE" = bulk ] && unit=Gbit/s
printf '%-18s %-18s %-18s\n' "ratio (mean ± sd)" "$unit" "CPU per request or GiB"
printf '%-18s %-18s %-18s\n' "after / before" "$(ratio before after rps)" "$(ratio before after cpu)"
printf '%-18s %-18s %-18s\n' "control / after" "$(ratio after control rps)" "$(ratio after control cpu)"
