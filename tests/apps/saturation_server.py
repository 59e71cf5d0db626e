"""A TCP server that lets its listen queue fill, then loads its CPU, for the saturation
test (tests/integration/saturation_test.cc).

Usage: saturation_server.py PORT BACKLOG GO_FILE COUNT BURNERS SECONDS
Listens on 127.0.0.1:PORT with listen(BACKLOG) and prints "ready" without accepting, so
connections wait in the kernel's accept queue. Once GO_FILE exists (checked every 20 ms,
at most 30 s), accepts COUNT connections one after another (closing each), prints
"accepted COUNT", then runs BURNERS processes that spin on the CPU for SECONDS seconds
(they stay in this process's cgroup), and prints "burned" when they are done.
"""
import multiprocessing
import os
import socket
import sys
import time

port, backlog, go_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
count, burners, seconds = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])


def burn(until):
    x = 0
    while time.monotonic() < until:
        x += 1


def main():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(backlog)
    print("ready", flush=True)
    deadline = time.monotonic() + 30
    while not os.path.exists(go_file):
        if time.monotonic() > deadline:
            print("no go file", flush=True)
            return 1
        time.sleep(0.02)
    srv.settimeout(10)
    for _ in range(count):
        conn, _ = srv.accept()
        conn.close()
    print("accepted %d" % count, flush=True)
    until = time.monotonic() + seconds
    procs = [multiprocessing.Process(target=burn, args=(until,)) for _ in range(burners)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    print("burned", flush=True)
    time.sleep(60)  # stays traced until the test stops it
    return 0


if __name__ == "__main__":
    sys.exit(main())
