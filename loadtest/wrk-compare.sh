#!/usr/bin/env bash
# wrk keep-alive comparison: the same backends reached directly, through ringlb (every relay
# strategy) and through HAProxy in tcp mode, one worker thread each, rounds interleaved so
# machine drift hits every path alike. Prints req/s and p99 per round and the ratios.
#
#   loadtest/wrk-compare.sh [rounds=3] [seconds=5]      (env: CONNS=32 WRK_THREADS=1)
#
# Needs wrk and haproxy (apt-get install wrk haproxy). Only loopback addresses are used.
set -euo pipefail
cd "$(dirname "$0")/.."
. loadtest/lib.sh
ROUNDS=${1:-3}
SECS=${2:-5}
CONNS=${CONNS:-32}
WRK_THREADS=${WRK_THREADS:-1}
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
command -v haproxy >/dev/null || { echo "haproxy not found: apt-get install haproxy" >&2; exit 1; }

setup_run
start_replicas 2
b1=${replicas[0]}; b2=${replicas[1]}

declare -A port
for relay in splice splice-inline copy; do
  p=$(free_port); port[ringlb-$relay]=$p
  cat >"$tmp/ringlb-$relay.toml" <<TOML
listen = "127.0.0.1:$p"
workers = 1
relay = "$relay"
[health_check]
interval = "1s"
[admin]
listen = "127.0.0.1:0"
$(replica_targets)
TOML
  RUST_LOG=warn "$BIN/ringlb" --config "$tmp/ringlb-$relay.toml" >"$tmp/ringlb-$relay.log" 2>&1 & pids+=($!)
  wait_port "$p"
done

p=$(free_port); port[haproxy]=$p
cat >"$tmp/haproxy.cfg" <<CFG
global
  nbthread 1
  maxconn 5000
defaults
  mode tcp
  timeout connect 3s
  timeout client 300s
  timeout server 300s
frontend fe
  bind 127.0.0.1:$p
  default_backend be
backend be
  balance roundrobin
  server b1 127.0.0.1:$b1
  server b2 127.0.0.1:$b2
CFG
haproxy -f "$tmp/haproxy.cfg" -db >"$tmp/haproxy.log" 2>&1 & pids+=($!)
wait_port "$p"
port[direct]=$b1

paths=(direct haproxy ringlb-splice ringlb-splice-inline ringlb-copy)
declare -A rps_sum p99_sum
echo "wrk -t$WRK_THREADS -c$CONNS -d${SECS}s --latency, $ROUNDS rounds, $(nproc) cores, $(uname -r)"
for r in $(seq 1 "$ROUNDS"); do
  # Rotate the order each round.
  order=("${paths[@]:$((r % ${#paths[@]}))}" "${paths[@]:0:$((r % ${#paths[@]}))}")
  for path in "${order[@]}"; do
    out=$(wrk -t"$WRK_THREADS" -c"$CONNS" -d"${SECS}s" --latency "http://127.0.0.1:${port[$path]}/spells")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}' <<<"$out")
    errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ')
    printf 'round %d  %-22s %10.0f req/s  p99 %8.3f ms  %s\n' "$r" "$path" "$rps" "$p99" "$errs"
    rps_sum[$path]=$(awk -v a="${rps_sum[$path]:-0}" -v b="$rps" 'BEGIN{print a+b}')
    p99_sum[$path]=$(awk -v a="${p99_sum[$path]:-0}" -v b="$p99" 'BEGIN{print a+b}')
  done
done
echo
printf '%-22s %12s %12s %14s %12s\n' path "req/s(mean)" "p99 ms(mean)" "req/s vs HAP" "p99 vs HAP"
hap_rps=$(awk -v s="${rps_sum[haproxy]}" -v n="$ROUNDS" 'BEGIN{print s/n}')
hap_p99=$(awk -v s="${p99_sum[haproxy]}" -v n="$ROUNDS" 'BEGIN{print s/n}')
for path in "${paths[@]}"; do
  rps=$(awk -v s="${rps_sum[$path]}" -v n="$ROUNDS" 'BEGIN{print s/n}')
  p99=$(awk -v s="${p99_sum[$path]}" -v n="$ROUNDS" 'BEGIN{print s/n}')
  printf '%-22s %12.0f %12.3f %13.2fx %11.2fx\n' "$path" "$rps" "$p99" \
    "$(awk -v a="$rps" -v b="$hap_rps" 'BEGIN{print a/b}')" "$(awk -v a="$p99" -v b="$hap_p99" 'BEGIN{print a/b}')"
done
