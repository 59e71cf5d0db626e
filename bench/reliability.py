#!/usr/bin/python3
"""kspan reliability runs: is anything lost without a count, does the host stay clean?

Run through bench/run.sh (it builds kspan and the helpers, then calls this as root):

    bench/run.sh reliability [--quick] [--only backend,storm,...] [--soak-minutes N] [--lock FILE]

Scenarios (docs/reliability.md says what each shows):

    backend    the OTLP backend down 60 s under steady traffic
    storm      100,000 short connections, one request each
    slowloris  5,000 connections holding a half-written 16 KiB request head for 30 s
    garbage    random and near-HTTP bytes on 1,000 connections, then normal requests
    kill       kill -9 of the agent at random moments under wrk (>= 8 kills)
    soak       2,000 req/s for 30 minutes (--soak-minutes), RSS every 10 s

Each prints its figures and its "nothing lost silently" equation with whether it holds; it
never asserts. Results go to bench/results/reliability.{md,json} (--out). Reuses bench.py's
process, nginx and /proc helpers; every process started is killed at the end.
"""
import argparse
import fcntl
import json
import os
import random
import re
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "src"))
import bench as B  # noqa: E402  (bench.py's helpers: spawn, stop, Kspan, start_nginx, proc_sample, ...)
import otlp_sink  # noqa: E402  (its OTLP/JSON reader, for the file output)

SCENARIOS = ("backend", "storm", "slowloris", "garbage", "kill", "soak")


# ---------------------------------------------------------------- the agent's counters


def metrics_port(k):
    """The port kspan --listen 127.0.0.1:0 chose (its "listening" log line)."""
    for line in open(k.log):
        if '"msg":"listening"' in line:
            return json.loads(line)["port"]
    return None


def scrape(port):
    """/metrics as {series: value}; {} when the agent does not answer."""
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, v = line.rpartition(" ")
            try:
                out[name] = float(v)
            except ValueError:
                pass
    return out


def series(c, name):
    """{labels text: value} of every series of one metric in a counters dict."""
    out = {}
    for k, v in c.items():
        if k == name or k.startswith(name + "{"):
            out[k[len(name):] or "{}"] = v
    return out


def total(c, name):
    return sum(series(c, name).values())


def label_sums(c, name, label):
    """{label value: sum} of one metric (e.g. drops by reason)."""
    out = {}
    for labels, v in series(c, name).items():
        m = re.search(label + r'="([^"]*)"', labels)
        key = m.group(1) if m else "-"
        out[key] = out.get(key, 0) + v
    return out


def losses(c):
    """Every counter that says something was lost, given up or thrown away, non-zero only:
    the figures a reader checks a shortfall against."""
    keep = ("dropped", "drops", "evicted", "unanswered", "failures", "failed", "gaps", "unrecognised",
            "missing_open", "forgotten", "flushed", "duplicat", "buffer")
    out = {}
    for k, v in c.items():
        if v and (any(w in k for w in keep) or k.startswith("kspan_kernel_counts_total") and "ring_buffer_full" in k):
            if "kspan_http_" in k or "ring_buffer_records" in k or 'reason="complete"' in k:
                continue  # kspan's own endpoint; records read; traces flushed whole: no loss
            out[k] = v
    return out


def kspan_otlp(a, name, sink_port, protocol="http/protobuf", env=None, extra=()):
    """kspan exporting OTLP/HTTP to the sink on sink_port, with /metrics on a free port."""
    k = B.Kspan(a.kspan, name=name, env=env,
                outputs=["--output", "otlp", "--otlp-endpoint", f"http://127.0.0.1:{sink_port}",
                         "--otlp-protocol", protocol],
                extra=["--listen", "127.0.0.1:0", *extra, *a.agent_args])
    k.metrics_port = metrics_port(k)
    return k


# ---------------------------------------------------------------- the fake backend


class Sink:
    """bench/src/otlp_sink.py on a fixed port; stop() and start() again keep one file."""

    def __init__(self, count_only=False):
        self.port = B.free_port()
        self.file = os.path.join(B.TMP, f"sink-{self.port}.tsv")
        self.count_only = count_only
        self.p = None
        self.start()

    def start(self):
        cmd = ["/usr/bin/python3", os.path.join(HERE, "src", "otlp_sink.py"), str(self.port), self.file]
        self.p = B.spawn(cmd + (["--count-only"] if self.count_only else []), stdout=subprocess.PIPE, text=True)
        self.p.stdout.readline()  # {"port":...} once it listens

    def stop(self):
        B.stop(self.p, signal.SIGKILL)  # down hard, as a crashed backend: no goodbye

    def rows(self):
        """One dict per span received (duplicates included)."""
        rows = []
        if not os.path.exists(self.file):
            return rows
        for line in open(self.file):
            f = line.rstrip("\n").split("\t")
            if f[0] in ("count", "undecodable"):
                rows.append({"count": int(f[1]) if f[0] == "count" else 0, "undecodable": f[0] == "undecodable"})
            elif len(f) == 6:
                rows.append({"trace": f[0], "id": f[1], "kind": f[2], "method": f[3], "path": f[4], "status": f[5]})
        return rows

    def summary(self):
        rows = self.rows()
        if self.count_only:
            return {"received": sum(r.get("count", 0) for r in rows),
                    "undecodable": sum(1 for r in rows if r.get("undecodable"))}
        spans = [r for r in rows if "id" in r]
        unique = len({(r["trace"], r["id"]) for r in spans})
        return {"received": len(spans), "unique": unique, "duplicates": len(spans) - unique,
                "undecodable": sum(1 for r in rows if r.get("undecodable"))}


def file_rows(path):
    """The spans of an OTLP/JSON lines file (--output file:PATH) and of PATH.1 when it rotated,
    as Sink.rows() gives them."""
    rows, rotated = [], os.path.exists(path + ".1")
    for p in ([path + ".1"] if rotated else []) + [path]:
        if not os.path.exists(p):
            continue
        with open(p, "rb") as f:
            for line in f:
                try:
                    spans = otlp_sink.json_spans(line, True)
                except ValueError:
                    rows.append({"undecodable": True})
                    continue
                for sp in spans:
                    rows.append({"trace": sp["trace"], "id": sp["id"],
                                 "kind": otlp_sink.KIND_NAMES.get(sp["kind"], str(sp["kind"])),
                                 "method": otlp_sink.first(sp["attrs"], otlp_sink.METHOD_KEYS),
                                 "path": otlp_sink.path_of(sp["attrs"]),
                                 "status": otlp_sink.first(sp["attrs"], otlp_sink.STATUS_KEYS)})
    return rows, rotated


def wait_exported(k, seconds):
    """Wait (at most `seconds`) until the OTLP exporter's queue has been empty on two scrapes
    in a row, so that stopping the agent (which flushes the rest, for at most 10 s) does not
    cut a backlog short. Other traffic on the host keeps the counters moving, so they are
    not waited for."""
    end = time.time() + seconds
    empty = 0
    while time.time() < end and empty < 2:
        c = scrape(k.metrics_port)
        empty = empty + 1 if c and total(c, "kspan_exporter_queue_spans") == 0 else 0
        time.sleep(1)


def export_equation(st, sink_summary):
    """spans made = spans received by the backend (each once) + spans counted as dropped.

    made: kspan_spans_total (spans out of the processor chain); dropped: the export
    pipeline's drops (kspan_spans_dropped_total), the OTLP exporter's (by reason) and
    anything still queued at the end. Two more checks: the agent's own books (made = sent +
    dropped), and the copies the backend stored against them: sent <= copies <= sent +
    possibly duplicated + possibly delivered (counters an agent with them has; 0 here
    otherwise). A span both dropped and possibly delivered may be received too, so the
    first equation may be off by at most those counters."""
    c = st["c"]
    made = total(c, "kspan_spans_total")
    pipe = label_sums(c, "kspan_spans_dropped_total", "reason")
    exp = label_sums(c, "kspan_exporter_spans_dropped_total", "reason")
    queued = total(c, "kspan_exporter_queue_spans")
    dropped = sum(pipe.values()) + sum(exp.values()) + queued
    dup_counters = {k: v for k, v in c.items() if "duplicat" in k or "possibly_delivered" in k}
    maybe = sum(dup_counters.values())
    got = sink_summary.get("unique", sink_summary["received"])
    sent = total(c, "kspan_exporter_spans_sent_total")
    copies = sink_summary["received"]
    books = made == sent + dropped
    backend = sent <= copies <= sent + maybe
    return {
        "made": int(made), "received": sink_summary["received"], "received_unique": got,
        "duplicates": sink_summary.get("duplicates", 0), "possibly_duplicated_counters": dup_counters,
        "sent": int(total(c, "kspan_exporter_spans_sent_total")),
        "dropped": int(dropped), "dropped_pipeline": pipe, "dropped_exporter": exp, "queued_at_end": queued,
        "handed_to_otlp": int(total(c, "kspan_spans_exported_total")),
        "export_failed": int(total(c, "kspan_spans_export_failed_total")),
        "retries": int(total(c, "kspan_exporter_retries_total")),
        "equation": f"made {int(made):,} = received {got:,} + dropped {int(dropped):,}"
                    + (f" (possibly duplicated or delivered, counted: {int(maybe):,})" if maybe else ""),
        "books": f"made {int(made):,} = sent {int(sent):,} + dropped {int(dropped):,}: {books}",
        "copies": f"sent {int(sent):,} <= copies received {copies:,} <= sent + possible copies {int(maybe):,}: "
                  f"{backend}",
        "holds": abs(made - got - dropped) <= maybe and books and backend,
        "sent_equals_received": sent == copies,
    }


def file_equation(st, summ, rotated):
    """spans made = spans in the output file + spans counted as dropped on the way."""
    c = st["c"]
    made = total(c, "kspan_spans_total")
    pipe = label_sums(c, "kspan_spans_dropped_total", "reason")
    failed = total(c, "kspan_spans_export_failed_total")
    deleted = total(c, "kspan_file_spans_deleted_total")  # rotation, on trees that count it
    dropped = sum(pipe.values()) + failed + deleted
    got = summ["unique"]
    return {"made": int(made), "received": summ["received"], "received_unique": got,
            "duplicates": summ["duplicates"], "dropped": int(dropped), "dropped_pipeline": pipe,
            "export_failed": int(failed), "rotated": rotated, "deleted_by_rotation": int(deleted),
            "handed_to_file": int(total(c, "kspan_spans_exported_total")),
            "equation": f"made {int(made):,} = in the file {got:,} + dropped {int(dropped):,}"
                        + (" (the file rotated: PATH.1 read too)" if rotated else ""),
            "holds": made == got + dropped}


def rss_sampler(pid, every, stop_event, out):
    while not stop_event.is_set():
        s = B.proc_sample(pid)
        if s:
            out.append((time.monotonic(), s["rss_kib"], s["hwm_kib"]))
        stop_event.wait(every)


class Sampler:
    """RSS of a pid every `every` seconds in a thread, until stop()."""

    def __init__(self, pid, every):
        self.samples, self.ev = [], threading.Event()
        self.t = threading.Thread(target=rss_sampler, args=(pid, every, self.ev, self.samples), daemon=True)
        self.t.start()

    def stop(self):
        self.ev.set()
        self.t.join(timeout=5)
        return self.samples


def mib(kib):
    return kib / 1024


def start_loadgen(a, port, path, rate, seconds, conns):
    """bench/src/loadgen in the background; read_loadgen() its result. A path of its own per
    scenario tells its spans from other traffic on the host (the agent traces every process)."""
    return B.spawn([os.path.join(a.helpers, "loadgen"), "127.0.0.1", str(port), path, str(rate), str(seconds),
                    str(conns)], stdout=subprocess.PIPE, text=True)


def read_loadgen(p, timeout):
    try:
        out, _ = p.communicate(timeout=timeout)
        return json.loads(out.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, ValueError, IndexError):
        B.stop(p)
        return {"error": "loadgen gave no result"}


def spans_by_end(rows, path_ok):
    """{"SERVER": n, "CLIENT": n} of received spans whose path passes path_ok (unique ids)."""
    seen, out = set(), {"SERVER": 0, "CLIENT": 0}
    for r in rows:
        if "id" in r and path_ok(r["path"]) and (r["trace"], r["id"]) not in seen:
            seen.add((r["trace"], r["id"]))
            out[r["kind"]] = out.get(r["kind"], 0) + 1
    return out


# ---------------------------------------------------------------- 1. backend down


def run_backend(a):
    """Steady traffic; the OTLP backend killed for `down` seconds, then started again."""
    port = B.free_port()
    srv = B.start_nginx(port)
    sink = Sink()
    # Only nginx traced (--pid of its master and worker): one span a request, and no span of
    # other traffic on the host, so spans made can be read against requests too.
    k = kspan_otlp(a, "backend", sink.port, extra=[x for pid in B.nginx_pids(srv) for x in ("--pid", str(pid))])
    pre, down, post = a.backend_pre, a.backend_down, a.backend_post
    lg = start_loadgen(a, port, "/rel-backend", a.backend_rate, pre + down + post, 4)
    time.sleep(pre)
    t_down = time.monotonic()
    sink.stop()
    mid = scrape(k.metrics_port)
    time.sleep(down)
    sink.start()
    t_up = time.monotonic()
    lgr = read_loadgen(lg, post + 30)
    wait_exported(k, a.drain_wait)
    st = k.stop()
    B.stop(srv)
    sink.stop()
    eq = export_equation(st, sink.summary())
    reqs = lgr.get("completed", 0)
    out = {"rate": a.backend_rate, "down_s": t_up - t_down, "requests": reqs, "loadgen_errors": lgr.get("errors"),
           "spans_per_request": eq["made"] / reqs if reqs else None, "export": eq,
           "queue_when_down": total(mid, "kspan_exporter_queue_spans"), "losses": losses(st["c"]),
           "log_outage": [json.loads(l)["msg"] for l in open(k.log) if "backend" in l and '"msg"' in l][:6]}
    print(f"  backend down {out['down_s']:.0f} s: {eq['equation']} -> {'holds' if eq['holds'] else 'DOES NOT HOLD'}; "
          f"sent {eq['sent']:,} received {eq['received']:,} (duplicates {eq['duplicates']}), dropped "
          f"{eq['dropped_pipeline']} {eq['dropped_exporter']}", flush=True)
    return out


# ---------------------------------------------------------------- 2. storm of short connections


def run_storm(a):
    port = B.free_port()
    srv = B.start_nginx(port)
    st_p = B.spawn([os.path.join(a.helpers, "storm"), str(port), str(a.storm_n), "16", "300"],
                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    json.loads(st_p.stdout.readline())
    # Spans go to the file output (defaults otherwise): a python backend cannot take the
    # ~16k spans/s a storm makes, and the figure wanted is the agent's, not the backend's.
    spans_file = os.path.join(B.TMP, "storm-spans.jsonl")
    k = B.Kspan(a.kspan, name="storm", outputs=["--output", f"file:{spans_file}"],
                extra=["--listen", "127.0.0.1:0", *a.agent_args])
    k.metrics_port = metrics_port(k)
    s0 = k.sample()
    smp = Sampler(k.pid, 0.5)
    t0 = time.monotonic()
    st_p.stdin.write("go\n")
    st_p.stdin.flush()
    res = json.loads(st_p.stdout.readline() or "{}")
    t_storm = time.monotonic() - t0
    time.sleep(2)  # the stitcher's trace window, the export pipeline's batch
    samples = smp.stop()
    s1 = k.sample()
    k.out = spans_file + ".kept"  # Kspan.stop() deletes its own file name only
    st = k.stop()
    B.stop(st_p)
    B.stop(srv)
    rows, rotated = file_rows(spans_file)
    for f in (spans_file, spans_file + ".1"):  # ~200 MB of JSON: read, not kept
        if os.path.exists(f):
            os.unlink(f)
    ids = {(r["trace"], r["id"]) for r in rows if "id" in r}
    summ = {"received": sum(1 for r in rows if "id" in r), "unique": len(ids),
            "duplicates": sum(1 for r in rows if "id" in r) - len(ids),
            "undecodable": sum(1 for r in rows if r.get("undecodable"))}
    ends = spans_by_end(rows, lambda p: p == "/storm")
    eq = file_equation(st, summ, rotated)
    ok = res.get("ok", 0)
    c = st["c"]
    counted = {k2: v for k2, v in losses(c).items()}
    missing = {end: ok - n for end, n in ends.items()}
    out = {"connections": a.storm_n, "client": res, "seconds": t_storm, "spans_server": ends["SERVER"],
           "spans_client": ends["CLIENT"], "missing": missing, "export": eq,
           "rss_before_mib": mib(s0["rss_kib"]), "rss_peak_mib": mib(s1["hwm_kib"]),
           "rss_end_mib": mib(s1["rss_kib"]), "rss_max_sampled_mib": mib(max((x[1] for x in samples), default=0)),
           "connections_tracked": total(c, "kspan_connections_total"),
           "kernel_drops": B.kernel_drops(st), "losses": counted,
           "cpu_s": B.delta(s0, s1)["cpu"]}
    silent = all(v == 0 for v in missing.values()) or bool(counted)
    out["equation"] = (f"requests {ok:,} = server spans {ends['SERVER']:,} = client spans {ends['CLIENT']:,} "
                       f"(missing {missing['SERVER']:,}/{missing['CLIENT']:,}, counted losses {len(counted)} series)")
    out["holds"] = all(v == 0 for v in missing.values()) and eq["holds"]
    out["shortfall_counted"] = silent
    if not out["holds"]:
        out["equation"] += f"; kernel ring buffer drops counted: {out['kernel_drops']:,}"
    print(f"  storm: {ok:,} requests in {t_storm:.1f} s; {out['equation']}; export {eq['equation']}; "
          f"RSS peak {out['rss_peak_mib']:.1f} MiB", flush=True)
    return out


# ---------------------------------------------------------------- 3. slowloris


def raise_nofile():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def half_heads(port, n, head_bytes, per_s, chunk=1024, deadline_s=120):
    """n connections, each sent a request head of head_bytes in chunk-byte header lines with
    no final blank line (so the server and the agent both wait for the rest). The lines go
    round-robin over the connections, per_s writes a second at most: slowly, as a slowloris
    does, and slow enough that the kernel ring buffer keeps up (a burst would be dropped
    there, counted, and never reach the buffers this scenario is about). Returns the sockets."""
    socks = []
    end = time.time() + deadline_s
    first = b"GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    for _ in range(n):
        if time.time() > end:
            break
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            break
    t0, writes = time.monotonic(), 0
    for j in range((head_bytes + chunk - 1) // chunk):
        pre = first if j == 0 else b""
        name = b"X-Pad-%02d: " % j
        piece = pre + name + b"a" * max(1, chunk - len(pre) - len(name) - 2) + b"\r\n"
        for s in socks:
            if time.time() > end:
                return socks
            try:
                s.sendall(piece)
            except OSError:
                pass
            writes += 1
            ahead = writes / per_s - (time.monotonic() - t0)
            if ahead > 0.01:
                time.sleep(ahead)
    return socks


def run_slowloris(a):
    raise_nofile()
    port = B.free_port()
    srv = B.start_nginx(port, worker_connections=4 * a.slow_n + 1024,
                        extra_http="client_header_timeout 300s; large_client_header_buffers 8 8k;")
    sink = Sink()
    k = kspan_otlp(a, "slowloris", sink.port, protocol="http/json")
    c0 = scrape(k.metrics_port)
    s0 = k.sample()
    smp = Sampler(k.pid, 0.5)
    hold = a.slow_hold
    lg = start_loadgen(a, port, "/rel-normal", a.slow_rate, hold + a.slow_margin, 4)
    time.sleep(2)
    t0 = time.monotonic()
    socks = half_heads(port, a.slow_n, a.slow_bytes, a.slow_writes_per_s)
    t_open = time.monotonic() - t0
    held_from = time.monotonic()
    mids = []
    while time.monotonic() - held_from < hold:
        time.sleep(min(5, hold))
        mids.append(scrape(k.metrics_port))
    s_hold = k.sample()
    for s in socks:
        s.close()
    lgr = read_loadgen(lg, 60)
    time.sleep(2)
    s_after = k.sample()
    wait_exported(k, a.drain_wait)
    samples = smp.stop()
    st = k.stop()
    B.stop(srv)
    sink.stop()
    held = [x[1] for x in samples if held_from + 2 <= x[0] <= held_from + hold]
    ends = spans_by_end(sink.rows(), lambda p: p == "/rel-normal")
    reqs = lgr.get("completed", 0)
    c = st["c"]
    mem_counters = {k2: v for k2, v in c.items() if re.search(r"evict|(?<!ring_)buffer|partial", k2) and v}
    out = {"connections": len(socks), "head_bytes": a.slow_bytes, "hold_s": hold, "open_s": t_open,
           "rss_before_mib": mib(s0["rss_kib"]), "rss_held_median_mib": mib(B.med(held)) if held else None,
           "rss_peak_mib": mib(st_peak(samples, s_after)), "rss_after_mib": mib(s_after["rss_kib"]),
           "normal_rate": a.slow_rate, "normal_requests": reqs, "normal_errors": lgr.get("errors"),
           "normal_spans_server": ends["SERVER"], "normal_spans_client": ends["CLIENT"],
           "eviction_and_buffer_counters": mem_counters, "losses": losses(c),
           "nginx_open_during_hold": None, "export": export_equation(st, sink.summary()),
           "metrics_before": {k2: v for k2, v in c0.items() if "evict" in k2}}
    out["equation"] = (f"normal requests {reqs:,} = server spans {ends['SERVER']:,} = client spans "
                       f"{ends['CLIENT']:,}")
    out["holds"] = reqs == ends["SERVER"] == ends["CLIENT"]
    out["kernel_drops"] = B.kernel_drops(st)
    if not out["holds"]:
        out["equation"] += (f" (short by {reqs - ends['SERVER']}/{reqs - ends['CLIENT']}; kernel ring buffer drops "
                            f"counted: {out['kernel_drops']:,}, requests unanswered counted: "
                            f"{int(total(c, 'kspan_requests_unanswered_total')):,})")
    print(f"  slowloris {len(socks):,} x {a.slow_bytes} B held {hold} s: RSS before {out['rss_before_mib']:.1f}, "
          f"held {out['rss_held_median_mib'] or 0:.1f}, peak {out['rss_peak_mib']:.1f} MiB; {out['equation']} -> "
          f"{'holds' if out['holds'] else 'DOES NOT HOLD'}; evictions/buffer counters {mem_counters}", flush=True)
    return out


def st_peak(samples, last):
    return max([x[2] for x in samples] + [last["hwm_kib"]])


# ---------------------------------------------------------------- 4. garbage


def garbage_payloads(rng, n):
    """n payloads: random bytes, and near-HTTP garbage (each kind a rotation)."""
    # A request line inside what should be a body says which payload forged it: /forged-N.
    near = [
        b"GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\nGET /forged-0 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nGET /forged-1 HTTP/1.1\r\n\r\n",
        b"GE",
        b"G" * 9000 + b" / HTTP/1.1\r\n\r\n",
        b"GET " + b"/" * 20000 + b" HTTP/1.1\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET /forged-6 HTTP/1.1\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64),  # a TLS ClientHello's start
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes(40),
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",  # a response sent as a request
        b"GET / HTTP/1.1\r\n" + b"X: " + b"\xff\xfe" * 3000 + b"\r\n\r\n",
        b"\r\n" * 5000,
        b"GET /\x00\x01 HTTP/1.1\r\nHost: \x00\r\n\r\n",
        b"GET / HTTP/1.1\nHost: x\n\n",
    ]
    out = []
    for i in range(n):
        if i % 2 == 0:
            out.append(rng.randbytes(rng.randint(1, 8192)))
        else:
            p = near[(i // 2) % len(near)]
            out.append(p + (rng.randbytes(rng.randint(0, 256)) if i % 4 == 1 else b""))
    return out


def tcp_sink(stop_event, ready):
    """A plain TCP server on loopback that reads and discards; returns through ready[0] its port."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1024)
    ls.setblocking(False)
    ready.append(ls.getsockname()[1])
    conns = []
    while not stop_event.is_set():
        r, _, _ = select.select([ls] + conns[:900], [], [], 0.1)
        for s in r:
            if s is ls:
                try:
                    c, _ = ls.accept()
                    c.setblocking(False)
                    conns.append(c)
                except OSError:
                    pass
            else:
                try:
                    if not s.recv(65536):
                        s.close()
                        conns.remove(s)
                except OSError:
                    s.close()
                    conns.remove(s)
    for c in conns:
        c.close()
    ls.close()


def spray(port, payloads, deadline_s=20):
    """Each payload on its own connection: connect, send, shut the write side, read until the
    peer closes (bounded), close. Returns (connections made, bytes sent)."""
    socks, sent = [], 0
    for p in payloads:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            s.settimeout(2)
            s.sendall(p)
            sent += len(p)
            s.shutdown(socket.SHUT_WR)
            s.setblocking(False)
            socks.append(s)
        except OSError:
            pass
    end = time.time() + deadline_s
    live = list(socks)
    while live and time.time() < end:
        r, _, _ = select.select(live[:900], [], [], 0.2)
        for s in r:
            try:
                if not s.recv(65536):
                    live.remove(s)
            except OSError:
                live.remove(s)
    for s in socks:
        s.close()
    return len(socks), sent


def normal_requests(port, n, conns=2):
    """n requests with distinct paths over `conns` keep-alive connections, GET and POST in
    turn; returns [(method, path, status)] as the client saw them."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(conns)]
    done = []
    for i in range(n):
        s = socks[i % conns]
        path = f"/after/{i}"
        if i % 2:
            body = b"hello"
            req = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
            method = "POST"
        else:
            req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
            method = "GET"
        s.sendall(req)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        m = re.search(rb"Content-Length: (\d+)", head, re.I)
        need = int(m.group(1)) if m else 0
        while len(rest) < need:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
        status = head.split(b" ", 2)[1].decode() if head.startswith(b"HTTP/") else "-"
        done.append((method, path, status))
    for s in socks:
        s.close()
    return done


def run_garbage(a):
    rng = random.Random(16)
    port = B.free_port()
    srv = B.start_nginx(port, worker_connections=4096)
    stop_ev, ready = threading.Event(), []
    t = threading.Thread(target=tcp_sink, args=(stop_ev, ready), daemon=True)
    t.start()
    while not ready:
        time.sleep(0.01)
    sink = Sink()
    k = kspan_otlp(a, "garbage", sink.port, protocol="http/json")
    half = a.garbage_n // 2
    t0 = time.monotonic()
    n1, b1 = spray(port, garbage_payloads(rng, half), a.spray_wait)
    n2, b2 = spray(ready[0], garbage_payloads(rng, a.garbage_n - half), a.spray_wait)
    t_garbage = time.monotonic() - t0
    time.sleep(1)
    alive_after_garbage = k.p.poll() is None
    try:
        health = urllib.request.urlopen(f"http://127.0.0.1:{k.metrics_port}/healthz", timeout=5).status
    except OSError as e:
        health = str(e)
    done = normal_requests(port, a.garbage_after)
    time.sleep(1)
    wait_exported(k, a.drain_wait)
    st = k.stop()
    stop_ev.set()
    t.join(timeout=5)
    B.stop(srv)
    sink.stop()
    rows = [r for r in sink.rows() if "id" in r]
    want = {p: (m, s) for m, p, s in done}
    after = [r for r in rows if r["path"].startswith("/after/")]
    bad = []
    for end in ("SERVER", "CLIENT"):
        mine = [r for r in after if r["kind"] == end]
        paths = [r["path"] for r in mine]
        if len(mine) != len(done) or set(paths) != set(want):
            bad.append(f"{end}: {len(mine)} spans for {len(done)} requests, {len(set(want) - set(paths))} missing")
        for r in mine:
            m, s = want.get(r["path"], ("?", "?"))
            if r["method"] != m or r["status"] != s:
                bad.append(f"{end} {r['path']}: {r['method']} {r['status']}, want {m} {s}")
    other = [r for r in rows if not r["path"].startswith("/after/") and  # not the sink's, nor our scrapes
             r["path"] not in ("/v1/traces", "/metrics", "/healthz")]
    c = st["c"]
    out = {"connections": n1 + n2, "to_nginx": n1, "to_tcp_sink": n2, "bytes": b1 + b2, "seconds": t_garbage,
           "agent_alive": alive_after_garbage and st.get("msg") == "stopped", "healthz": health,
           "parse_failures": label_sums(c, "kspan_parse_failures_total", "protocol"),
           "parse_bytes_dropped": label_sums(c, "kspan_parse_bytes_dropped_total", "protocol"),
           "unrecognised": total(c, "kspan_connections_unrecognised_total"),
           "losses": losses(c), "requests_after": len(done),
           "client_statuses": sorted({s for _, _, s in done}),
           "spans_after_server": sum(1 for r in after if r["kind"] == "SERVER"),
           "spans_after_client": sum(1 for r in after if r["kind"] == "CLIENT"),
           "mismatches": bad[:20], "n_mismatches": len(bad),
           "spans_from_garbage": len(other),
           "spans_from_garbage_sample": sorted({f"{r['kind']} {r['method']} {r['path'][:40]} {r['status']}"
                                                for r in other})[:20],
           "forged": sum(1 for r in other if r["path"].startswith("/forged")),
           "forged_by_payload": {p: sum(1 for r in other if r["path"] == p)
                                 for p in sorted({r["path"] for r in other if r["path"].startswith("/forged")})},
           "export": export_equation(st, sink.summary())}
    out["equation"] = (f"requests after {len(done)} = server spans {out['spans_after_server']} = client spans "
                       f"{out['spans_after_client']}, every method, path and status right ({len(bad)} wrong)")
    out["holds"] = not bad and out["agent_alive"]
    print(f"  garbage on {n1 + n2:,} connections ({b1 + b2:,} B): alive {out['agent_alive']}, parse failures "
          f"{out['parse_failures']}; {out['equation']} -> {'holds' if out['holds'] else 'DOES NOT HOLD'}; "
          f"spans from garbage {len(other)} (forged {out['forged']})", flush=True)
    return out


# ---------------------------------------------------------------- 5. SIGKILL


def bpf_objects():
    """{"prog": {id: name}, "map": {id: name}, "link": {id: prog_id}} loaded right now."""
    progs = {p["id"]: p.get("name", "") for p in B.bpftool_json("prog", "show")}
    maps = {m["id"]: m.get("name", "") for m in B.bpftool_json("map", "show")}
    links = {l["id"]: l.get("prog_id") for l in B.bpftool_json("link", "show")}
    return {"prog": progs, "map": maps, "link": links}


def held_ids():
    """Ids of every BPF program, map and link some live process holds an fd of (from
    /proc/*/fdinfo), plus the maps those programs use. Another kspan on the host (someone
    else's test) holds its own objects; an object nobody holds and that is still loaded is
    a leak. bpftool 7.1 here reports no owning pids, hence the walk."""
    held = {"prog": set(), "map": set(), "link": set()}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if not os.readlink(f"/proc/{pid}/fd/{fd}").startswith("anon_inode:bpf"):
                    continue
                with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                    info = f.read()
            except OSError:
                continue
            for kind in held:
                m = re.search(kind + r"_id:\s+(\d+)", info)
                if m:
                    held[kind].add(int(m.group(1)))
    for p in B.bpftool_json("prog", "show"):
        if p["id"] in held["prog"]:
            held["map"].update(p.get("map_ids", []))
    return held


def ours(before, now):
    """kspan's objects (ks_*, kspan_*; links of such programs) in `now` that were not in
    `before` and that no live process holds: what a killed agent left behind."""
    held = held_ids()
    kinds = {}
    for kind in ("prog", "map"):
        kinds[kind] = sorted(n for i, n in now[kind].items()
                             if i not in before[kind] and i not in held[kind] and n.startswith(("ks_", "kspan")))
    ks_progs = {i for i, n in now["prog"].items() if n.startswith("ks_")} | \
        {i for i, n in before["prog"].items() if n.startswith("ks_")}
    kinds["link"] = sorted(i for i, p in now["link"].items() if i not in before["link"] and i not in held["link"] and
                           (p in ks_progs or p not in now["prog"]))
    return kinds


def uprobe_lines():
    for path in ("/sys/kernel/tracing/uprobe_events", "/sys/kernel/debug/tracing/uprobe_events"):
        try:
            return [l for l in open(path).read().splitlines() if l.strip()]
        except OSError:
            continue
    return []


def start_raw(a, name):
    log = os.path.join(B.TMP, f"kspan-{name}-{time.monotonic_ns()}.log")
    errf = open(log, "w")
    p = B.spawn([a.kspan, "--output", "none", *a.agent_args], stdout=subprocess.DEVNULL, stderr=errf)
    return p, log, errf


def ready_after(log, p, t0, timeout):
    """Seconds from t0 to the ready line, or None if it did not come."""
    end = time.time() + timeout
    while time.time() < end and p.poll() is None:
        with open(log) as f:
            for line in f:
                if '"msg":"ready"' in line:
                    return time.monotonic() - t0, json.loads(line).get("startup_ms")
        time.sleep(0.005)
    return None, None


def run_kill(a):
    rng = random.Random(9)
    port = B.free_port()
    srv = B.start_nginx(port)
    per_kill = 4.0
    wrk = B.spawn(["wrk", "-t1", "-c8", f"-d{int(a.kills * per_kill + 30)}s", f"http://127.0.0.1:{port}/"],
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    up0 = uprobe_lines()
    rows = []
    for i in range(a.kills):
        before = bpf_objects()
        # Two kills land during start-up (loading and attaching), the rest at a random moment
        # up to 3 s after the start, mostly while spans flow.
        delay = [0.03, 0.12][i] if i < 2 else rng.uniform(0.2, 3.0)
        t0 = time.monotonic()
        p, log, errf = start_raw(a, f"kill-{i}")
        time.sleep(delay)
        was_ready = any('"msg":"ready"' in l for l in open(log))  # else: a kill during start-up
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
        errf.close()
        t_kill = time.monotonic()
        left = ours(before, bpf_objects())
        while any(left.values()) and time.monotonic() - t_kill < 5:
            time.sleep(0.05)
            left = ours(before, bpf_objects())
        gone_s = time.monotonic() - t_kill
        ups = [l for l in uprobe_lines() if l not in up0]
        pins = [f for f in os.listdir("/sys/fs/bpf") if f.startswith(("ks_", "kspan"))] \
            if os.path.isdir("/sys/fs/bpf") else []
        rows.append({"kill": i + 1, "after_s": delay, "was_ready": was_ready, "left": left,
                     "clean_after_s": gone_s, "uprobe_events_left": ups, "pins_left": pins})
        print(f"  kill {i + 1}: at {delay:.2f} s ({'ready' if was_ready else 'starting'}), left "
              f"{ {k2: len(v) for k2, v in left.items()} }, checked {gone_s:.2f} s after, uprobes left {len(ups)}",
              flush=True)
    # Each start after a kill is a restart: time to ready of fresh starts right after a kill.
    restarts = []
    for i in range(a.restarts):
        t0 = time.monotonic()
        p, log, errf = start_raw(a, f"restart-{i}")
        r, ms = ready_after(log, p, t0, 30)
        restarts.append({"ready_s": r, "startup_ms": ms})
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
        errf.close()
    # A last start, stopped politely: the agent still works and exits clean.
    before = bpf_objects()
    k = B.Kspan(a.kspan, name="after-kills", outputs=["--output", "none"], extra=a.agent_args)
    time.sleep(2)
    st = k.stop()
    time.sleep(0.5)
    left_final = ours(before, bpf_objects())
    B.stop(wrk)
    B.stop(srv)
    out = {"kills": rows, "restarts": restarts,
           "max_restart_ready_s": max((r["ready_s"] for r in restarts if r["ready_s"] is not None), default=None),
           "final_spans": st.get("spans"), "final_left": left_final,
           "all_clean": all(not any(r["left"].values()) and not r["uprobe_events_left"] and not r["pins_left"]
                            for r in rows) and not any(left_final.values())}
    out["equation"] = (f"{len(rows)} kills: programs, links, maps left after each = "
                       f"{sum(len(v) for r in rows for v in r['left'].values())}")
    out["holds"] = out["all_clean"]
    print(f"  {out['equation']} -> {'holds' if out['holds'] else 'DOES NOT HOLD'}; restart ready "
          f"{[round(r['ready_s'] or -1, 3) for r in restarts]} s", flush=True)
    return out


# ---------------------------------------------------------------- 6. soak


def run_soak(a):
    port = B.free_port()
    srv = B.start_nginx(port)
    sink = Sink(count_only=True)
    k = kspan_otlp(a, "soak", sink.port)
    seconds = int(a.soak_minutes * 60)
    lg = start_loadgen(a, port, "/rel-soak", a.soak_rate, seconds, 8)
    smp = Sampler(k.pid, a.soak_every)
    t0 = time.monotonic()
    lgr = read_loadgen(lg, seconds + 60)
    samples = smp.stop()
    wait_exported(k, a.drain_wait)
    st = k.stop()
    B.stop(srv)
    sink.stop()
    rel = [(t - t0, rss) for t, rss, _ in samples]
    warm = min(60.0, seconds / 10)
    window = min(300.0, (seconds - warm) / 3)
    first = [r for t, r in rel if warm <= t < warm + window]
    last = [r for t, r in rel if seconds - window <= t <= seconds]
    m1, m2 = B.med(first), B.med(last)
    growth = (m2 - m1) / m1 * 100 if m1 else float("nan")
    eq = export_equation(st, sink.summary())
    out = {"minutes": a.soak_minutes, "rate": a.soak_rate, "requests": lgr.get("completed"),
           "loadgen_errors": lgr.get("errors"), "p99_us": lgr.get("p99_us"),
           "warmup_s": warm, "window_s": window, "rss_first_mib": mib(m1), "rss_last_mib": mib(m2),
           "growth_pct": growth, "rss_peak_mib": mib(max((x[2] for x in samples), default=0)),
           "samples": [(round(t), round(mib(r), 2)) for t, r in rel], "export": eq, "losses": losses(st["c"]),
           "kernel_drops": B.kernel_drops(st)}
    out["equation"] = (f"RSS median last {window:.0f} s {mib(m2):.1f} MiB vs first after warm-up {mib(m1):.1f} MiB: "
                       f"{growth:+.1f} % (flat within 10 %); export {eq['equation']}")
    out["holds"] = abs(growth) <= 10 and eq["holds"]
    print(f"  soak {a.soak_minutes} min at {a.soak_rate} req/s: {out['equation']} -> "
          f"{'holds' if out['holds'] else 'DOES NOT HOLD'}", flush=True)
    return out


# ---------------------------------------------------------------- report


def fmt(x, nd=1):
    return B.fmt(x, nd) if x is not None else "n/a"


def yes(b):
    return "holds" if b else "**DOES NOT HOLD**"


def report(a, R):
    L = ["# kspan reliability runs\n"]
    L.append(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    L.append(f"- machine: {os.cpu_count()} CPUs ({model}), kernel {os.uname().release}, load average before start "
             f"{' '.join(R['loadavg'])}")
    L.append(f"- kspan: {a.kspan} (version {R.get('version', '?')}, commit {R.get('commit', '?')})"
             f"{'; --quick' if a.quick else ''}{'; agent flags ' + ' '.join(a.agent_args) if a.agent_args else ''}\n")
    if R.get("merged_from"):
        L.append("Merged from separate runs (`--merge`):\n")
        L.extend(f"- {x}" for x in R["merged_from"])
        L.append("")
    L.append("| scenario | nothing lost silently | |")
    L.append("|---|---|---|")
    for key in SCENARIOS:
        if key in R and isinstance(R[key], dict) and "equation" in R[key]:
            extra = ""
            if key == "garbage" and R[key].get("forged"):  # wrong spans are not a loss, but they are wrong
                extra = f"; but **{R[key]['forged']} spans forged** from request lines inside bodies"
            L.append(f"| {key} | {R[key]['equation']}{extra} | {yes(R[key]['holds'])} |")
        elif key in R and "export" in R[key]:
            L.append(f"| {key} | {R[key]['export']['equation']} | {yes(R[key]['export']['holds'])} |")
        elif key in R and "error" in R[key]:
            L.append(f"| {key} | failed: {R[key]['error']} | |")
    bounds = [(f"storm of {R['storm'].get('connections', 0):,} connections: RSS peak", R["storm"].get("rss_peak_mib"))
              if "storm" in R else None,
              ("slowloris: RSS while held (median)", R["slowloris"].get("rss_held_median_mib"))
              if "slowloris" in R else None,
              ("soak: RSS peak", R["soak"].get("rss_peak_mib")) if "soak" in R else None]
    bounds = [b for b in bounds if b and b[1] is not None]
    if bounds:
        L.append("\n| bound | goal | measured | |")
        L.append("|---|---|---|---|")
        for name, v in bounds:
            L.append(f"| {name} | ≤ 64 MiB | {fmt(v)} MiB | {'meets' if v <= 64 else 'MISSES'} |")
    if "backend" in R and "export" in R["backend"]:
        b, e = R["backend"], R["backend"]["export"]
        L.append(f"\n## Backend down {fmt(b['down_s'], 0)} s\n")
        L.append(f"nginx at {b['rate']} req/s (loadgen, 4 keep-alive connections), only nginx traced (`--pid`: "
                 f"one span a request), kspan `--output otlp` (OTLP/HTTP protobuf, default queue of 2,048 spans) "
                 f"to bench/src/otlp_sink.py, which is killed (SIGKILL) for the outage and started again on the "
                 f"same port.\n")
        L.append("| requests | spans made | sent (counter) | received | duplicates | dropped "
                 "(pipeline) | dropped (exporter) | retries | exporter queue during the outage |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        L.append(f"| {b['requests']:,} | {e['made']:,} | {e['sent']:,} | {e['received']:,} | "
                 f"{e['duplicates']} | {e['dropped_pipeline']} | {e['dropped_exporter']} | {e['retries']} | "
                 f"{fmt(b['queue_when_down'], 0)} |")
        L.append(f"\n{e['equation']}: {yes(e['holds'])}. The agent's books: {e['books']}. The backend's copies: "
                 f"{e['copies']}. "
                 f"Agent log: {b['log_outage']}. Counted losses: {b['losses']}.")
    if "storm" in R and "client" in R["storm"]:
        s = R["storm"]
        L.append(f"\n## Storm of {s['connections']:,} short connections\n")
        L.append("bench/src/storm.c: 16 processes (sources 127.0.0.2–17), one `GET /storm` per connection with "
                 "`Connection: close`, to nginx; kspan with its defaults and `--output file:` (read back "
                 "afterwards), both ends traced.\n")
        L.append("| requests ok | errors | seconds | server spans | client spans | RSS before | RSS peak (VmHWM) | "
                 "RSS end | daemon CPU s | kernel drops |")
        L.append("|---|---|---|---|---|---|---|---|---|---|")
        L.append(f"| {s['client'].get('ok', 0):,} | {s['client'].get('errors', 0):,} | {fmt(s['seconds'])} | "
                 f"{s['spans_server']:,} | {s['spans_client']:,} | {fmt(s['rss_before_mib'])} | "
                 f"{fmt(s['rss_peak_mib'])} | {fmt(s['rss_end_mib'])} | {fmt(s['cpu_s'], 2)} | {s['kernel_drops']} |")
        L.append(f"\nExport: {s['export']['equation']} ({yes(s['export']['holds'])}). Counted losses: {s['losses']}.")
    if "slowloris" in R and "connections" in R["slowloris"]:
        s = R["slowloris"]
        L.append(f"\n## Slowloris: {s['connections']:,} half-written {s['head_bytes'] // 1024} KiB heads held "
                 f"{s['hold_s']} s\n")
        L.append(f"Each connection writes its head in 1 KiB header lines, round-robin over the connections at "
                 f"{a.slow_writes_per_s:,} lines/s (opening took {fmt(s['open_s'])} s), and never the blank line; "
                 f"nginx (`client_header_timeout 300s`) waits. Meanwhile loadgen sends `GET /rel-normal` at "
                 f"{s['normal_rate']} req/s over 4 keep-alive connections, from 2 s before the opening to after the "
                 f"close.\n")
        L.append("| RSS before | RSS held (median) | RSS peak | RSS after close | normal requests | server spans | "
                 "client spans |")
        L.append("|---|---|---|---|---|---|---|")
        L.append(f"| {fmt(s['rss_before_mib'])} | {fmt(s['rss_held_median_mib'])} | {fmt(s['rss_peak_mib'])} | "
                 f"{fmt(s['rss_after_mib'])} | {s['normal_requests']:,} | {s['normal_spans_server']:,} | "
                 f"{s['normal_spans_client']:,} |")
        L.append(f"\nEviction and buffer counters: {s['eviction_and_buffer_counters'] or 'none non-zero'}. "
                 f"Counted losses: {s['losses']}.")
    if "garbage" in R and "connections" in R["garbage"]:
        g = R["garbage"]
        L.append(f"\n## Garbage on {g['connections']:,} connections\n")
        L.append(f"{g['to_nginx']} connections to nginx and {g['to_tcp_sink']} to a plain TCP sink, {g['bytes']:,} "
                 f"bytes: random (1–8 KiB) and near-HTTP (bad Content-Length, duplicate lengths, bad chunking "
                 f"followed by a request line, oversized method and target, TLS and HTTP/2 prefaces, a response "
                 f"as a request, NULs, bare LFs). Then {g['requests_after']} requests, GET and POST, distinct "
                 f"paths, over 2 keep-alive connections.\n")
        L.append(f"- agent alive: {g['agent_alive']} (/healthz {g['healthz']})")
        L.append(f"- parse failures {g['parse_failures']}, bytes dropped {g['parse_bytes_dropped']}, "
                 f"unrecognised connections {fmt(g['unrecognised'], 0)}")
        L.append(f"- later spans: server {g['spans_after_server']}, client {g['spans_after_client']} for "
                 f"{g['requests_after']} requests; wrong: {g['n_mismatches']} {g['mismatches'][:5]}")
        L.append(f"- spans from the garbage connections: {g['spans_from_garbage']} (forged from a request line inside "
                 f"a body, `/forged-N`: {g['forged']}, by payload {g.get('forged_by_payload', {})}): "
                 f"{g['spans_from_garbage_sample']}")
    if "kill" in R and "kills" in R["kill"]:
        k = R["kill"]
        L.append(f"\n## SIGKILL under load\n")
        L.append("wrk -c8 drives nginx the whole time; each kill at the given time after the start.\n")
        L.append("| kill | after (s) | ready when killed | programs / maps / links left | checked after (s) | "
                 "uprobe_events left |")
        L.append("|---|---|---|---|---|---|")
        for r in k["kills"]:
            L.append(f"| {r['kill']} | {r['after_s']:.2f} | {r['was_ready']} | {len(r['left']['prog'])} / "
                     f"{len(r['left']['map'])} / {len(r['left']['link'])} | {r['clean_after_s']:.2f} | "
                     f"{len(r['uprobe_events_left'])} |")
        L.append(f"\nRestarts right after a kill, time to ready (s): "
                 f"{[round(r['ready_s'], 3) if r['ready_s'] else None for r in k['restarts']]} "
                 f"(startup_ms {[r['startup_ms'] for r in k['restarts']]}). A last start stopped with SIGTERM: "
                 f"{k['final_spans']} spans, left {k['final_left']}.")
    if "soak" in R and "minutes" in R["soak"]:
        s = R["soak"]
        L.append(f"\n## Soak: {s['minutes']} min at {s['rate']:,} req/s\n")
        L.append(f"nginx, loadgen over 8 keep-alive connections, kspan OTLP/protobuf to the sink (counting only); "
                 f"RSS every {a.soak_every} s; warm-up {fmt(s['warmup_s'], 0)} s; windows of {fmt(s['window_s'], 0)} s.\n")
        L.append(f"- requests {s['requests']}, errors {s['loadgen_errors']}, p99 {fmt(s['p99_us'])} µs")
        L.append(f"- RSS median first window {fmt(s['rss_first_mib'], 2)} MiB, last {fmt(s['rss_last_mib'], 2)} MiB: "
                 f"{fmt(s['growth_pct'], 1)} %; peak {fmt(s['rss_peak_mib'], 2)} MiB")
        L.append(f"- export: {s['export']['equation']} ({yes(s['export']['holds'])}); kernel drops "
                 f"{s['kernel_drops']}; counted losses {s['losses']}")
        L.append(f"- RSS samples (s, MiB): {s['samples']}")
    L.append(f"\nWall time: {fmt(R['wall_s'], 0)} s.")
    return "\n".join(L) + "\n"


# ---------------------------------------------------------------- main


def merge(a):
    R, sources = {"wall_s": 0.0}, []
    for path in a.merge:
        r = json.load(open(path))
        date = r.get("date") or time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(os.path.getmtime(path)))
        keys = [k for k in SCENARIOS if k in r]
        sources.append(f"{', '.join(keys)}: run of {date}, commit {r.get('commit', '?')}, load average before "
                       f"{' '.join(r.get('loadavg', []))}")
        for k in ("loadavg", "version", "commit"):
            R.setdefault(k, r.get(k))
        R.update({k: r[k] for k in keys})
        R["wall_s"] += r.get("wall_s", 0.0)
    R["merged_from"] = sources
    md = report(a, R)
    with open(a.out, "w") as f:
        f.write(md)
    with open(os.path.splitext(a.out)[0] + ".json", "w") as f:
        json.dump(R, f, indent=1, default=str)
    print(md)


class Lock:
    """flock on a file around each scenario (other privileged users of the host take it too)."""

    def __init__(self, path):
        self.f = open(path, "a") if path else None

    def __enter__(self):
        if self.f:
            fcntl.flock(self.f, fcntl.LOCK_EX)

    def __exit__(self, *exc):
        if self.f:
            fcntl.flock(self.f, fcntl.LOCK_UN)


def leftover_probes():
    """ks_ programs still loaded that no live process holds (other agents on the host are
    not ours to count)."""
    held = held_ids()["prog"]
    return sorted({p.get("name") for p in B.bpftool_json("prog", "show")
                   if p.get("name", "").startswith("ks_") and p["id"] not in held})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kspan", required=True)
    ap.add_argument("--helpers", required=True)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "reliability.md"))
    ap.add_argument("--only", default=",".join(SCENARIOS))
    ap.add_argument("--quick", action="store_true", help="every scenario briefly (< 3 min): to check the suite works")
    ap.add_argument("--soak-minutes", type=float, default=30)
    ap.add_argument("--lock", default="", help="flock this file around each scenario but the soak")
    ap.add_argument("--agent-args", default="", help="more kspan flags for every start, e.g. a new bound to try")
    ap.add_argument("--merge", nargs="+", metavar="JSON",
                    help="run nothing: one report from earlier runs' .json files (a later file's scenarios win), "
                         "e.g. the soak run apart from the rest")
    a = ap.parse_args()
    a.agent_args = a.agent_args.split()
    a.backend_pre, a.backend_down, a.backend_post, a.backend_rate = 20, 60, 30, 100
    a.storm_n = 100000
    a.slow_n, a.slow_bytes, a.slow_hold, a.slow_rate, a.slow_margin = 5000, 16384, 30, 200, 30
    a.slow_writes_per_s = 8000  # 80,000 1 KiB lines in 10 s: 8 MB/s a side
    a.garbage_n, a.garbage_after = 1000, 200
    a.kills, a.restarts = 10, 3
    a.soak_rate, a.soak_every = 2000, 10
    a.drain_wait, a.spray_wait = 30, 20  # at most, waiting for the exporter's queue / garbage peers to close
    if a.quick:
        a.backend_pre, a.backend_down, a.backend_post = 3, 6, 4
        a.storm_n = 5000
        a.slow_n, a.slow_hold, a.slow_margin = 300, 5, 6
        a.garbage_n, a.garbage_after = 100, 40
        a.kills, a.restarts = 3, 1
        a.soak_minutes, a.soak_every = min(a.soak_minutes, 0.4), 2
        a.drain_wait, a.spray_wait = 6, 5
    a.helpers = os.path.abspath(a.helpers)
    if a.merge:
        merge(a)
        return
    only = [s for s in SCENARIOS if s in a.only.split(",")]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    raise_nofile()
    R = {"loadavg": open("/proc/loadavg").read().split()[:3], "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    R["version"] = subprocess.run([a.kspan, "--version"], capture_output=True, text=True).stdout.strip()
    R["commit"] = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True).stdout.strip()
    runs = {"backend": run_backend, "storm": run_storm, "slowloris": run_slowloris, "garbage": run_garbage,
            "kill": run_kill, "soak": run_soak}
    t0 = time.monotonic()
    lock = Lock(a.lock)
    try:
        for key in only:
            print(key, flush=True)
            with (Lock("") if key == "soak" else lock):
                t1 = time.monotonic()
                try:
                    R[key] = runs[key](a)
                except Exception as e:  # a broken scenario is a figure too; the others still run
                    R[key] = {"error": f"{type(e).__name__}: {e}"}
                    print(f"  {key} failed: {R[key]['error']}", flush=True)
                finally:
                    B.cleanup()
                    B.CHILDREN.clear()
                R[key]["wall_s"] = time.monotonic() - t1
                time.sleep(0.5)  # the kernel frees programs just after the last fd closes
                left = leftover_probes()
                R[key]["ks_programs_after"] = left
                if left:
                    print(f"  ks_ programs still loaded after {key}, held by no process: {left}", flush=True)
    finally:
        B.cleanup()
        R["wall_s"] = time.monotonic() - t0
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
