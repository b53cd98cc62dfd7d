#!/usr/bin/env bash
# wrk comparison: the same backends reached directly, through ringlb (one instance per relay
# strategy) and through HAProxy in tcp mode, one worker thread each, rounds interleaved (the
# order rotates every round) so machine drift hits every path alike. Prints req/s, p99 and each
# proxy's CPU per request per round, then medians over rounds and per-round ratios to HAProxy
# (median, min..max).
#
#   loadtest/wrk-compare.sh [rounds=3] [seconds=5]
#     env: CONNS=32 WRK_THREADS=1
#          BACKEND=replica   `loadtest replica` backends (default), or
#          BACKEND=nginx     two nginx HTTP servers (one process each, `return 200` on /spells):
#                            a neutral setup, so the proxy is what is measured
#          RELAYS="splice splice-inline copy"   ringlb instances to start (ringlb-RELAY each,
#                            workers = 1); any of auto, copy, splice, splice-inline
#          CLOSE=1           wrk sends "Connection: close": a new connection per request, so the
#                            CPU figure is per connection
#          BASELINE=/path/to/ringlb   also runs that build (e.g. one from before a change) as
#                            `ringlb-before`, with the first of RELAYS: before and after side by
#                            side, each against HAProxy in the same rounds
#
#   e.g. BACKEND=nginx RELAYS="auto copy" loadtest/wrk-compare.sh 10 10
#
# CPU per request = the proxy process's user+system clock ticks (/proc/PID/stat, every thread)
# read right before and after each wrk run, divided by the requests wrk counted in that run. On
# loopback most of a proxy's CPU is the kernel's TCP stack; on a shared machine req/s and p99
# move with whatever else runs, CPU per request much less, so trust that figure.
#
# Needs wrk and haproxy (apt-get install wrk haproxy), and nginx for BACKEND=nginx (nginx-light).
# Only loopback addresses are used; nginx runs with -p/-c in the scratch directory and never
# touches /var or /run.
set -euo pipefail
cd "$(dirname "$0")/.."
. loadtest/lib.sh
ROUNDS=${1:-3}
SECS=${2:-5}
CONNS=${CONNS:-32}
WRK_THREADS=${WRK_THREADS:-1}
BACKEND=${BACKEND:-replica}
RELAYS=${RELAYS:-splice splice-inline copy}
CLOSE=${CLOSE:-0}
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
command -v haproxy >/dev/null || { echo "haproxy not found: apt-get install haproxy" >&2; exit 1; }
case $BACKEND in
  replica) ;;
  nginx) command -v nginx >/dev/null || { echo "nginx not found: apt-get install nginx-light" >&2; exit 1; } ;;
  *) echo "BACKEND must be replica or nginx, not '$BACKEND'" >&2; exit 1 ;;
esac
read -ra relays <<<"$RELAYS"
for relay in "${relays[@]}"; do
  case $relay in auto | copy | splice | splice-inline) ;;
    *) echo "unknown relay '$relay' in RELAYS (auto, copy, splice, splice-inline)" >&2; exit 1 ;;
  esac
done
wrk_args=(-t"$WRK_THREADS" -c"$CONNS" -d"${SECS}s" --latency)
unit=req shown="${wrk_args[*]}"
if [ "$CLOSE" = 1 ]; then wrk_args+=(-H "Connection: close"); unit=conn shown+=" -H 'Connection: close'"; fi

setup_run
hz=$(getconf CLK_TCK)

# One nginx HTTP server on 127.0.0.1:$1, a single process (master_process off) whose pid is
# the one recorded; everything it writes lives in $tmp/nginx-$1.
start_nginx() {
  local d=$tmp/nginx-$1
  mkdir -p "$d"
  cat >"$d/nginx.conf" <<CONF
worker_processes 1;
daemon off;
master_process off;
pid $d/nginx.pid;
error_log $tmp/nginx-$1.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $d/body;
  proxy_temp_path $d/proxy;
  fastcgi_temp_path $d/fastcgi;
  uwsgi_temp_path $d/uwsgi;
  scgi_temp_path $d/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  default_type application/json;
  server {
    listen 127.0.0.1:$1;
    location /spells { return 200 '[{"id":1,"name":"Fireball","school":"evocation","level":3}]\n'; }
    location /healthz { return 200 'ok\n'; }
  }
}
CONF
  nginx -p "$d/" -c "$d/nginx.conf" -e "$tmp/nginx-$1.log" >>"$tmp/nginx-$1.log" 2>&1 & pids+=($!)
}

if [ "$BACKEND" = nginx ]; then
  backends=("$(free_port)" "$(free_port)")
  for p in "${backends[@]}"; do start_nginx "$p"; done
  for p in "${backends[@]}"; do wait_port "$p"; done
else
  start_replicas 2
  backends=("${replicas[@]}")
fi

declare -A port pid
for relay in "${relays[@]}"; do
  {
    printf 'workers = 1\nrelay = "%s"\n[health_check]\ninterval = "1s"\n' "$relay"
    printf '[admin]\nlisten = "127.0.0.1:0"\n'
    for b in "${backends[@]}"; do
      printf '[[targets]]\naddress = "127.0.0.1:%s"\nhealth_check_endpoint = "/healthz"\n' "$b"
    done
  } >"$tmp/ringlb-$relay.toml.in"
  start_instance "ringlb-$relay" "$BIN/ringlb" <"$tmp/ringlb-$relay.toml.in"
done

if [ -n "${BASELINE:-}" ]; then
  [ -x "$BASELINE" ] || { echo "BASELINE '$BASELINE' is not an executable" >&2; exit 1; }
  start_instance ringlb-before "$BASELINE" <"$tmp/ringlb-${relays[0]}.toml.in"
fi

p=$(free_port); port[haproxy]=$p
{
  cat <<CFG
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
CFG
  i=0
  for b in "${backends[@]}"; do i=$((i + 1)); echo "  server b$i 127.0.0.1:$b"; done
} >"$tmp/haproxy.cfg"
haproxy -f "$tmp/haproxy.cfg" -db >"$tmp/haproxy.log" 2>&1 & pids+=($!)
pid[haproxy]=$!
wait_port "$p"
port[direct]=${backends[0]}
echo "started pids: ${pids[*]}" >&2

paths=(direct haproxy)
for relay in "${relays[@]}"; do paths+=("ringlb-$relay"); done
[ -z "${BASELINE:-}" ] || { paths+=(ringlb-before); relays+=(before); }
echo "wrk $shown, backends $BACKEND x${#backends[@]}, $ROUNDS rounds, $(nproc) cores, $(uname -r)"
: >"$tmp/rounds.txt"
for r in $(seq 1 "$ROUNDS"); do
  order=("${paths[@]:$((r % ${#paths[@]}))}" "${paths[@]:0:$((r % ${#paths[@]}))}")
  declare -A rps_of=() cpu_of=()
  for path in "${order[@]}"; do
    [ "$path" = direct ] || t0=$(cpu_ticks "${pid[$path]}")
    out=$(wrk "${wrk_args[@]}" "http://127.0.0.1:${port[$path]}/spells")
    [ "$path" = direct ] || t1=$(cpu_ticks "${pid[$path]}")
    reqs=$(awk '/ requests in / {print $1}' <<<"$out")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}' <<<"$out")
    errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ')
    if [ "$path" = direct ]; then
      cpu=- cpu_txt=""
    else
      cpu=$(awk -v t="$((t1 - t0))" -v hz="$hz" -v n="$reqs" 'BEGIN{printf "%.3f", (n > 0 ? t / hz * 1e6 / n : 0)}')
      cpu_txt=$(printf 'CPU %7.2f µs/%s' "$cpu" "$unit")
    fi
    printf 'round %d  %-22s %10.0f req/s  p99 %8.3f ms  %-19s %s\n' "$r" "$path" "$rps" "$p99" "$cpu_txt" "$errs"
    echo "$r $path $rps $p99 $reqs $cpu" >>"$tmp/rounds.txt"
    rps_of[$path]=$rps cpu_of[$path]=$cpu
  done
  line="round $r  vs haproxy:"
  for relay in "${relays[@]}"; do
    line+=$(awk -v n="ringlb-$relay" -v r="${rps_of[ringlb-$relay]}" -v hr="${rps_of[haproxy]}" \
      -v c="${cpu_of[ringlb-$relay]}" -v hc="${cpu_of[haproxy]}" -v u="$unit" \
      'BEGIN{printf "  %s req/s %.2fx CPU/%s %s", n, r / hr, u, (hc > 0 ? sprintf("%.2fx", c / hc) : "-")}')
  done
  echo "$line"
done
echo
python3 - "$tmp/rounds.txt" "$unit" <<'PY'
import statistics, sys
rows, unit = sys.argv[1], sys.argv[2]
data = {}  # path -> round -> (rps, p99, cpu or None)
order = []
for line in open(rows):
    r, path, rps, p99, _reqs, cpu = line.split()
    if path not in data:
        order.append(path)
    data.setdefault(path, {})[r] = (float(rps), float(p99), None if cpu == "-" else float(cpu))
med = statistics.median
def spread(ratios):
    return f"{med(ratios):.2f}x ({min(ratios):.2f}..{max(ratios):.2f})" if ratios else "-"
hap = data["haproxy"]
print(f"{'path':22} {'req/s':>9} {'p99 ms':>8} {'CPU µs/' + unit:>12} {'req/s vs HAP (min..max)':>25} {'CPU/' + unit + ' vs HAP (min..max)':>27}")
for path in ["direct", "haproxy"] + [p for p in order if p not in ("direct", "haproxy")]:
    rounds = data[path]
    rps = med(v[0] for v in rounds.values())
    p99 = med(v[1] for v in rounds.values())
    cpus = [v[2] for v in rounds.values() if v[2] is not None]
    cpu = f"{med(cpus):12.2f}" if cpus else f"{'-':>12}"
    rps_ratio = [v[0] / hap[r][0] for r, v in rounds.items() if r in hap and hap[r][0] > 0]
    cpu_ratio = [v[2] / hap[r][2] for r, v in rounds.items()
                 if v[2] is not None and r in hap and hap[r][2]]
    print(f"{path:22} {rps:9.0f} {p99:8.3f} {cpu} {spread(rps_ratio):>25} {spread(cpu_ratio):>27}")
PY
echo "(medians over $ROUNDS rounds; ratios are per round. CPU per $unit is the figure to trust on a shared machine: req/s and p99 move with whatever else runs.)"
