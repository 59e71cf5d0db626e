#!/usr/bin/python3
"""kspan benchmark suite: request overhead, kernel cost, daemon cost, saturation.

Run through bench/run.sh (it builds kspan and the helpers, then calls this as root):

    bench.py --kspan BUILD/kspan --helpers DIR --out bench/results/latest.md [--quick]

Prints figures and goals side by side; never asserts. Every process it starts is killed
on exit, and kernel.bpf_stats_enabled is put back to what it was.
"""
import argparse
import json
import os
import platform
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CHILDREN = []  # every Popen we start; killed in cleanup()
TMP = tempfile.mkdtemp(prefix="kspan-bench-")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------- processes and /proc


def spawn(cmd, **kw):
    p = subprocess.Popen(cmd, **kw)
    CHILDREN.append(p)
    return p


def stop(p, sig=signal.SIGTERM, timeout=20):
    if p.poll() is None:
        try:
            p.send_signal(sig)
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)


def cleanup():
    # SIGTERM first: a SIGKILLed nginx master leaves its workers running, orphaned.
    for p in reversed(CHILDREN):
        if p.poll() is None:
            try:
                stop(p, timeout=5)
            except Exception:
                pass


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def ring_twice_kib(pid):
    """KiB that VmRSS counts twice: the kernel maps the ring buffer's data pages twice in a
    row into the consumer (libbpf's read-only mapping of the producer page and 2 x the
    ring, all resident from the mmap), so the ring's size shows twice in RSS for one copy of
    memory. The goal reads RSS with the ring buffer counted once."""
    try:
        with open(f"/proc/{pid}/smaps") as f:
            size = None
            for line in f:
                parts = line.split()
                if "-" in parts[0] and len(parts) >= 6 and parts[1] == "r--s" and "bpf-map" in parts[-1]:
                    lo, hi = (int(x, 16) for x in parts[0].split("-"))
                    data = hi - lo - os.sysconf("SC_PAGE_SIZE")
                    size = data // 2 if data > 0 and (data // 2) & (data // 2 - 1) == 0 else None
                elif size and parts[0] == "Rss:":
                    rss = int(parts[1])
                    if rss * 1024 >= 2 * size:
                        return size // 1024
                    size = None
    except OSError:
        pass
    return 0


def proc_sample(pid):
    """CPU seconds (all threads: the sum of /proc/PID/task/*/schedstat run time, ns-precise;
    utime+stime from /proc/PID/stat when schedstat is missing), context switches (all
    threads), VmRSS and VmHWM (KiB)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (10 ms ticks)
        vol = nonvol = 0
        run_ns = 0
        tids = os.listdir(f"/proc/{pid}/task")
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    run_ns += int(f.read().split()[0])  # ns on CPU; kspan's threads live as long as it
            except (OSError, ValueError, IndexError):
                run_ns = -1
                break
        if run_ns >= 0 and os.path.exists(f"/proc/{pid}/task/{tids[0]}/schedstat"):
            cpu = run_ns / 1e9
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/status") as f:
                    for line in f:
                        if line.startswith("voluntary_ctxt_switches"):
                            vol += int(line.split()[1])
                        elif line.startswith("nonvoluntary_ctxt_switches"):
                            nonvol += int(line.split()[1])
            except OSError:
                pass
        rss = hwm = 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM"):
                    hwm = int(line.split()[1])
        return {"t": time.monotonic(), "cpu": cpu, "vol": vol, "nonvol": nonvol, "rss_kib": rss, "hwm_kib": hwm}
    except OSError:
        return None


class Kspan:
    """One kspan run: start, wait for ready, sample, stop, parse the stopped line."""

    def __init__(self, binary, extra=(), name="run", outputs=None, env=None):
        """outputs: the --output flags (default: one OTLP/JSON file, deleted at stop); env:
        extra environment variables (KSPAN_QUEUE_* have no flags)."""
        self.log = os.path.join(TMP, f"kspan-{name}-{time.monotonic_ns()}.log")
        self.out = os.path.join(TMP, f"spans-{name}.jsonl")
        self.errf = open(self.log, "w")
        if outputs is None:
            outputs = ["--output", f"file:{self.out}"]
        if "--store-path" not in extra:
            # The store is on by default and measured as such, in a file of the bench's own,
            # not the host's /var/lib/kspan/traces.db.
            extra = [*extra, "--store-path", os.path.join(TMP, "store.db")]
        self.p = spawn([binary, *outputs, *extra], stdout=subprocess.DEVNULL, stderr=self.errf,
                       env={**os.environ, **(env or {})})
        self.ready = None
        end = time.time() + 30
        while time.time() < end and self.p.poll() is None:
            for line in open(self.log):
                if '"msg":"ready"' in line:
                    self.ready = json.loads(line)
                    break
            if self.ready:
                break
            time.sleep(0.02)
        if not self.ready:
            raise RuntimeError(f"kspan did not become ready; log: {open(self.log).read()[-2000:]}")
        self.pid = self.p.pid

    def sample(self):
        return proc_sample(self.pid)

    def stop(self):
        stop(self.p)
        self.errf.close()
        stopped = {}
        for line in open(self.log):
            if '"msg":"stopped"' in line:
                stopped = json.loads(line)
        counters = {}
        for m in re.finditer(r'(\S+?)=(\d+)(?:\s|$)', stopped.get("counters", "")):
            counters[m.group(1)] = int(m.group(2))
        stopped["c"] = counters
        try:
            os.unlink(self.out)
        except OSError:
            pass
        return stopped


def kc(stopped, name):
    return stopped["c"].get(f'kspan_kernel_counts_total{{name="{name}"}}', 0)


def kernel_drops(stopped):
    return sum(kc(stopped, n) for n in ("ring_buffer_full_data", "ring_buffer_full_conn", "ring_buffer_full_proc"))


def delta(a, b):
    dt = b["t"] - a["t"]
    return {
        "seconds": dt,
        "cpu": b["cpu"] - a["cpu"],
        "vol_per_s": (b["vol"] - a["vol"]) / dt if dt > 0 else 0,
        "nonvol_per_s": (b["nonvol"] - a["nonvol"]) / dt if dt > 0 else 0,
    }


# ---------------------------------------------------------------- servers and load


def start_nginx(port, tls=False, worker_connections=4096, extra_http="", listen_extra=""):
    """nginx, 1 worker, keep-alive, `return 200`; with tls, HTTPS with a self-signed certificate made here.
    extra_http: more directives for the http block (e.g. timeouts); listen_extra: more listen
    parameters (" http2": h2c with prior knowledge)."""
    d = os.path.join(TMP, f"nginx-{port}")
    os.makedirs(d, exist_ok=True)
    listen = f"listen 127.0.0.1:{port}{listen_extra};"
    if tls:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                        "/CN=localhost", "-keyout", f"{d}/key.pem", "-out", f"{d}/cert.pem"],
                       capture_output=True, check=True, timeout=60)
        listen = (f"listen 127.0.0.1:{port} ssl;\n    ssl_certificate {d}/cert.pem;\n"
                  f"    ssl_certificate_key {d}/key.pem;")
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile {2 * worker_connections + 64};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections {worker_connections}; }}
http {{
  access_log off;
  {extra_http}
  client_body_temp_path {d};
  proxy_temp_path {d};
  fastcgi_temp_path {d};
  uwsgi_temp_path {d};
  scgi_temp_path {d};
  keepalive_requests 1000000;
  server {{
    {listen}
    location / {{ default_type text/plain; return 200 "Hello, World!"; }}
  }}
}}
""")
    p = spawn(["nginx", "-c", conf, "-p", d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_port(port):
        raise RuntimeError("nginx did not start")
    return p


def start_python(port, work_us=0):
    p = spawn(["/usr/bin/python3", os.path.join(HERE, "src", "http_app.py"), str(port), str(work_us)],
              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_port(port):
        raise RuntimeError("python app did not start")
    return p


def loadgen(helpers, port, rate, seconds, conns):
    out = subprocess.run([os.path.join(helpers, "loadgen"), "127.0.0.1", str(port), "/", str(rate), str(seconds),
                          str(conns)], capture_output=True, text=True, timeout=seconds + 20)
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"error": out.stderr[-500:]}


def wrk(port, seconds, conns, scheme="http", threads=1):
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--latency", f"{scheme}://127.0.0.1:{port}/"],
                         capture_output=True, text=True, timeout=seconds + 30)
    m = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    n = re.search(r"(\d+) requests in", out.stdout)
    res = {"rps": float(m.group(1)) if m else 0.0, "requests": int(n.group(1)) if n else 0}
    scale = {"us": 1, "ms": 1000, "s": 1e6}
    for pct in ("50", "99"):
        q = re.search(pct + r"%\s+([\d.]+)(us|ms|s)\b", out.stdout)
        if q:
            res[f"p{pct}_us"] = float(q.group(1)) * scale[q.group(2)]
    return res


def rotated(modes, rep):
    """`modes` starting at the rep-th, so alternating runs spread the machine's drift over all."""
    i = rep % len(modes)
    return modes[i:] + modes[:i]


def wrk_rotating(a, port, extra_by_mode, name):
    """`wrk -c32` requests/s per mode over a.reps rotating runs, kspan started with the mode's
    flags (None: untraced) for each run."""
    rps = {m: [] for m in extra_by_mode}
    for rep in range(a.reps):
        for mode in rotated(list(extra_by_mode), rep):
            extra = extra_by_mode[mode]
            k = Kspan(a.kspan, extra=extra, name=f"{name}-{mode}") if extra is not None else None
            rps[mode].append(wrk(port, a.seconds, 32)["rps"])
            if k:
                k.stop()
    return rps


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")


# ---------------------------------------------------------------- benchmarks


def bench_requests(a, server, start_fn, rate, conns, wrk_conns, wrk2=False):
    """Alternating without/with kspan; fixed-rate latency then full-speed throughput (wrk -t1,
    and with wrk2 also wrk -t2: a client on both CPUs, as issue 17's goal asks)."""
    port = free_port()
    srv = start_fn(port)
    loadgen(a.helpers, port, rate, 1, conns)  # warm up
    reps = []
    for rep in range(a.reps):
        order = ["off", "on"] if rep % 2 == 0 else ["on", "off"]
        r = {}
        for mode in order:
            k = Kspan(a.kspan, name=f"{server}-{rep}") if mode == "on" else None
            s0 = k.sample() if k else None
            fixed = loadgen(a.helpers, port, rate, a.seconds, conns)
            full = wrk(port, a.seconds, wrk_conns)
            res = {"fixed": fixed, "full": full}
            if wrk2:
                res["full2"] = wrk(port, a.seconds, wrk_conns, threads=2)
            if k:
                s1 = k.sample()
                st = k.stop()
                res.update({"ready": k.ready, "delta": delta(s0, s1), "stopped": st, "hwm_kib": s1["hwm_kib"]})
            r[mode] = res
        reps.append(r)
        print(f"  {server} rep {rep + 1}: p50 off/on {r['off']['fixed'].get('p50_us')}/{r['on']['fixed'].get('p50_us')} us, "
              f"rps off/on {r['off']['full']['rps']:.0f}/{r['on']['full']['rps']:.0f}", flush=True)
    stop(srv)
    f = lambda m, key: [x[m]["fixed"].get(key) for x in reps]
    out = {
        "server": server, "rate": rate, "conns": conns, "wrk_conns": wrk_conns,
        "p50_off": med(f("off", "p50_us")), "p50_on": med(f("on", "p50_us")),
        "p99_off": med(f("off", "p99_us")), "p99_on": med(f("on", "p99_us")),
        "p50_diff": med([x["on"]["fixed"]["p50_us"] - x["off"]["fixed"]["p50_us"] for x in reps
                         if "p50_us" in x["on"]["fixed"] and "p50_us" in x["off"]["fixed"]]),
        "p99_diff": med([x["on"]["fixed"]["p99_us"] - x["off"]["fixed"]["p99_us"] for x in reps
                         if "p99_us" in x["on"]["fixed"] and "p99_us" in x["off"]["fixed"]]),
        "rps_off": med([x["off"]["full"]["rps"] for x in reps]),
        "rps_on": med([x["on"]["full"]["rps"] for x in reps]),
        "rps_ratio": med([x["on"]["full"]["rps"] / x["off"]["full"]["rps"] for x in reps if x["off"]["full"]["rps"]]),
        "errors": sum(x[m]["fixed"].get("errors", 0) for x in reps for m in ("off", "on")),
    }
    if wrk2:
        out.update({
            "rps2_off": med([x["off"]["full2"]["rps"] for x in reps]),
            "rps2_on": med([x["on"]["full2"]["rps"] for x in reps]),
            "rps2_ratio": med([x["on"]["full2"]["rps"] / x["off"]["full2"]["rps"] for x in reps
                               if x["off"]["full2"]["rps"]]),
        })
    # Daemon cost while traced: CPU per request and per span over the whole traced window.
    cpu_per_req, wake, spans_per_req, drops, startup = [], [], [], {}, []
    for x in reps:
        on = x["on"]
        reqs = on["fixed"].get("completed", 0) + on["full"]["requests"] + on.get("full2", {}).get("requests", 0)
        if reqs:
            cpu_per_req.append(on["delta"]["cpu"] / reqs * 1e6)
            spans_per_req.append(on["stopped"].get("spans", 0) / reqs)
        wake.append(on["delta"]["vol_per_s"])
        for key, v in on["stopped"].items():
            if key.startswith("drops_") and isinstance(v, int) and v:
                drops[key] = drops.get(key, 0) + v
        startup.append(on["ready"].get("startup_ms"))
    out.update({"cpu_us_per_req": med(cpu_per_req), "wakeups_per_s": med(wake), "spans_per_req": med(spans_per_req),
                "drops": drops, "startup_ms": startup})
    return out


def h2load(port, seconds, conns, streams):
    """h2load (nghttp2-client) over h2c with prior knowledge: `conns` connections, `streams`
    concurrent streams on each, for `seconds`."""
    out = subprocess.run(["h2load", "-c", str(conns), "-m", str(streams), "-D", str(seconds),
                          f"http://127.0.0.1:{port}/"], capture_output=True, text=True, timeout=seconds + 30)
    m = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out.stdout)
    n = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored",
                  out.stdout)
    t = re.search(r"time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)\b", out.stdout)
    res = {"rps": float(m.group(1)) if m else 0.0, "requests": int(n.group(1)) if n else 0,
           "failed": int(n.group(3)) + int(n.group(4)) if n else -1}
    if t:
        res["mean_us"] = float(t.group(1)) * {"us": 1, "ms": 1000, "s": 1e6}[t.group(2)]
    return res


def bench_h2load(a):
    """HTTP/2: nginx h2c (`listen … http2`, 1 worker) driven by h2load with 1 and 100 concurrent
    streams on each of 4 connections; without and with kspan, alternating. While traced: daemon
    CPU per stream, spans per stream (both ends traced: 2), HTTP/2 parse failures."""
    port = free_port()
    srv = start_nginx(port, listen_extra=" http2", extra_http="http2_max_concurrent_streams 128;")
    h2load(port, 1, 4, 10)  # warm up
    out = {}
    for streams in (1, 100):
        reps = []
        for rep in range(a.reps):
            order = ["off", "on"] if rep % 2 == 0 else ["on", "off"]
            r = {}
            for mode in order:
                k = Kspan(a.kspan, name=f"h2load-{streams}-{rep}") if mode == "on" else None
                s0 = k.sample() if k else None
                res = h2load(port, a.seconds, 4, streams)
                if k:
                    s1 = k.sample()
                    st = k.stop()
                    res.update({"delta": delta(s0, s1), "stopped": st})
                r[mode] = res
            reps.append(r)
            print(f"  h2load -c4 -m{streams} rep {rep + 1}: req/s off/on {r['off']['rps']:.0f}/{r['on']['rps']:.0f}",
                  flush=True)
        on = [x["on"] for x in reps]
        out[str(streams)] = {
            "rps_off": med([x["off"]["rps"] for x in reps]), "rps_on": med([x["on"]["rps"] for x in reps]),
            "rps_ratio": med([x["on"]["rps"] / x["off"]["rps"] for x in reps if x["off"]["rps"]]),
            "mean_off": med([x["off"].get("mean_us") for x in reps]),
            "mean_on": med([x["on"].get("mean_us") for x in reps]),
            "cpu_us_per_stream": med([x["delta"]["cpu"] / x["requests"] * 1e6 for x in on if x["requests"]]),
            "spans_per_stream": med([x["stopped"].get("spans", 0) / x["requests"] for x in on if x["requests"]]),
            "parse_failures": sum(x["stopped"]["c"].get('kspan_parse_failures_total{protocol="http2"}', 0) for x in on),
            "not_captured": sum(x["stopped"]["c"].get(
                'kspan_requests_unanswered_total{protocol="http2",reason="response_not_captured"}', 0) for x in on),
            "failed": sum(x[m]["failed"] for x in reps for m in ("off", "on")),
            # Events the kernel could not queue (ring buffer full): their streams make no span.
            "ring_drops": sum(kernel_drops(x["stopped"]) for x in on),
            "records": sum(x["stopped"]["c"].get('kspan_records_total{protocol="http2"}', 0) for x in on),
            "streams": sum(x["requests"] for x in on),
        }
    stop(srv)
    return out


def nginx_pids(srv):
    """The nginx master and its workers (children of the master)."""
    try:
        kids = open(f"/proc/{srv.pid}/task/{srv.pid}/children").read().split()
    except OSError:
        kids = []
    return [srv.pid] + [int(k) for k in kids]


def bench_tls(a, server_only=False):
    """HTTPS: nginx (libssl) driven by wrk (libssl), both ends traced through the TLS uprobes
    (server_only: kspan --pid of nginx's processes only, as an agent that owns one service).

    Latency: wrk over one keep-alive connection (closed loop, so p50 is one request's round
    trip and with − without is what kspan adds to it). Throughput: wrk -c32 at full speed.
    Alternating without/with kspan, like the plaintext rows."""
    port = free_port()
    srv = start_nginx(port, tls=True)
    wrk(port, 1, 1, "https")  # warm up
    extra = [x for pid in nginx_pids(srv) for x in ("--pid", str(pid))] if server_only else []
    label = "tls-server" if server_only else "tls"
    reps = []
    for rep in range(a.reps):
        order = ["off", "on"] if rep % 2 == 0 else ["on", "off"]
        r = {}
        for mode in order:
            k = Kspan(a.kspan, extra=extra, name=f"{label}-{rep}") if mode == "on" else None
            s0 = k.sample() if k else None
            one = wrk(port, a.seconds, 1, "https")
            full = wrk(port, a.seconds, 32, "https")
            res = {"one": one, "full": full}
            if k:
                res["delta"] = delta(s0, k.sample())
                res["stopped"] = k.stop()
            r[mode] = res
        reps.append(r)
        print(f"  {label} rep {rep + 1}: p50 off/on {r['off']['one'].get('p50_us')}/{r['on']['one'].get('p50_us')} us, "
              f"rps off/on {r['off']['full']['rps']:.0f}/{r['on']['full']['rps']:.0f}", flush=True)
    # One more traced window, with the kernel's BPF statistics on (they cost a little per
    # run, so not during the timed runs above): uprobe traps per request. Every run of a
    # uprobe or uretprobe program is one trap (bpftool shows both as type "kprobe").
    w, progs0, progs1, *_ = traced_window(a, extra, f"{label}-traps", lambda: wrk(port, min(a.seconds, 3), 32, "https"))
    rows = prog_rows(progs0, progs1, max(w["requests"], 1))
    traps = [r for r in rows if r["type"] == "kprobe" and r["runs"]]
    stop(srv)
    ok = [x for x in reps if "p50_us" in x["on"]["one"] and "p50_us" in x["off"]["one"]]
    spans, reqs = 0, 0
    cpu_per_req = []
    for x in reps:
        spans += x["on"]["stopped"].get("spans", 0)
        n = x["on"]["one"]["requests"] + x["on"]["full"]["requests"]
        reqs += n
        if n:
            cpu_per_req.append(x["on"]["delta"]["cpu"] / n * 1e6)
    return {
        "p50_off": med([x["off"]["one"]["p50_us"] for x in ok]), "p50_on": med([x["on"]["one"]["p50_us"] for x in ok]),
        "p50_diff": med([x["on"]["one"]["p50_us"] - x["off"]["one"]["p50_us"] for x in ok]),
        "rps1_off": med([x["off"]["one"]["rps"] for x in reps]), "rps1_on": med([x["on"]["one"]["rps"] for x in reps]),
        "rps_off": med([x["off"]["full"]["rps"] for x in reps]), "rps_on": med([x["on"]["full"]["rps"] for x in reps]),
        "rps_ratio": med([x["on"]["full"]["rps"] / x["off"]["full"]["rps"] for x in reps if x["off"]["full"]["rps"]]),
        "spans_per_req": spans / reqs if reqs else float("nan"),
        "cpu_us_per_req": med(cpu_per_req),
        "parse_failures": sum(x["on"]["stopped"]["c"].get('kspan_parse_failures_total{protocol="http1"}', 0)
                              for x in reps),
        "traps_per_req": sum(r["runs_per_req"] for r in traps),
        "uprobe_ns_per_req": sum(r["ns_per_req"] for r in traps),
        "traps": [{"name": r["name"], "runs_per_req": r["runs_per_req"], "ns_per_run": r["ns_per_run"]} for r in traps],
    }


def bench_tls_go(a):
    """HTTPS between a Go server and a Go client (tests/apps/go/tlsapp.go, crypto/tls, HTTP/1.1),
    both traced through the Go TLS uprobes (bpf/go_tls.bpf.c): one connection, one request after
    another, so p50 with − without is what the probes and kspan add to a round trip. Alternating
    without/with kspan; with it, the kernel's run-time statistics count the Go TLS programs' runs
    (each run is one uprobe trap) and BPF time per request."""
    app = os.path.join(a.helpers, "tlsapp")
    d = tempfile.mkdtemp(prefix="kspan-bench-go-", dir=TMP)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost", "-keyout", f"{d}/key.pem", "-out", f"{d}/cert.pem"],
                   check=True, capture_output=True, timeout=60)
    port = free_port()
    srv = spawn([app, "server", str(port), f"{d}/cert.pem", f"{d}/key.pem", "h1"], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
    wait_port(port)
    base = f"https://localhost:{port}"

    def client():
        out = subprocess.run([app, "bench", base, f"{d}/cert.pem", "h1", str(a.seconds)], capture_output=True,
                             text=True, timeout=a.seconds + 30).stdout.split()
        return {"requests": int(out[1]), "p50_us": float(out[3]), "rps": int(out[1]) / a.seconds}

    client()  # warm up
    reps = []
    for rep in range(a.reps):
        order = ["off", "on"] if rep % 2 == 0 else ["on", "off"]
        r = {}
        for mode in order:
            if mode == "off":
                r[mode] = client()
                continue
            before = ks_ids("prog")
            k = Kspan(a.kspan, name=f"tls-go-{rep}")
            # kspan attaches the Go probes to the server's binary at start (its executable is
            # mapped); the client is the same file.
            progs = {p["id"] for p in bpftool_json("prog", "show")
                     if p["id"] not in before and p.get("name", "").startswith("ks_go_")}
            res, p0, p1, _ = with_bpf_stats(progs, client)
            res["rows"] = prog_rows(p0, p1, max(res["requests"], 1))
            res["stopped"] = k.stop()
            r[mode] = res
        reps.append(r)
        print(f"  tls-go rep {rep + 1}: p50 off/on {r['off']['p50_us']}/{r['on']['p50_us']} us", flush=True)
    stop(srv)
    rows = {}
    for x in reps:
        for row in x["on"]["rows"]:
            rows.setdefault(row["name"], []).append(row)
    return {
        "p50_off": med([x["off"]["p50_us"] for x in reps]), "p50_on": med([x["on"]["p50_us"] for x in reps]),
        "p50_diff": med([x["on"]["p50_us"] - x["off"]["p50_us"] for x in reps]),
        "rps_off": med([x["off"]["rps"] for x in reps]), "rps_on": med([x["on"]["rps"] for x in reps]),
        "progs": {n: {"runs_per_req": med([r["runs_per_req"] for r in v]), "ns_per_run": med([r["ns_per_run"] for r in v]),
                      "ns_per_req": med([r["ns_per_req"] for r in v])} for n, v in rows.items()},
        "parse_failures": sum(x["on"]["stopped"].get("c", {}).get('kspan_parse_failures_total{protocol="http1"}', 0)
                              for x in reps),
    }


def bpftool_json(*args):
    out = subprocess.run(["bpftool", "-j", *args], capture_output=True, text=True, timeout=30)
    try:
        return json.loads(out.stdout)
    except ValueError:
        return []


def ks_ids(kind):
    """ids of the kspan programs or maps (names ks_*, kspan_*) loaded right now. bpftool 7.1
    here reports no owning pids, so ours are the ones that appear after kspan starts."""
    return {e["id"] for e in bpftool_json(kind, "show") if e.get("name", "").startswith(("ks_", "kspan_"))}


def with_bpf_stats(prog_ids, fn):
    """Runs fn() with kernel.bpf_stats_enabled=1; returns (fn's result, the run_cnt and
    run_time_ns of each program in prog_ids before and after), restoring the setting."""
    with open("/proc/sys/kernel/bpf_stats_enabled") as f:
        old = f.read().strip()
    progs0 = progs1 = {}
    try:
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write("1")
        progs0 = {p["id"]: p for p in bpftool_json("prog", "show") if p["id"] in prog_ids}
        res = fn()
        progs1 = {p["id"]: p for p in bpftool_json("prog", "show") if p["id"] in prog_ids}
    finally:
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write(old)
    return res, progs0, progs1, old


def traced_window(a, extra, name, fn):
    """Starts kspan with `extra`, runs fn() with kernel.bpf_stats_enabled for the programs
    that start loaded, stops kspan. Returns fn's result, the programs' statistics before and
    after, kspan's samples before and after fn, and what its stop reported."""
    before = ks_ids("prog")
    k = Kspan(a.kspan, extra=extra, name=name)
    mine = ks_ids("prog") - before
    s0 = k.sample()
    res, progs0, progs1, _ = with_bpf_stats(mine, fn)
    s1 = k.sample()
    return res, progs0, progs1, s0, s1, k.stop()


def prog_rows(progs0, progs1, reqs):
    rows = []
    for pid_, p in progs1.items():
        p0 = progs0.get(pid_, {})
        runs = p.get("run_cnt", 0) - p0.get("run_cnt", 0)
        ns = p.get("run_time_ns", 0) - p0.get("run_time_ns", 0)
        rows.append({"name": p.get("name", "?"), "type": p.get("type", "?"), "runs": runs, "ns": ns,
                     "ns_per_run": ns / runs if runs else 0.0, "runs_per_req": runs / reqs, "ns_per_req": ns / reqs})
    rows.sort(key=lambda r: -r["ns"])
    return rows


def bench_kernel(a):
    """ns per program run and per request from the kernel's BPF run-time statistics."""
    port = free_port()
    srv = start_nginx(port)
    before = {"prog": ks_ids("prog"), "map": ks_ids("map")}
    k = Kspan(a.kspan, name="kernel")
    mine = {kind: ks_ids(kind) - before[kind] for kind in before}
    t0 = time.monotonic()
    lg, progs0, progs1, old = with_bpf_stats(mine["prog"], lambda: loadgen(a.helpers, port, a.kernel_rate, a.seconds, 8))
    t1 = time.monotonic()
    maps = [m for m in bpftool_json("map", "show") if m["id"] in mine["map"]]
    st = k.stop()
    stop(srv)
    reqs = lg.get("completed", 0) or 1
    rows = prog_rows(progs0, progs1, reqs)
    map_rows = sorted(({"name": m.get("name", "?"), "type": m.get("type", "?"), "bytes_memlock": m.get("bytes_memlock", 0),
                        "max_entries": m.get("max_entries", 0)} for m in maps), key=lambda m: -m["bytes_memlock"])
    return {"requests": reqs, "seconds": t1 - t0, "loadgen": lg, "progs": rows,
            "ns_per_req": sum(r["ns"] for r in rows) / reqs, "spans_per_req": st.get("spans", 0) / reqs,
            "maps": map_rows,
            "maps_bytes": sum(m["bytes_memlock"] for m in map_rows), "stats_restored_to": old,
            "drops": kernel_drops(st)}


def bench_exclude(a):
    """--exclude (docs/deploy.md): what a process kspan skips still costs. nginx and the
    load generator at a fixed rate, both excluded by executable, against both traced:
    kernel ns per request (BPF run-time statistics), events that reached user space, daemon
    CPU; then wrk's requests/s untraced, excluded and traced, alternating."""
    port = free_port()
    srv = start_nginx(port)
    rules = {"excluded": ["--exclude", "exe=nginx", "--exclude", "exe=loadgen", "--exclude", "exe=wrk"],
             "traced": []}
    out = {}
    for mode in ("traced", "excluded"):
        lg, progs0, progs1, s0, s1, st = traced_window(
            a, rules[mode], f"exclude-{mode}", lambda: loadgen(a.helpers, port, a.kernel_rate, a.seconds, 8))
        reqs = lg.get("completed", 0) or 1
        rows = prog_rows(progs0, progs1, reqs)
        out[mode] = {"requests": reqs, "ns_per_req": sum(r["ns"] for r in rows) / reqs,
                     "runs_per_req": sum(r["runs"] for r in rows) / reqs,
                     "events_per_req": st.get("events", 0) / reqs, "spans": st.get("spans", 0),
                     "cpu_us_per_req": delta(s0, s1)["cpu"] / reqs * 1e6,
                     "dropped_in_user_space": st["c"].get('kspan_selection_events_dropped_total{reason="skipped"}', 0)}
        print(f"  {mode}: {out[mode]['ns_per_req']:.0f} kernel ns/request, {out[mode]['events_per_req']:.2f} "
              f"events/request reached user space", flush=True)
    rps = wrk_rotating(a, port, {"off": None, **rules}, "exclude-wrk")
    stop(srv)
    out["rps"] = {m: med(v) for m, v in rps.items()}
    out["rps_ratio_excluded"] = med([e / o for e, o in zip(rps["excluded"], rps["off"]) if o])
    out["rps_ratio_traced"] = med([t / o for t, o in zip(rps["traced"], rps["off"]) if o])
    return out


def daemon_run(a, extra=(), name="daemon"):
    """nginx at a.daemon_rate for a.daemon_seconds under kspan with `extra` flags: daemon CPU,
    RSS and wake-ups (both ends traced: 2 spans a request)."""
    port = free_port()
    srv = start_nginx(port)
    k = Kspan(a.kspan, extra=extra, name=name)
    s0 = k.sample()
    rss = []
    lgp = spawn([os.path.join(a.helpers, "loadgen"), "127.0.0.1", str(port), "/", str(a.daemon_rate), str(a.daemon_seconds), "8"],
                stdout=subprocess.PIPE, text=True)
    end = time.time() + a.daemon_seconds + 20
    while lgp.poll() is None and time.time() < end:
        s = k.sample()
        if s:
            rss.append(s["rss_kib"])
        time.sleep(0.25)
    lg = json.loads(lgp.stdout.read().strip().splitlines()[-1] or "{}")
    s1 = k.sample()
    ring_twice = ring_twice_kib(k.p.pid)
    st = k.stop()
    stop(srv)
    d = delta(s0, s1)
    spans = st.get("spans", 0)
    completed = max(lg.get("completed", 1), 1)
    return {"loadgen": lg, "spans": spans, "spans_per_s": spans / d["seconds"], "cpu": d["cpu"],
            "cpu_per_10k_spans": d["cpu"] / spans * 1e4 if spans else float("nan"),
            "cpu_us_per_req": d["cpu"] / completed * 1e6,
            # Spans built (before sampling): the client's and nginx's, per request.
            "cpu_us_per_built_span": d["cpu"] / (2 * completed) * 1e6,
            "rss_steady_mib": (med(rss[len(rss) // 2:]) - ring_twice) / 1024 if rss else float("nan"),
            "rss_peak_mib": (s1["hwm_kib"] - ring_twice) / 1024, "vm_hwm_mib": s1["hwm_kib"] / 1024,
            "wakeups_per_s": d["vol_per_s"],
            "nonvol_per_s": d["nonvol_per_s"], "drops": kernel_drops(st), "seconds": d["seconds"]}


def bench_daemon(a):
    """CPU per 10k spans and RSS at ~10k spans/s (both ends traced: 2 spans a request)."""
    return daemon_run(a)


# Span metrics and sampling (docs/metrics.md): the same load as "daemon cost" under three
# configurations, alternating so drift in the machine spreads over all three.
METRICS_CONFIGS = [
    ("metrics off", ["--span-metrics", "false"]),
    ("metrics on", []),
    ("metrics on, 10 % sampler", ["--sampler", "traceidratio", "--sampler-arg", "0.1"]),
]


def bench_metrics(a):
    reps = 1 if a.quick else 3
    runs = {label: [] for label, _ in METRICS_CONFIGS}
    for r in range(reps):
        order = METRICS_CONFIGS if r % 2 == 0 else METRICS_CONFIGS[::-1]
        for label, extra in order:
            runs[label].append(daemon_run(a, extra, name="metrics"))
    out = {}
    # Without a kernel: the processors alone, and the whole user-space pipeline three ways.
    exe = os.path.join(os.path.dirname(a.kspan), "kspan-pipeline-bench")
    if os.access(exe, os.X_OK):
        ns = []
        for _ in range(reps):
            r = subprocess.run([exe, "--metrics-only", "200000"], capture_output=True, text=True, timeout=300)
            m = re.search(r"([\d.]+) ns per span", r.stdout)
            if m:
                ns.append(float(m.group(1)))
        out["processors_ns_per_span"] = med(ns) if ns else float("nan")
        pipe = {label: [] for label, _ in METRICS_CONFIGS}
        pipe_flags = {"metrics off": ["--span-metrics", "false"], "metrics on": [],
                      "metrics on, 10 % sampler": ["--sampler-ratio", "0.1"]}
        for r in range(reps):
            order = METRICS_CONFIGS if r % 2 == 0 else METRICS_CONFIGS[::-1]
            for label, _ in order:
                x = subprocess.run([exe, "--runs", "1", "--requests", "50000" if a.quick else "200000",
                                    *pipe_flags[label]], capture_output=True, text=True, timeout=600)
                m = re.search(r"median: ([\d.]+) us", x.stdout)
                if m:
                    pipe[label].append(float(m.group(1)) / 2)  # 2 spans a request
        out["pipeline_us_per_span"] = {label: med(v) if v else float("nan") for label, v in pipe.items()}
    for label, _ in METRICS_CONFIGS:
        rs = runs[label]
        out[label] = {"cpu_us_per_built_span": med([x["cpu_us_per_built_span"] for x in rs]),
                      "cpu_us_per_req": med([x["cpu_us_per_req"] for x in rs]),
                      "spans_exported_per_req": med([x["spans"] / max(x["loadgen"].get("completed", 1), 1) for x in rs]),
                      "rss_peak_mib": max(x["rss_peak_mib"] for x in rs), "drops": sum(x["drops"] for x in rs),
                      "runs": [round(x["cpu_us_per_built_span"], 3) for x in rs]}
    return out


# The trace store (docs/ui.md): nginx at full speed under kspan with the store off, on at its
# default rate bound, and on for every span, beside an untraced run, rotating.
STORE_CONFIGS = [
    ("store off", ["--ui", "false"]),
    ("store on, 1,000 spans/s (default)", []),
    ("store on, every span", ["--store-max-spans-per-second", "0"]),
]


def bench_store(a):
    port = free_port()
    srv = start_nginx(port)
    wrk(port, 1, 32)  # warm up
    modes = ["untraced"] + [label for label, _ in STORE_CONFIGS]
    rps = {m: [] for m in modes}
    cpu, written, refused = ({label: [] for label, _ in STORE_CONFIGS} for _ in range(3))
    for rep in range(a.reps):
        for mode in rotated(modes, rep):
            if mode == "untraced":
                rps[mode].append(wrk(port, a.seconds, 32)["rps"])
                continue
            extra = dict(STORE_CONFIGS)[mode]
            db = os.path.join(TMP, f"store-bench-{rep}.db")
            k = Kspan(a.kspan, extra=[*extra, "--store-path", db, "--listen", "127.0.0.1:0"], name="store")
            s0 = k.sample()
            w = wrk(port, a.seconds, 32)
            s1 = k.sample()
            st = k.stop()
            for suffix in ("", "-wal", "-shm"):
                try:
                    os.unlink(db + suffix)
                except OSError:
                    pass
            reqs = max(w["requests"], 1)
            rps[mode].append(w["rps"])
            cpu[mode].append(delta(s0, s1)["cpu"] / reqs * 1e6)
            written[mode].append(st["c"].get("kspan_store_spans_written_total", 0) / reqs)
            refused[mode].append(st["c"].get('kspan_store_spans_dropped_total{reason="rate"}', 0) / reqs)
        print(f"  rep {rep + 1}: " + ", ".join(f"{m} {rps[m][-1]:.0f} rps" for m in modes), flush=True)
    stop(srv)
    out = {"rps": {m: med(v) for m, v in rps.items()}, "rows": {}}
    for label, _ in STORE_CONFIGS:
        out["rows"][label] = {
            "rps": med(rps[label]),
            "ratio": med([x / o for x, o in zip(rps[label], rps["untraced"]) if o]),
            "cpu_us_per_req": med(cpu[label]), "written_per_req": med(written[label]),
            "refused_per_req": med(refused[label])}
    exe = os.path.join(os.path.dirname(a.kspan), "kspan-store-bench")
    if os.access(exe, os.X_OK):
        x = subprocess.run([exe, "--runs", "1" if a.quick else "5", "--spans", "50000" if a.quick else "100000"],
                           capture_output=True, text=True, timeout=900)
        m = re.search(r"median: ([\d.]+) us/span", x.stdout)
        b = re.findall(r"(\d+) bytes/span", x.stdout)
        out["store_us_per_span"] = float(m.group(1)) if m else float("nan")
        out["store_bytes_per_span"] = med([float(v) for v in b]) if b else float("nan")
    return out


def bench_pipeline(a):
    """The user-space pipeline alone on synthetic events (kspan-pipeline-bench, built next to
    kspan): CPU per request with no kernel and no load generator sharing the CPUs."""
    exe = os.path.join(os.path.dirname(a.kspan), "kspan-pipeline-bench")
    if not os.access(exe, os.X_OK):
        return {"error": f"{exe} not found: build the kspan-pipeline-bench target"}
    runs = 1 if a.quick else 5
    out = subprocess.run([exe, "--runs", str(runs), "--requests", "50000" if a.quick else "200000"],
                         capture_output=True, text=True, timeout=600)
    lines = out.stdout.strip().splitlines()
    median = next((l for l in lines if l.startswith("median:")), "")
    if out.returncode != 0 or not median:
        return {"error": f"kspan-pipeline-bench failed ({out.returncode}): {out.stderr.strip()[-300:]}"}
    return {"us_per_req": float(median.split()[1]), "runs": [l for l in lines if l.startswith("run ")],
            "median_line": median}


def bench_carrier(a):
    """The trace-context carriers on this kernel (kspan-carrier-probe, built next to kspan): ns
    added per round trip over a veth pair between two namespaces it creates, and
    ioctl(FIONREAD) with each attached (docs/tracing.md "Context across hosts")."""
    res = carrier_probe(a)
    # The agent's figures need no probe: a missing or failed probe skips only its table.
    res["agent"] = carrier_agent(a)
    return res


def carrier_probe(a):
    exe = os.path.join(os.path.dirname(a.kspan), "kspan-carrier-probe")
    if not os.access(exe, os.X_OK):
        return {"error": f"{exe} not found: build the kspan-carrier-probe target"}
    n, reps = ("5000", "1") if a.quick else ("20000", "5")
    out = subprocess.run([exe, n, reps], capture_output=True, text=True, timeout=600)
    rows = {}
    for line in out.stdout.splitlines():
        f = line.split()
        if len(f) == 5 and f[0] in ("base", "option-idle", "option", "option-kernel", "skmsg-pass", "skmsg-push"):
            rows[f[0]] = {"ns_per_rtt": float(f[1]), "added_ns": float(f[2]), "fionread": int(f[3]),
                          "fionread_expected": int(f[4].strip("()"))}
    if out.returncode != 0 or "base" not in rows:
        return {"error": f"kspan-carrier-probe failed ({out.returncode}): {out.stderr.strip()[-300:]}"}
    return {"rows": rows, "round_trips": int(n), "reps": int(reps),
            "notes": [l[2:] for l in out.stdout.splitlines() if l.startswith("# ")]}


CARRIER_MODES = {"off": [], "tcp-option": ["--carrier", "tcp-option"], "http-header": ["--carrier", "http-header"]}


def carrier_agent(a):
    """The agent with each carrier (--carrier tcp-option, --carrier http-header) against
    without (off, the default): loadgen -> nginx on 127.0.0.1, both ends traced (the
    carrier writes on the client's requests and reads on nginx's end of the same host), at a
    fixed rate, a.reps rotating runs (off, tcp-option, http-header; then rotated by one):
    kernel ns per request of all kspan programs (BPF statistics: the carrier's programs
    included when on) and of the carrier's alone, daemon CPU per request, the carrier's
    counters; medians, and the median of each carrier's per-repetition carrier - off
    differences. Then wrk requests/s, rotating. The load average is noted before and after:
    on a busy host read the differences, not single figures."""
    port = free_port()
    srv = start_nginx(port)
    flags = CARRIER_MODES
    runs = {m: [] for m in flags}
    load_before = os.getloadavg()
    for rep in range(a.reps):
        for mode in rotated(list(flags), rep):
            lg, progs0, progs1, s0, s1, st = traced_window(
                a, flags[mode], f"carrier-{mode}", lambda: loadgen(a.helpers, port, a.kernel_rate, a.seconds, 8))
            reqs = lg.get("completed", 0) or 1
            rows = prog_rows(progs0, progs1, reqs)
            car = [r for r in rows if r["name"].startswith(("ks_car", "ks_carrier", "ks_hdr"))]
            c = st.get("c", {})
            r = {"requests": reqs, "ns_per_req": sum(r["ns"] for r in rows) / reqs,
                 "carrier_ns_per_req": sum(r["ns"] for r in car) / reqs,
                 "carrier_runs_per_req": sum(r["runs"] for r in car) / reqs,
                 "cpu_us_per_req": delta(s0, s1)["cpu"] / reqs * 1e6,
                 "written": c.get('kspan_carrier_options_total{outcome="written"}', 0)
                 + c.get('kspan_carrier_headers_total{outcome="written"}', 0),
                 "parsed": c.get('kspan_carrier_options_total{outcome="parsed"}', 0),
                 "used": c.get('kspan_carrier_contexts_total{outcome="used",side="client"}', 0)
                 + c.get('kspan_carrier_contexts_total{side="client",outcome="used"}', 0),
                 "p50_us": lg.get("p50_us", float("nan"))}
            runs[mode].append(r)
            print(f"  agent carrier {mode} (run {rep + 1}): {r['ns_per_req']:.0f} kernel ns/request "
                  f"({r['carrier_ns_per_req']:.0f} in the carrier), {r['cpu_us_per_req']:.1f} "
                  f"daemon CPU us/request, {r['written']} contexts written", flush=True)
    out = {"reps": a.reps, "load_before": load_before, "modes": list(flags)}
    for mode in flags:
        out[mode] = {key: med([r[key] for r in runs[mode]]) for key in runs[mode][0]}
        out[mode]["runs"] = runs[mode]
    out["added"] = {}
    for mode in flags:
        if mode == "off":
            continue
        pairs = list(zip(runs[mode], runs["off"]))
        out["added"][mode] = {key: med([on[key] - off[key] for on, off in pairs])
                              for key in ("ns_per_req", "carrier_ns_per_req", "cpu_us_per_req", "p50_us")}
    rps = wrk_rotating(a, port, {"untraced": None, **flags}, "carrier-wrk")
    stop(srv)
    out["load_after"] = os.getloadavg()
    out["rps"] = {m: med(v) for m, v in rps.items()}
    out["rps_ratio_vs_off"] = {m: med([n / o for n, o in zip(rps[m], rps["off"]) if o])
                               for m in flags if m != "off"}
    return out


def bench_idle(a):
    """RSS and CPU with N open idle loopback connections (client and server ends: 2N sockets)."""
    def raise_nofile():
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ic = spawn([os.path.join(a.helpers, "idleconns"), str(a.idle_conns), str(a.idle_hold)],
               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, preexec_fn=raise_nofile)
    json.loads(ic.stdout.readline())
    k = Kspan(a.kspan, name="idle")
    s0 = k.sample()
    t0 = time.monotonic()
    ic.stdin.write("go\n")
    ic.stdin.flush()
    opened = json.loads(ic.stdout.readline() or "{}")
    t_open = time.monotonic() - t0
    s1 = k.sample()
    rss = []
    end = time.time() + a.idle_hold + 20
    while ic.poll() is None and time.time() < end:
        s = k.sample()
        if s:
            rss.append(s["rss_kib"])
        time.sleep(0.25)
    s2 = k.sample()
    ring_twice = ring_twice_kib(k.p.pid)
    st = k.stop()
    stop(ic)
    held = delta(s1, s2)
    return {"open": opened.get("open", 0), "open_seconds": t_open, "cpu_open": delta(s0, s1)["cpu"],
            "cpu_hold_per_s": held["cpu"] / held["seconds"] if held["seconds"] else 0,
            "wakeups_per_s": held["vol_per_s"],
            "rss_steady_mib": (med(rss) - ring_twice) / 1024 if rss else float("nan"),
            "rss_peak_mib": (s2["hwm_kib"] - ring_twice) / 1024,
            "vm_hwm_mib": s2["hwm_kib"] / 1024,
            "conn_opens": st["c"].get('kspan_events_total{type="conn_open"}', 0),
            "conn_map_full": kc(st, "conn_map_full"), "drops": kernel_drops(st),
            "evicted": st.get("drops_conn_evicted", 0)}


def bench_profile(a):
    """Where the daemon's CPU goes at full speed: perf samples of kspan (if perf works)."""
    if subprocess.run(["sh", "-c", "command -v perf"], capture_output=True).returncode != 0:
        return {"error": "perf not installed"}
    port = free_port()
    srv = start_nginx(port)
    k = Kspan(a.kspan, name="profile")
    data = os.path.join(TMP, "perf.data")
    pr = spawn(["perf", "record", "-F", "499", "-p", str(k.pid), "-o", data, "--", "sleep", str(a.seconds - 1)],
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    w = wrk(port, a.seconds, 32)
    try:
        pr.wait(timeout=30)
    except subprocess.TimeoutExpired:
        stop(pr, signal.SIGINT)
    k.stop()
    stop(srv)
    out = subprocess.run(["perf", "report", "-i", data, "--no-children", "--stdio", "--sort", "dso,sym", "-g", "none"],
                         capture_output=True, text=True, timeout=60).stdout
    rows = []
    for line in out.splitlines():
        m = re.match(r"\s+([\d.]+)%\s+(\S+)\s+\[.\]\s+(.*)", line)
        if m:
            rows.append({"pct": float(m.group(1)), "dso": m.group(2), "sym": m.group(3).strip()[:90]})
    return {"rps": w["rps"], "top": rows[:15]}


def flood_step(a, rate, extra):
    fl = spawn([os.path.join(a.helpers, "flood"), str(rate), str(a.flood_seconds), str(a.flood_msg)],
               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    pid = json.loads(fl.stdout.readline())["pid"]
    k = Kspan(a.kspan, extra=["--pid", str(pid), *extra], name=f"flood-{rate}")
    s0 = k.sample()
    fl.stdin.write("go\n")
    fl.stdin.flush()
    gen = json.loads(fl.stdout.readline() or "{}")
    time.sleep(0.1)
    s1 = k.sample()
    st = k.stop()
    fl.stdin.close()
    fl.wait(timeout=10)
    d = delta(s0, s1)
    g = gen.get("socket_events", 0)
    kern = kc(st, "events")
    drops = kernel_drops(st)
    got = st["c"].get("kspan_ring_buffer_records_total", 0)
    return {"rate_target": rate, "rate": gen.get("events_per_s", 0), "generated": g, "kernel_events": kern,
            "drops": drops, "received": got, "missing": g - got,
            "check": "yes" if g - got == drops and kern + drops == g else "NO",
            "cpu": d["cpu"], "events_per_cpu_s": got / d["cpu"] if d["cpu"] > 0 else float("nan"),
            "wakeups_per_s": d["vol_per_s"], "copy_failed": kc(st, "payload_copy_failed")}


def bench_saturation(a):
    out = {}
    for label, extra in (("default", []), ("small", ["--ring-buffer-bytes", str(a.small_ring),
                                                      "--drain-interval-ms", str(a.small_drain)])):
        rows = []
        for rate in a.flood_rates:
            r = flood_step(a, rate, extra)
            rows.append(r)
            print(f"  saturation[{label}] target {rate or 'max'}: {r['rate']:.0f} ev/s generated {r['generated']} "
                  f"kernel {r['kernel_events']} drops {r['drops']} received {r['received']} check {r['check']}", flush=True)
        out[label] = rows
    return out


def start_postgres():
    """PostgreSQL 15 in a cluster of its own (trust authentication, fsync off), pgbench's
    tables filled server-side (-I dtGp: no client-side COPY)."""
    bin_ = "/usr/lib/postgresql/15/bin/"
    d = tempfile.mkdtemp(prefix="kspan-bench-pg-")  # outside TMP, which only root may enter
    subprocess.run(["chown", "postgres:postgres", d], check=True)
    subprocess.run(["runuser", "-u", "postgres", "--", bin_ + "initdb", "-D", d + "/data", "-U", "postgres",
                    "--auth=trust"], capture_output=True, check=True, timeout=120)
    port = free_port()
    p = spawn(["runuser", "-u", "postgres", "--", bin_ + "postgres", "-D", d + "/data", "-p", str(port), "-k", d,
               "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"], stdout=subprocess.DEVNULL,
              stderr=subprocess.DEVNULL)
    if not wait_port(port, 30):
        raise RuntimeError("postgres did not start")
    subprocess.run([bin_ + "pgbench", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-i", "-I", "dtGp", "-q",
                    "-s", "1", "postgres"], capture_output=True, check=True, timeout=120)
    return p, port, d


def pgbench(port, seconds):
    """pgbench -M prepared -S (one SELECT a transaction), 4 clients, 2 threads."""
    out = subprocess.run(["/usr/lib/postgresql/15/bin/pgbench", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                          "-n", "-M", "prepared", "-S", "-c", "4", "-j", "2", "-T", str(seconds), "postgres"],
                         capture_output=True, text=True, timeout=seconds + 60)
    tps = re.search(r"tps = ([\d.]+)", out.stdout)
    n = re.search(r"number of transactions actually processed: (\d+)", out.stdout)
    return {"ops_s": float(tps.group(1)) if tps else 0.0, "ops": int(n.group(1)) if n else 0}


def redis_benchmark(port, n):
    """redis-benchmark -P 16 -c 8, SET and GET, n requests each; ops/s the mean of the two."""
    out = subprocess.run(["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-n", str(n), "-c", "8", "-P", "16",
                          "-t", "set,get", "--csv"], capture_output=True, text=True, timeout=300)
    rates = [float(m.group(1)) for m in re.finditer(r'^"(?:SET|GET)","([\d.]+)"', out.stdout, re.M)]
    return {"ops_s": statistics.mean(rates) if rates else 0.0, "ops": 2 * n}


def bench_databases(a):
    """pgbench and redis-benchmark without and with kspan, alternating; daemon CPU per span
    while traced (spans: the agent's count over the traced window, so other traffic on the
    host counts too)."""
    pg, pg_port, pg_dir = start_postgres()
    rd_port = free_port()
    rd = spawn(["redis-server", "--port", str(rd_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_port(rd_port):
        raise RuntimeError("redis-server did not start")
    redis_n = 20000 if a.quick else 200000
    out = {}
    for name, run in (("pgbench", lambda: pgbench(pg_port, a.seconds)), ("redis-benchmark", lambda: redis_benchmark(rd_port, redis_n))):
        run()  # warm up
        reps = []
        for rep in range(a.reps):
            r = {}
            for mode in (["off", "on"] if rep % 2 == 0 else ["on", "off"]):
                k = Kspan(a.kspan, name=f"{name}-{rep}") if mode == "on" else None
                s0 = k.sample() if k else None
                res = run()
                if k:
                    d = delta(s0, k.sample())
                    st = k.stop()
                    res.update({"cpu": d["cpu"], "spans": st.get("spans", 0), "drops": kernel_drops(st),
                                "parse_failures": sum(v for key, v in st["c"].items()
                                                      if key.startswith("kspan_parse_failures_total"))})
                r[mode] = res
            reps.append(r)
            print(f"  {name} rep {rep + 1}: ops/s off/on {r['off']['ops_s']:.0f}/{r['on']['ops_s']:.0f}, "
                  f"spans {r['on']['spans']}, daemon CPU {r['on']['cpu']:.2f} s", flush=True)
        out[name] = {
            "ops_off": med([x["off"]["ops_s"] for x in reps]), "ops_on": med([x["on"]["ops_s"] for x in reps]),
            "ratio": med([x["on"]["ops_s"] / x["off"]["ops_s"] for x in reps if x["off"]["ops_s"]]),
            "spans_per_op": med([x["on"]["spans"] / x["on"]["ops"] for x in reps if x["on"]["ops"]]),
            "cpu_us_per_span": med([x["on"]["cpu"] / x["on"]["spans"] * 1e6 for x in reps if x["on"]["spans"]]),
            "drops": sum(x["on"]["drops"] for x in reps),
            "parse_failures": sum(x["on"]["parse_failures"] for x in reps),
        }
    stop(rd)
    stop(pg, signal.SIGINT)
    subprocess.run(["rm", "-rf", pg_dir], check=False)
    return out


# ---------------------------------------------------------------- report


def fmt(x, nd=1):
    if isinstance(x, float):
        if x != x:
            return "n/a"
        return f"{x:,.{nd}f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


def report(a, R):
    L = []
    uname = platform.uname()
    L.append(f"# kspan benchmark results\n")
    L.append(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(R.get('finished', time.time())))}")
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    L.append(f"- machine: {os.cpu_count()} CPUs ({model}), kernel {uname.release}, "
             f"load average before start {' '.join(R['loadavg'])}")
    L.append(f"- kspan: {a.kspan} (version {R.get('version', '?')}), defaults unless stated; "
             f"{a.reps} repetitions, {a.seconds} s per measurement\n")

    L.append("## Goals\n")
    L.append("Issue 17's goals (cost per span) first, then the earlier ones they do not replace. Per span: both ends "
             "traced, so a plaintext request makes 2 spans.\n")
    L.append("| goal | target | measured | |")
    L.append("|---|---|---|---|")
    G = []
    ng, py = R.get("nginx"), R.get("python-250us")
    if "daemon" in R:
        d = R["daemon"]
        G.append(("daemon CPU per span, parse + stitch + export (nginx at ~10k spans/s, file output on)", "≤ 2 µs",
                  d["cpu_us_per_built_span"], "µs", d["cpu_us_per_built_span"] <= 2))
    if "pipeline" in R and "error" not in R["pipeline"]:
        p = R["pipeline"]
        G.append(("user-space pipeline alone, CPU per span (synthetic events, no kernel)", "≤ 1.5 µs",
                  p["us_per_req"] / 2, "µs", p["us_per_req"] / 2 <= 1.5))
    if "kernel" in R:
        k = R["kernel"]
        per_span = k["ns_per_req"] / k["spans_per_req"] / 1000 if k.get("spans_per_req") else float("nan")
        G.append(("BPF run time per span (kernel.bpf_stats_enabled)", "≤ 1.2 µs", per_span, "µs", per_span <= 1.2))
        G.append(("BPF run time per plaintext request, both ends traced", "≤ 2.4 µs", k["ns_per_req"] / 1000, "µs",
                  k["ns_per_req"] / 1000 <= 2.4))
    if ng:
        G.append(("nginx throughput at saturation, traced / untraced (`wrk -t1 -c32`)", "≥ 0.85×", ng["rps_ratio"], "×",
                  ng["rps_ratio"] >= 0.85))
        if "rps2_ratio" in ng:
            G.append(("nginx throughput at saturation, traced / untraced (`wrk -t2 -c32`)", "≥ 0.85×", ng["rps2_ratio"],
                      "×", ng["rps2_ratio"] >= 0.85))
        G.append(("added p50 latency per plaintext request at a fixed rate (nginx, both ends traced)", "≤ 3 µs",
                  ng["p50_diff"], "µs", ng["p50_diff"] <= 3))
    if "tls" in R:
        t = R["tls"]
        if "traps_per_req" in t:
            G.append(("HTTPS: uprobe traps per request, both ends traced", "≤ 4", t["traps_per_req"], "",
                      t["traps_per_req"] <= 4))
        G.append(("nginx HTTPS throughput at saturation, traced / untraced", "≥ 0.6×", t["rps_ratio"], "×",
                  t["rps_ratio"] >= 0.6))
    st = [x for s in ("nginx", "python", "python-250us") if s in R for x in R[s]["startup_ms"] if x is not None]
    if st:
        G.append((f"every program attached after start (startup_ms, max of {len(st)} runs)", "≤ 300 ms", max(st), "ms",
                  max(st) <= 300))
    if "saturation" in R:
        rows = R["saturation"]["default"]
        # The highest rate's row: CPU is read in ns (schedstat), so a run of a few hundredths
        # of a second still gives a figure (the daemon spends ~0.05 s on the whole flood).
        busy = [r for r in rows if r["cpu"] > 0.005]
        best = max(busy, key=lambda r: r["rate"])["events_per_cpu_s"] if busy else float("nan")
        G.append(("drain: events per daemon CPU-second (highest flood rate; a lower bound)", "≥ 5 M/s", best / 1e6,
                  "M/s", best >= 5e6))
        low = [r for r in rows if 0 < r["rate"] <= 100000]
        dl = sum(r["drops"] for r in low)
        G.append(("drops at ≤ 100k events/s (default ring buffer)", "0", dl, "", dl == 0))
    if "daemon" in R:
        d = R["daemon"]
        G.append(("RSS peak (ring buffer counted once)", "≤ 64 MiB", d["rss_peak_mib"], "MiB", d["rss_peak_mib"] <= 64))
    if "idle" in R:
        G.append((f"RSS peak with {R['idle']['open']:,} idle connections", "≤ 64 MiB", R["idle"]["rss_peak_mib"], "MiB",
                  R["idle"]["rss_peak_mib"] <= 64))
    if "kernel" in R:
        mib = R["kernel"]["maps_bytes"] / 2**20
        G.append(("kernel maps (bpftool memlock, all kspan maps)", "≤ 32 MiB", mib, "MiB", mib <= 32))
    # Earlier goals that issue 17 does not replace.
    if py:
        ovh = (1 - py["rps_ratio"]) * 100
        G.append((f"python app, 250 µs of work a request: throughput overhead (full speed {1e6 / py['rps_off']:.0f} µs a request)",
                  "≤ 1 % when request ≥ 200 µs", ovh, "%", ovh <= 1))
        pl = py["p50_diff"] / py["p50_off"] * 100 if py["p50_off"] else float("nan")
        G.append(("python app, 250 µs of work a request: added p50 latency at 500 req/s", "≤ 1 %", pl, "%", pl <= 1))
    if "tls" in R:
        t = R["tls"]
        G.append(("added latency per HTTPS request (nginx, wrk over one connection, both ends traced)", "≤ 30 µs",
                  t["p50_diff"], "µs", t["p50_diff"] <= 30))
    if "tls-server" in R:
        t = R["tls-server"]
        G.append(("added latency per HTTPS request, nginx only traced (`--pid`)", "≤ 30 µs", t["p50_diff"], "µs",
                  t["p50_diff"] <= 30))
    if "daemon" in R:
        d = R["daemon"]
        G.append(("agent wake-ups at ~10k spans/s (voluntary context switches)", "≤ 1,000 /s", d["wakeups_per_s"], "/s",
                  d["wakeups_per_s"] <= 1000))
    for name, target, v, unit, ok in G:
        L.append(f"| {name} | {target} | {fmt(v, 2)} {unit} | {'meets' if ok else 'MISSES'} |")

    for key in ("nginx", "python", "python-250us"):
        if key not in R:
            continue
        x = R[key]
        L.append(f"\n## Request overhead: {key}\n")
        L.append(f"Fixed rate {x['rate']:,} req/s over {x['conns']} keep-alive connections (bench/src/loadgen.c, open loop, "
                 f"latency from the scheduled send time); full speed: `wrk -t1 -c{x['wrk_conns']}`. Medians of {a.reps} "
                 f"alternating runs; diff and ratio are medians of the per-run pairs.\n")
        L.append("| | without kspan | with kspan | with − without / ratio |")
        L.append("|---|---|---|---|")
        L.append(f"| p50 latency (µs) | {fmt(x['p50_off'])} | {fmt(x['p50_on'])} | {fmt(x['p50_diff'])} |")
        L.append(f"| p99 latency (µs) | {fmt(x['p99_off'])} | {fmt(x['p99_on'])} | {fmt(x['p99_diff'])} |")
        L.append(f"| requests/s (full speed) | {fmt(x['rps_off'], 0)} | {fmt(x['rps_on'], 0)} | {fmt(x['rps_ratio'], 3)}× |")
        if "rps2_off" in x:
            L.append(f"| requests/s (full speed, `wrk -t2 -c{x['wrk_conns']}`) | {fmt(x['rps2_off'], 0)} | "
                     f"{fmt(x['rps2_on'], 0)} | {fmt(x['rps2_ratio'], 3)}× |")
        L.append(f"\nWhile traced: daemon CPU {fmt(x['cpu_us_per_req'], 2)} µs per request, {fmt(x['spans_per_req'], 2)} "
                 f"spans per request, {fmt(x['wakeups_per_s'], 0)} agent wake-ups/s, drops {x['drops']}, "
                 f"client errors {x['errors']}, startup_ms {', '.join(fmt(s, 0) for s in x['startup_ms'])}.")

    if "exclude" in R:
        x = R["exclude"]
        L.append("\n## Excluded processes (`--exclude`)\n")
        L.append(f"nginx and the load generator at {a.kernel_rate:,} req/s for {a.seconds} s, both excluded by executable "
                 f"(`--exclude exe=nginx --exclude exe=loadgen --exclude exe=wrk`), against both traced. Kernel time "
                 f"from `kernel.bpf_stats_enabled`, summed over kspan's programs; events as the daemon counted them. "
                 f"Then `wrk -t1 -c32` requests/s, medians of {a.reps} runs rotating untraced, excluded, traced.\n")
        L.append("| | traced | excluded |")
        L.append("|---|---|---|")
        for label, key, nd in (("kernel ns per request", "ns_per_req", 0), ("program runs per request", "runs_per_req", 2),
                               ("events per request reaching user space", "events_per_req", 3),
                               ("daemon CPU per request (µs)", "cpu_us_per_req", 2), ("spans", "spans", 0),
                               ("events dropped in user space (raced a decision)", "dropped_in_user_space", 0)):
            L.append(f"| {label} | {fmt(x['traced'][key], nd)} | {fmt(x['excluded'][key], nd)} |")
        L.append(f"| wrk requests/s (untraced {fmt(x['rps']['off'], 0)}) | {fmt(x['rps']['traced'], 0)} "
                 f"({fmt(x['rps_ratio_traced'], 3)}×) | {fmt(x['rps']['excluded'], 0)} ({fmt(x['rps_ratio_excluded'], 3)}×) |")

    if "tls" in R:
        L.append("\n## Request overhead: nginx over TLS\n")
        L.append(f"nginx `listen ssl` (libssl.so.3), `wrk --latency` over HTTPS (libssl.so.3 too): one keep-alive "
                 f"connection for the round trip, 32 for full speed. Both ends traced (every TLS call of wrk and "
                 f"nginx pays its uprobes), and server only (`kspan --pid` of nginx's processes: an agent that owns "
                 f"one service). Medians of {a.reps} alternating runs of {a.seconds} s.\n")
        L.append("| | traced | without kspan | with kspan | with − without / ratio |")
        L.append("|---|---|---|---|---|")
        for key, who in (("tls", "both ends"), ("tls-server", "nginx only")):
            if key not in R:
                continue
            t = R[key]
            L.append(f"| p50 round trip, 1 connection (µs) | {who} | {fmt(t['p50_off'])} | {fmt(t['p50_on'])} | "
                     f"{fmt(t['p50_diff'])} |")
            L.append(f"| requests/s, 1 connection | {who} | {fmt(t['rps1_off'], 0)} | {fmt(t['rps1_on'], 0)} | |")
            L.append(f"| requests/s, 32 connections | {who} | {fmt(t['rps_off'], 0)} | {fmt(t['rps_on'], 0)} | "
                     f"{fmt(t['rps_ratio'], 3)}× |")
        for key, who in (("tls", "both ends"), ("tls-server", "nginx only")):
            if key in R:
                t = R[key]
                L.append(f"\nWhile traced ({who}): {fmt(t['spans_per_req'], 2)} spans per request, daemon CPU "
                         f"{fmt(t.get('cpu_us_per_req', float('nan')), 1)} µs per request, parse failures "
                         f"{t['parse_failures']}.")
                if "traps" in t:
                    per = ", ".join(f"`{r['name']}` {fmt(r['runs_per_req'], 2)} ({fmt(r['ns_per_run'], 0)} ns a run)"
                                    for r in t["traps"])
                    L.append(f"Uprobe traps per request ({who}; one more traced window of `wrk -c32` with "
                             f"`kernel.bpf_stats_enabled`): {fmt(t['traps_per_req'], 2)} in all, "
                             f"{fmt(t['uprobe_ns_per_req'], 0)} ns of program time: {per}.")

    if "tls_go" in R:
        t = R["tls_go"]
        L.append("\n## Request overhead: Go crypto/tls\n")
        L.append(f"A Go HTTPS server and client (`tests/apps/go/tlsapp.go`, Debian's go, HTTP/1.1), both traced through "
                 f"the Go TLS uprobes: one connection, one request after another. Medians of {a.reps} alternating "
                 f"runs of {a.seconds} s.\n")
        L.append("| | without kspan | with kspan | with − without |")
        L.append("|---|---|---|---|")
        L.append(f"| p50 round trip (µs) | {fmt(t['p50_off'])} | {fmt(t['p50_on'])} | {fmt(t['p50_diff'])} |")
        L.append(f"| requests/s | {fmt(t['rps_off'], 0)} | {fmt(t['rps_on'], 0)} | |")
        L.append("\n| program | runs (traps) per request | BPF ns per run | BPF ns per request |")
        L.append("|---|---|---|---|")
        for name, p in sorted(t["progs"].items()):
            L.append(f"| {name} | {fmt(p['runs_per_req'], 2)} | {fmt(p['ns_per_run'], 0)} | {fmt(p['ns_per_req'], 0)} |")
        L.append(f"\nParse failures while traced: {t['parse_failures']}.")

    if "h2load" in R:
        L.append("\n## Request overhead: nginx over HTTP/2 (h2load)\n")
        L.append(f"nginx `listen … http2` (h2c with prior knowledge, `return 200`, 1 worker) driven by `h2load -c 4 -m N "
                 f"-D {a.seconds}` (nghttp2-client): 4 connections, N concurrent streams on each. Both ends traced: "
                 f"each stream is a CLIENT and a SERVER span. Medians of {a.reps} alternating runs.\n")
        L.append("| streams per connection | without kspan (req/s) | with kspan (req/s) | with / without | "
                 "mean request time without / with (µs) | daemon CPU per stream (µs) | spans per stream |")
        L.append("|---|---|---|---|---|---|---|")
        for n, h in R["h2load"].items():
            L.append(f"| {n} | {fmt(h['rps_off'], 0)} | {fmt(h['rps_on'], 0)} | {fmt(h['rps_ratio'], 3)}× | "
                     f"{fmt(h['mean_off'])} / {fmt(h['mean_on'])} | {fmt(h['cpu_us_per_stream'], 2)} | "
                     f"{fmt(h['spans_per_stream'], 2)} |")
        L.append("\nWhile traced: HTTP/2 parse failures " +
                 ", ".join(f"{h['parse_failures']} (-m {n})" for n, h in R["h2load"].items()) +
                 "; client answers not captured (h2load reads many answers at once, past --capture-bytes) " +
                 ", ".join(f"{h['not_captured']} (-m {n})" for n, h in R["h2load"].items()) +
                 "; h2load failures " + ", ".join(f"{h['failed']} (-m {n})" for n, h in R["h2load"].items()) +
                 "; kernel events dropped, ring buffer full " +
                 ", ".join(f"{h.get('ring_drops')} (-m {n})" for n, h in R["h2load"].items()) +
                 "; HTTP/2 records (both ends) per stream " +
                 ", ".join(f"{fmt(h['records'] / h['streams'] if h.get('streams') else float('nan'), 2)} (-m {n})"
                           for n, h in R["h2load"].items()) + ".")

    if "kernel" in R:
        k = R["kernel"]
        L.append(f"\n## Kernel cost (kernel.bpf_stats_enabled=1, restored to {k['stats_restored_to']})\n")
        L.append(f"nginx at {a.kernel_rate:,} req/s for {a.seconds} s via loadgen ({k['requests']:,} requests, both ends "
                 f"traced). Per request: **{fmt(k['ns_per_req'] / 1000, 2)} µs** of BPF run time; "
                 f"{fmt(k.get('spans_per_req', float('nan')), 2)} spans per request, so "
                 f"{fmt(k['ns_per_req'] / 1000 / k['spans_per_req'] if k.get('spans_per_req') else float('nan'), 2)} µs "
                 f"per span. Runs of other "
                 f"processes' syscalls on the host are included (the entry programs filter after they run).\n")
        L.append("| program | type | runs | ns/run | runs/request | ns/request |")
        L.append("|---|---|---|---|---|---|")
        for r in k["progs"]:
            if r["runs"]:
                L.append(f"| {r['name']} | {r['type']} | {r['runs']:,} | {fmt(r['ns_per_run'], 0)} | "
                         f"{fmt(r['runs_per_req'], 2)} | {fmt(r['ns_per_req'], 0)} |")
        L.append(f"\nKernel maps (bpftool memlock): {fmt(k['maps_bytes'] / 2**20, 2)} MiB in total.\n")
        L.append("| map | type | max_entries | memlock (KiB) |")
        L.append("|---|---|---|---|")
        for m in k["maps"]:
            L.append(f"| {m['name']} | {m['type']} | {m['max_entries']:,} | {fmt(m['bytes_memlock'] / 1024, 0)} |")

    if "daemon" in R:
        d = R["daemon"]
        L.append(f"\n## Daemon cost\n")
        L.append(f"nginx at {a.daemon_rate:,} req/s for {a.daemon_seconds} s (2 spans a request: loadgen's client span and "
                 f"nginx's server span).\n")
        L.append("RSS counts the ring buffer once: the kernel maps its data pages twice in a row into the agent, so VmRSS "
                 f"and VmHWM show it twice ({fmt(d.get('vm_hwm_mib', float('nan')))} MiB VmHWM as the kernel reports it).\n")
        L.append("| spans/s | CPU s per 10k spans | CPU µs per request | RSS steady (MiB) | RSS peak (MiB) | "
                 "wake-ups/s (voluntary) | involuntary/s | drops |")
        L.append("|---|---|---|---|---|---|---|---|")
        L.append(f"| {fmt(d['spans_per_s'], 0)} | {fmt(d['cpu_per_10k_spans'], 3)} | {fmt(d['cpu_us_per_req'], 2)} | "
                 f"{fmt(d['rss_steady_mib'])} | {fmt(d['rss_peak_mib'])} | {fmt(d['wakeups_per_s'], 0)} | "
                 f"{fmt(d['nonvol_per_s'], 0)} | {d['drops']} |")
    if "metrics" in R:
        m = R["metrics"]
        L.append("\n## Span metrics and sampling\n")
        L.append(f"The daemon-cost load (nginx at {a.daemon_rate:,} req/s for {a.daemon_seconds} s, 2 spans built a "
                 "request) with span metrics and the service graph off, on, and on with a 10 % head sampler "
                 "(`--sampler traceidratio --sampler-arg 0.1`); runs alternate, medians shown. CPU is the "
                 "daemon's per span built (before sampling).\n")
        L.append("| configuration | CPU µs per span built | CPU µs per request | spans exported per request | "
                 "RSS peak (MiB) | drops | runs (µs per span) |")
        L.append("|---|---|---|---|---|---|---|")
        for label, _ in METRICS_CONFIGS:
            x = m[label]
            L.append(f"| {label} | {fmt(x['cpu_us_per_built_span'], 3)} | {fmt(x['cpu_us_per_req'], 2)} | "
                     f"{fmt(x['spans_exported_per_req'], 2)} | {fmt(x['rss_peak_mib'])} | {x['drops']} | "
                     f"{', '.join(str(v) for v in x['runs'])} |")
        if "processors_ns_per_span" in m:
            L.append(f"\nWithout a kernel (`kspan-pipeline-bench`): the span-metrics and service-graph processors "
                     f"alone cost {fmt(m['processors_ns_per_span'], 0)} ns CPU per span (`--metrics-only`: a CLIENT "
                     "and a SERVER span per request, paired); the whole user-space pipeline, CPU µs per span:\n")
            L.append("| configuration | CPU µs per span (pipeline alone) |")
            L.append("|---|---|")
            for label, _ in METRICS_CONFIGS:
                L.append(f"| {label} | {fmt(m['pipeline_us_per_span'][label], 2)} |")
    if "carrier" in R:
        c = R["carrier"]
        L.append("\n## Trace-context carriers\n")
        if "error" in c:
            L.append(c["error"])
        if "rows" in c:
            L.append(f"`kspan-carrier-probe`: {c['round_trips']:,} closed-loop round trips (80-byte request, 27-byte "
                     f"answer) over one connection across a veth pair between two namespaces, median of {c['reps']} "
                     "alternating repetitions; FIONREAD on the server once the request has arrived. The "
                     "probe's counters and its programs' own kernel time (BPF statistics): " + "; ".join(c["notes"]) + "\n")
            L.append("| mode | ns per round trip | added ns | FIONREAD (expected) |")
            L.append("|---|---|---|---|")
            for mode, r in c["rows"].items():
                L.append(f"| {mode} | {r['ns_per_rtt']:,.0f} | {r['added_ns']:,.0f} | {r['fionread']} "
                         f"({r['fionread_expected']}) |")
        g = c.get("agent")
        if g:
            L.append(f"\nThe agent, `--carrier tcp-option` and `--carrier http-header` against off: loadgen → nginx on 127.0.0.1 at "
                     f"{a.kernel_rate:,} req/s for {a.seconds} s, both ends traced; kernel ns per request of "
                     "every kspan program (BPF statistics), of which the carrier's; daemon CPU per request; "
                     f"medians of {g['reps']} rotating runs, and the median of the "
                     "per-run carrier − off differences; then wrk (32 connections) requests/s, median of "
                     f"{a.reps} rotating runs. Load average (1, 5, 15 min) "
                     f"{', '.join(f'{x:.1f}' for x in g['load_before'])} before, "
                     f"{', '.join(f'{x:.1f}' for x in g['load_after'])} after.\n")
            L.append("| carrier | kernel ns/request | of which carrier | carrier runs/request | daemon CPU µs/request "
                     "| loadgen p50 µs | contexts written | client contexts used | wrk req/s |")
            L.append("|---|---|---|---|---|---|---|---|---|")
            for mode in g["modes"]:
                r = g[mode]
                L.append(f"| {mode} | {r['ns_per_req']:,.0f} | {r['carrier_ns_per_req']:,.0f} | "
                         f"{r['carrier_runs_per_req']:.1f} | {fmt(r['cpu_us_per_req'], 1)} | "
                         f"{fmt(r['p50_us'], 1)} | {r['written']:,.0f} | {r['used']:,.0f} | {g['rps'][mode]:,.0f} |")
            for mode, d in g["added"].items():
                L.append(f"| {mode} − off (median of the runs' differences) | {d['ns_per_req']:,.0f} | "
                         f"{d['carrier_ns_per_req']:,.0f} | | {fmt(d['cpu_us_per_req'], 1)} | {fmt(d['p50_us'], 1)} "
                         "| | | |")
            L.append(f"\nUntraced: {g['rps']['untraced']:,.0f} req/s; carrier/off: " + ", ".join(
                f"{m} {fmt(r, 3)}" for m, r in g["rps_ratio_vs_off"].items()) + ".")
    if "store" in R:
        x = R["store"]
        L.append("\n## The trace store (docs/ui.md)\n")
        L.append(f"nginx, `wrk -t1 -c32` for {a.seconds} s, both ends traced (2 spans a request), medians of {a.reps} "
                 "runs rotating untraced and the three store settings; each traced run with a fresh store file. "
                 "Daemon CPU is the whole process's (the store writes on its own thread). Then "
                 "`kspan-store-bench`: the store's own CPU per span written and its bytes per span.\n")
        L.append(f"| setting | wrk requests/s (untraced {fmt(x['rps']['untraced'], 0)}) | ratio | daemon CPU µs per "
                 "request | spans stored per request | spans refused by the rate bound per request |")
        L.append("|---|---|---|---|---|---|")
        for label, r in x["rows"].items():
            L.append(f"| {label} | {fmt(r['rps'], 0)} | {fmt(r['ratio'], 3)}× | {fmt(r['cpu_us_per_req'], 2)} | "
                     f"{fmt(r['written_per_req'], 3)} | {fmt(r['refused_per_req'], 3)} |")
        if "store_us_per_span" in x:
            L.append(f"\n`kspan-store-bench`: {fmt(x['store_us_per_span'], 2)} µs of the store thread's CPU and "
                     f"{fmt(x['store_bytes_per_span'], 0)} bytes on disk per span written.")
    if "pipeline" in R:
        p = R["pipeline"]
        L.append("\n## Daemon cost without a kernel\n")
        if "error" in p:
            L.append(p["error"])
        else:
            L.append("`kspan-pipeline-bench` (bench/src/pipeline_bench.cc): synthetic keep-alive HTTP/1.1 between two "
                     "traced processes (32 connections, 20,000 req/s of simulated time, both ends: 2 spans a "
                     "request) through tracking, parsing, span building, stitching and the OTLP/JSON file "
                     "exporter to /dev/null; CPU of the whole process per request.\n")
            L.append("```")
            L.extend(p["runs"])
            L.append(p["median_line"])
            L.append("```")
    if "idle" in R:
        i = R["idle"]
        L.append(f"\n{i['open']:,} idle loopback connections (bench/src/idleconns.c: {2 * i['open']:,} traced sockets, "
                 f"held {a.idle_hold} s): opened in {fmt(i['open_seconds'], 2)} s costing the daemon "
                 f"{fmt(i['cpu_open'], 3)} CPU s; while idle {fmt(i['cpu_hold_per_s'] * 100, 2)} % CPU, "
                 f"{fmt(i['wakeups_per_s'], 0)} wake-ups/s; RSS steady {fmt(i['rss_steady_mib'])} MiB, peak "
                 f"{fmt(i['rss_peak_mib'])} MiB; conn_open events {i['conn_opens']:,}, conn_map_full {i['conn_map_full']}, "
                 f"evicted {i['evicted']}, drops {i['drops']}.")

    if "databases" in R:
        L.append("\n## Databases\n")
        L.append(f"PostgreSQL 15: `pgbench -n -M prepared -S -c 4 -j 2 -T {a.seconds}` (one prepared SELECT a "
                 f"transaction, extended protocol); Redis 7: `redis-benchmark -c 8 -P 16 -t set,get` (pipelines of 16). "
                 f"Both ends on this host, client and server traced (the server's side makes no span). Medians of "
                 f"{a.reps} alternating runs; daemon CPU per span over each traced run.\n")
        L.append("| load | ops/s without kspan | ops/s with kspan | ratio | spans per op | daemon CPU µs per span | "
                 "drops | parse failures |")
        L.append("|---|---|---|---|---|---|---|---|")
        for name, x in R["databases"].items():
            L.append(f"| {name} | {fmt(x['ops_off'], 0)} | {fmt(x['ops_on'], 0)} | {fmt(x['ratio'], 3)}× | "
                     f"{fmt(x['spans_per_op'], 2)} | {fmt(x['cpu_us_per_span'], 2)} | {x['drops']} | "
                     f"{x['parse_failures']} |")
    if "profile" in R:
        pf = R["profile"]
        L.append("\n## Where the daemon's time goes\n")
        if "error" in pf:
            L.append(pf["error"])
        else:
            L.append(f"`perf record -F 499 -p KSPAN` while `wrk -t1 -c32` drives nginx at full speed "
                     f"({fmt(pf['rps'], 0)} req/s); self time by symbol, top 15:\n")
            L.append("| % of kspan samples | object | symbol |")
            L.append("|---|---|---|")
            for r in pf["top"]:
                L.append(f"| {r['pct']:.2f} | {r['dso']} | `{r['sym']}` |")
    if "saturation" in R:
        L.append(f"\n## Saturation\n")
        L.append(f"bench/src/flood.c: one loopback TCP connection, {a.flood_msg}-byte writes paced at half the target "
                 f"rate and matching reads, {a.flood_seconds} s a step, kspan `--pid` restricted to the generator. "
                 f"generated = connect + accept + writes + reads + 2 closes (the generator counts them); kernel = "
                 f"kspan_kernel_counts_total{{events}}; drops = ring_buffer_full_*; received = "
                 f"kspan_ring_buffer_records_total. check: generated − received = drops and kernel + drops = generated.\n")
        for label, rows in R["saturation"].items():
            cfg = "defaults (8 MiB ring, 10 ms drain)" if label == "default" else \
                f"--ring-buffer-bytes {a.small_ring} --drain-interval-ms {a.small_drain}"
            L.append(f"\n{cfg}:\n")
            L.append("| target ev/s | achieved ev/s | generated | kernel | drops | received | generated − received | "
                     "check | daemon CPU s | events / CPU s | wake-ups/s |")
            L.append("|---|---|---|---|---|---|---|---|---|---|---|")
            for r in rows:
                L.append(f"| {fmt(r['rate_target']) if r['rate_target'] else 'max'} | {fmt(r['rate'], 0)} | "
                         f"{r['generated']:,} | {r['kernel_events']:,} | {r['drops']:,} | {r['received']:,} | "
                         f"{r['missing']:,} | {r['check']} | {fmt(r['cpu'], 2)} | {fmt(r['events_per_cpu_s'], 0)} | "
                         f"{fmt(r['wakeups_per_s'], 0)} |")
            first = next((r for r in rows if r["drops"] > 0), None)
            L.append(f"\nDrops begin: {'at ~' + fmt(first['rate'], 0) + ' events/s' if first else 'not reached'}.")
    L.append(f"\nSuite wall time: {fmt(R['wall_s'], 0)} s.")
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kspan", required=True)
    ap.add_argument("--helpers", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--only", default="requests,tls,tls_go,h2load,kernel,exclude,daemon,metrics,pipeline,store,databases,idle,profile,saturation,carrier")
    ap.add_argument("--quick", action="store_true", help="1 repetition, 2 s runs: to check the suite works")
    ap.add_argument("--report-from", metavar="JSON",
                    help="measure nothing: write the report (--out) again from a run's saved figures "
                         "(results/latest.json), with this version's report code")
    a = ap.parse_args()
    a.kernel_rate, a.daemon_rate, a.daemon_seconds = 5000, 5000, 10
    a.idle_conns, a.idle_hold = 10000, 10
    a.flood_rates, a.flood_seconds, a.flood_msg = [25000, 50000, 100000, 200000, 400000, 0], 2, 64
    a.small_ring, a.small_drain = 16384, 100
    if a.quick:
        a.reps, a.seconds, a.daemon_seconds, a.idle_hold, a.flood_rates = 1, 2, 3, 2, [50000, 0]
    if a.report_from:
        with open(a.report_from) as f:
            R = json.load(f)
        R.setdefault("finished", os.path.getmtime(a.report_from))  # runs before it was saved
        with open(a.out, "w") as f:
            f.write(report(a, R))
        return
    only = set(a.only.split(","))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    R = {"loadavg": open("/proc/loadavg").read().split()[:3]}
    t0 = time.monotonic()
    try:
        R["version"] = subprocess.run([a.kspan, "--version"], capture_output=True, text=True).stdout.strip()
        if "requests" in only:
            print("request overhead: nginx", flush=True)
            R["nginx"] = bench_requests(a, "nginx", start_nginx, 2000, 8, 32, wrk2=True)
            print("request overhead: python", flush=True)
            R["python"] = bench_requests(a, "python", start_python, 500, 8, 16)
            print("request overhead: python, 250 us of work a request", flush=True)
            R["python-250us"] = bench_requests(a, "python-250us", lambda p: start_python(p, 250), 500, 8, 16)
        sections = [("tls", "request overhead: nginx over TLS", bench_tls),
                    ("tls_go", "request overhead: Go crypto/tls server and client", bench_tls_go),
                    ("h2load", "request overhead: nginx over HTTP/2 (h2load)", bench_h2load),
                    ("kernel", "kernel cost", bench_kernel),
                    ("exclude", "excluded processes", bench_exclude), ("daemon", "daemon cost", bench_daemon),
                    ("metrics", "span metrics and sampling", bench_metrics),
                    ("pipeline", "daemon cost without a kernel", bench_pipeline),
                    ("store", "the trace store: nginx with the store off and on", bench_store),
                    ("databases", "databases: pgbench and redis-benchmark", bench_databases),
                    ("carrier", "trace-context carriers (TCP option, sk_msg)", bench_carrier),
                    ("idle", "idle connections", bench_idle), ("profile", "profile", bench_profile),
                    ("saturation", "saturation", bench_saturation)]
        for key, label, run in sections:
            if key in only:
                print(label, flush=True)
                R[key] = run(a)
                if key == "tls":
                    print("request overhead: nginx over TLS, nginx only traced", flush=True)
                    R["tls-server"] = bench_tls(a, server_only=True)
    finally:
        cleanup()
        R["wall_s"] = time.monotonic() - t0
        R["finished"] = time.time()
        md = report(a, R)
        print()
        print(md)
        os.makedirs(os.path.dirname(a.out), exist_ok=True)
        with open(a.out, "w") as f:
            f.write(md)
        with open(os.path.splitext(a.out)[0] + ".json", "w") as f:
            json.dump(R, f, indent=1, default=str)


if __name__ == "__main__":
    main()
