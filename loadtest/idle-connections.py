#!/usr/bin/env python3
"""Holds N idle connections through a running ringlb and reports what they cost it.

    loadtest/idle-connections.py PORT PID [N=10000]

PORT is ringlb's listen port on 127.0.0.1, PID its process id. Prints ringlb's thread count and
RSS before and after opening N connections (each relayed to a backend), the machine's drop in
available memory, and checks that a request is still served. Loopback only; needs an open-files
limit above N (ulimit -n).
"""
import socket
import sys
import time


def meminfo():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, value = line.split(":")
            out[key] = int(value.split()[0])
    return out


def proc(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS", "Threads")):
                key, value = line.split(":")
                out[key] = value.strip()
    return out


def main():
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    m0, p0 = meminfo(), proc(pid)
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    time.sleep(2)  # let every connection reach its backend
    m1, p1 = meminfo(), proc(pid)
    used = (m0["MemAvailable"] - m1["MemAvailable"]) // 1024
    slab = (m1["Slab"] - m0["Slab"]) // 1024
    print(f"{n} idle connections: ringlb {p0} -> {p1}; memory in use +{used} MiB (slab +{slab} MiB)")
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    print("still serving:", s.recv(15))
    for c in held:
        c.close()


if __name__ == "__main__":
    main()
