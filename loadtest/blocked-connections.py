#!/usr/bin/env python3
"""What N connections whose clients never read cost ringlb: the per-connection memory bound of a
relay, measured.

    loadtest/blocked-connections.py RINGLB_BINARY [N=10000] [RELAY=copy] [IO_BACKEND=io_uring]

Starts a backend that pushes up to 64 MiB down every connection (whenever its socket has room:
past the kernel's socket buffers, which the machine-wide `tcp_mem` caps, the rest waits in the
relay), one ringlb worker in front of it, and N clients with a 4 KiB receive buffer that never read: each
connection's download is blocked at the client, so ringlb holds whatever its relay keeps for a
blocked direction. Prints ringlb's RSS, threads and descriptors before and after, the machine's
drop in available memory (kernel socket buffers and pipes included), and checks that a fresh
client is still served. Loopback only; raises its own open-files limit to the hard limit, which must
exceed 2 * N for ringlb (4 * N with a splice relay, whose blocked directions hold a pipe each).
"""
import os
import resource
import selectors
import socket
import subprocess
import sys
import tempfile
import multiprocessing
import time

CHUNK = b"x" * (256 * 1024)


def meminfo():
    with open("/proc/meminfo") as f:
        return {line.split(":")[0]: int(line.split()[1]) for line in f}


def proc(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS", "Threads")):
                key, value = line.split(":")
                out[key] = value.strip()
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


def backend(listener):
    """`PING` gets `PONG`; every other connection up to 64 MiB, whenever its socket has room."""
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    pushed = {}
    while True:
        for key, events in sel.select():
            if key.fileobj is listener:
                conn, _ = listener.accept()
                conn.setblocking(False)
                sel.register(conn, selectors.EVENT_READ)
                continue
            conn = key.fileobj
            if conn not in pushed:
                try:
                    data = conn.recv(4096)
                except OSError:
                    data = b""
                if data.startswith(b"PING"):
                    sel.unregister(conn)
                    conn.setblocking(True)
                    conn.sendall(b"PONG\n")
                    conn.close()
                    continue
                pushed[conn] = 0
                sel.modify(conn, selectors.EVENT_WRITE)
            try:
                while pushed[conn] < 64 << 20:
                    pushed[conn] += conn.send(CHUNK)
                sel.unregister(conn)
            except BlockingIOError:
                pass
            except OSError:
                sel.unregister(conn)


def main():
    binary = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    relay = sys.argv[3] if len(sys.argv) > 3 else "copy"
    io_backend = sys.argv[4] if len(sys.argv) > 4 else "io_uring"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    # Its own process: it holds N descriptors of its own, and the open-files limit is per
    # process.
    pusher = multiprocessing.Process(target=backend, args=(listener,), daemon=True)
    pusher.start()
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as cfg:
        cfg.write(
            f'listen = "127.0.0.1:{port}"\nworkers = 1\nrelay = "{relay}"\n'
            f'io_backend = "{io_backend}"\nmax_connections = {n + 100}\n'
            f'[health_check]\ninterval = "1s"\n[admin]\nenabled = false\n'
            f'[[targets]]\naddress = "127.0.0.1:{listener.getsockname()[1]}"\n'
            f'health_check = "none"\n'
        )
    ringlb = subprocess.Popen([binary, "--config", cfg.name], stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.05)
        time.sleep(0.5)
        m0, p0 = meminfo(), proc(ringlb.pid)
        held = []
        for _ in range(n):
            c = socket.socket()
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            c.connect(("127.0.0.1", port))
            c.sendall(b"GET /big\r\n")
            held.append(c)
        time.sleep(5)  # every download reaches its blocked state
        m1, p1 = meminfo(), proc(ringlb.pid)
        used = (m0["MemAvailable"] - m1["MemAvailable"]) // 1024
        rss = int(p1["VmRSS"].split()[0]) - int(p0["VmRSS"].split()[0])
        print(
            f"{relay} on {io_backend}, {n} blocked connections: ringlb {p0} -> {p1}; "
            f"ringlb RSS +{rss // 1024} MiB = {rss * 1024 // n} B per connection; "
            f"machine memory in use +{used} MiB = {used * 1024 * 1024 // n} B per connection "
            f"(kernel socket buffers and pipes included)"
        )
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"PING\n")
        print("still serving:", s.recv(16))
        for c in held:
            c.close()
    finally:
        pusher.terminate()
        ringlb.terminate()
        ringlb.wait()
        os.unlink(cfg.name)


if __name__ == "__main__":
    main()
