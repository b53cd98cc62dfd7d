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
