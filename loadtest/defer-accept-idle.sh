#!/usr/bin/env bash
# What silent clients cost ringlb with defer_accept off and on: N clients connect and send
# nothing for 3 s; prints ringlb's descriptors, accepted connections and CPU time meanwhile.
#
#   loadtest/defer-accept-idle.sh [N=2000]        (needs ulimit -n above 2 N; loopback only)
set -euo pipefail
cd "$(dirname "$0")/.."
. loadtest/lib.sh
N=${1:-2000}
setup_run
backend=$(free_port)
# A backend that holds each connection until its client goes.
python3 - "$backend" >"$tmp/backend.log" 2>&1 <<'PY' & pids+=($!)
import socket, sys, threading
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1]))); l.listen(4096)
while True:
    c, _ = l.accept()
    threading.Thread(target=lambda c=c: (c.recv(1), c.close()), daemon=True).start()
PY
wait_port "$backend"
for defer in off 5s; do
  p=$(free_port); admin=$(free_port)
  cat >"$tmp/$defer.toml" <<TOML
listen = "127.0.0.1:$p"
workers = 1
defer_accept = "$defer"
[health_check]
interval = "1s"
[admin]
listen = "127.0.0.1:$admin"
[[targets]]
address = "127.0.0.1:$backend"
health_check = "tcp"
TOML
  RUST_LOG=warn "$BIN/ringlb" --config "$tmp/$defer.toml" >"$tmp/$defer.log" 2>&1 & pids+=($!)
  rl=$!
  wait_port "$p"; sleep 1.5 # the first health round
  fds0=$(ls "/proc/$rl/fd" | wc -l)
  t0=$(awk '{print $14 + $15}' "/proc/$rl/stat")
  python3 - "$p" "$N" <<'PY' & client=$!
import socket, sys, time
held = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(int(sys.argv[2]))]
time.sleep(3)
PY
  sleep 2.5
  fds=$(ls "/proc/$rl/fd" | wc -l)
  accepted=$(python3 - "$admin" <<'PY'
import sys, urllib.request
text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics").read().decode()
print(int(sum(float(l.split()[-1]) for l in text.splitlines()
              if l.startswith("ringlb_worker_accepted_connections_total"))))
PY
)
  wait "$client"
  t1=$(awk '{print $14 + $15}' "/proc/$rl/stat")
  echo "defer_accept = \"$defer\": $N silent clients: ringlb descriptors $fds0 -> $fds, accepted $accepted, ringlb CPU $(( (t1 - t0) * 1000 / $(getconf CLK_TCK) )) ms"
  kill "$rl"
done
