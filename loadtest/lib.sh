# Shell helpers shared by the measurement scripts in this folder (source it from the repository
# root). Loopback only.

# A free port below the ephemeral range, so no client socket of the run can take it meanwhile.
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

# Waits (at most 5 s) until something listens on 127.0.0.1:$1.
wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on 127.0.0.1:$1" >&2; return 1
}

# Clock ticks (user + system) spent so far by process $1.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# Starts the ringlb binary $2 as instance $1, listening on a free port, with the rest of its
# configuration (all but `listen`) read from stdin; waits until it listens. Records its port and
# pid in the associative arrays `port` and `pid` (declare -A port pid before).
start_instance() {
  local p; p=$(free_port); port[$1]=$p
  { printf 'listen = "127.0.0.1:%s"\n' "$p"; cat; } >"$tmp/$1.toml"
  RUST_LOG=warn "$2" --config "$tmp/$1.toml" >"$tmp/$1.log" 2>&1 & pids+=($!)
  pid[$1]=$!
  wait_port "$p"
}

# Builds ringlb and loadtest (release) and prepares a run: BIN (the binaries), tmp (a scratch
# directory, removed on exit) and pids (every process started; all stopped on exit). With
# KEEP_LOGS set, the last lines of every log in $tmp go to stderr on exit.
setup_run() {
  cargo build --release -q -p ringlb -p loadtest
  BIN=target/release
  tmp=$(mktemp -d)
  pids=()
  trap stop_run EXIT
}

stop_run() {
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  if [ -n "${KEEP_LOGS:-}" ]; then tail -n 5 "$tmp"/*.log >&2; fi
  rm -rf "$tmp"
}

# Starts $1 (default 3) `loadtest replica` backends and waits for them; their ports go to the
# array `replicas`.
start_replicas() {
  replicas=()
  local p
  for _ in $(seq 1 "${1:-3}"); do
    p=$(free_port); replicas+=("$p")
    "$BIN/loadtest" replica --listen "127.0.0.1:$p" >"$tmp/replica-$p.log" 2>&1 & pids+=($!)
  done
  for p in "${replicas[@]}"; do wait_port "$p"; done
}

# The ringlb [[targets]] of every replica, probed at /healthz.
replica_targets() {
  local p
  for p in "${replicas[@]}"; do
    printf '[[targets]]\naddress = "127.0.0.1:%s"\nhealth_check_endpoint = "/healthz"\n' "$p"
  done
}
