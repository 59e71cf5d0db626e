#!/usr/bin/env python3
"""What the saturation sources cost (docs/metrics.md "Saturation"), as root, on loopback.

Usage: sudo bench/saturation_cost.py --kspan BUILD/kspan [--baseline OTHER/kspan]
       [--accepts N] [--processes N] [--seconds S]

1. Kernel: with kernel.bpf_stats_enabled=1 (put back afterwards), a python server accepts
   N connections one after another from a python client; `bpftool prog show` before and
   after gives run_cnt and run_time_ns of kspan's accept programs (ks_en_accept*,
   ks_ex_accept*). With --baseline (a kspan without the listen-queue read), the same
   again, alternating, 3 rounds each; medians of ns per accept.
2. Daemon: P idle python servers, each accepted one connection (so kspan watches its
   process: its cgroup and its threads are read every second), then S idle seconds; the
   daemon's CPU (utime+stime of /proc/PID/stat) with --span-metrics true (saturation on)
   and false (off), alternating, 3 rounds; medians, as ms of CPU a second (0.1 % of one
   CPU = 1 ms/s).
Prints figures; asserts nothing. Every process it starts is killed at the end; all
traffic is on 127.0.0.1.
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SERVER = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(128)
print(s.getsockname()[1], flush=True)
n = int(sys.argv[1])
held = []
for _ in range(n):
    c, _ = s.accept()
    if n == 1: held.append(c)
    else: c.close()
print("done", flush=True)
import time; time.sleep(3600)
"""

CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def prog_stats():
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True, check=True).stdout
    stats = {}
    for p in json.loads(out):
        name = p.get("name", "")
        if name.startswith("ks_en_accept") or name.startswith("ks_ex_accept"):
            s = stats.setdefault(name, [0, 0])
            s[0] += p.get("run_cnt", 0)
            s[1] += p.get("run_time_ns", 0)
    return stats


def start_kspan(binary, tmp, extra):
    p = subprocess.Popen([binary, "--output", "file:" + tmp + "/spans.jsonl", "--ui", "false",
                          "--log-level", "info"] + extra,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    buf = ""
    while time.monotonic() < deadline:
        line = p.stderr.readline()
        buf += line
        if '"msg":"ready"' in line:
            return p
        if p.poll() is not None:
            break
    p.kill()
    sys.exit("kspan did not start:\n" + buf)


def stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def server(n):
    p = subprocess.Popen([sys.executable, "-c", SERVER, str(n)], stdout=subprocess.PIPE, text=True)
    return p, int(p.stdout.readline())


def accepts(binary, n, tmp):
    k = start_kspan(binary, tmp, [])
    try:
        srv, port = server(n)
        time.sleep(0.5)
        before = prog_stats()
        for _ in range(n):
            c = socket.create_connection(("127.0.0.1", port), timeout=5)
            c.close()
        srv.stdout.readline()  # "done"
        after = prog_stats()
        srv.kill()
        srv.wait()
        runs = sum(after[k][0] - before.get(k, [0, 0])[0] for k in after if k.startswith("ks_ex_accept"))
        ns = sum(after[k][1] - before.get(k, [0, 0])[1] for k in after)
        enter_ns = sum(after[k][1] - before.get(k, [0, 0])[1] for k in after if k.startswith("ks_en_accept"))
        return {"accept_exits": runs, "ns_per_accept": ns / n, "exit_ns_per_accept": (ns - enter_ns) / n}
    finally:
        stop(k)


def daemon(binary, processes, seconds, on, tmp):
    k = start_kspan(binary, tmp, ["--span-metrics", "true" if on else "false"])
    servers = []
    try:
        for _ in range(processes):
            srv, port = server(1)
            servers.append(srv)
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        time.sleep(2)  # the accepts are processed, the processes watched
        c0, t0 = cpu_seconds(k.pid), time.monotonic()
        time.sleep(seconds)
        c1, t1 = cpu_seconds(k.pid), time.monotonic()
        return 1000 * (c1 - c0) / (t1 - t0)
    finally:
        for s in servers:
            s.kill()
            s.wait()
        stop(k)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kspan", required=True)
    ap.add_argument("--baseline")
    ap.add_argument("--accepts", type=int, default=3000)
    ap.add_argument("--processes", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    with open("/proc/sys/kernel/bpf_stats_enabled") as f:
        old = f.read().strip()
    tmp = tempfile.mkdtemp(prefix="kspan-saturation-bench-")
    try:
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write("1")
        mine, base = [], []
        for _ in range(a.rounds):
            mine.append(accepts(a.kspan, a.accepts, tmp))
            if a.baseline:
                base.append(accepts(a.baseline, a.accepts, tmp))
        m = statistics.median(r["ns_per_accept"] for r in mine)
        print(f"kernel: accept programs {m:.0f} ns per accept (enter+exit; median of {a.rounds}, "
              f"{a.accepts} accepts each; exits seen {mine[0]['accept_exits']})")
        if base:
            b = statistics.median(r["ns_per_accept"] for r in base)
            print(f"kernel: baseline {b:.0f} ns per accept; the listen-queue read adds {m - b:+.0f} ns per accept")
    finally:
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write(old)
    on, off = [], []
    for _ in range(a.rounds):
        on.append(daemon(a.kspan, a.processes, a.seconds, True, tmp))
        off.append(daemon(a.kspan, a.processes, a.seconds, False, tmp))
    print(f"daemon: {a.processes} traced processes idle, CPU {statistics.median(on):.2f} ms/s with saturation "
          f"(span metrics) on, {statistics.median(off):.2f} ms/s off (medians of {a.rounds}; "
          f"1 ms/s = 0.1 % of one CPU); rounds on {['%.2f' % x for x in on]} off {['%.2f' % x for x in off]}")


if __name__ == "__main__":
    main()
