#!/usr/bin/env bash
# How many connections to each of two listeners one host can hold at once, per way of setting up
# the connecting socket, in a network namespace of its own with a 100-port ephemeral range: the
# measurement behind `source` using IP_BIND_ADDRESS_NO_PORT, and behind adding no system call
# without `source` (the option alone, without a bind, changes nothing).
#
#   loadtest/bind-no-port.sh        (root: creates and deletes a namespace; loopback only)
set -euo pipefail
ns=ringlb-bind-no-port-$$
ip netns add "$ns"
trap 'ip netns delete "$ns"' EXIT
ip -n "$ns" link set lo up
ip netns exec "$ns" sysctl -q -w net.ipv4.ip_local_port_range="40000 40099"
ip netns exec "$ns" python3 - <<'PY'
# In a netns with ip_local_port_range "40000 40099" (100 ports): how many connections to each of
# two listeners can be open at once, per way of setting up the connecting socket.
import socket, errno, struct
IP_BIND_ADDRESS_NO_PORT = 24
listeners = []
for port in (9000, 9001):
    l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("127.0.0.1", port)); l.listen(4096); listeners.append(l)
def run(name, setup):
    held, accepted, counts = [], [], []
    for port in (9000, 9001):
        n = 0
        while True:
            s = socket.socket()
            try:
                setup(s)
                s.connect(("127.0.0.1", port))
            except OSError as e:
                s.close(); err = errno.errorcode[e.errno]; break
            held.append(s); n += 1
            accepted.append(listeners[port - 9000].accept()[0])
        counts.append((n, err))
    print(f"{name:44} to :9000 {counts[0][0]:4} ({counts[0][1]}), then to :9001 {counts[1][0]:4} ({counts[1][1]})")
    for s in held:  # a reset: no TIME_WAIT left to disturb the next way
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0)); s.close()
    for s in accepted: s.close()
def nothing(s): pass
def no_port(s): s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
def bind(s): s.bind(("127.0.0.2", 0))
def bind_no_port(s): no_port(s); bind(s)
run("unbound (today without source)", nothing)
run("unbound + IP_BIND_ADDRESS_NO_PORT", no_port)
run("bind(127.0.0.2:0)", bind)
run("IP_BIND_ADDRESS_NO_PORT + bind(127.0.0.2:0)", bind_no_port)
PY
