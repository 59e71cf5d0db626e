#!/usr/bin/env python3
"""Our own harness for the behaviours the W3C Trace Context test suite (w3c/trace-context,
test/test.py, Level 1 strict 2 and Level 2) checks of a service: one case per test of the
suite, under its name, with the requests it sends and what the callbacks must carry, as the
specification says (Trace Context Level 2: "traceparent Header", "tracestate Header", the
processing model). Written here, not copied: the suite itself needs network access and a
third-party HTTP library, so tests/integration/w3c_carrier_test.cc runs this instead, and
docs/tracing.md records the suite's own run by hand.

The harness asks the service (tests/apps/w3c_service.py) to call it back: it POSTs
[{"url": <callback>, "arguments": []}, ...] with the case's header fields, exactly as given
(duplicates, casing, whitespace), and reads the header fields of the callbacks.

usage: w3c_harness.py SERVICE_URL LISTEN_ADDRESS LISTEN_PORT
Prints one JSON line per case ({"case", "ok", "detail"}) and a last one with the totals
({"cases", "failed", "callbacks", "callbacks_with_tracestate"}); exits 1 if any failed."""
import http.client
import http.server
import json
import re
import sys
import threading
import time
import urllib.parse
import uuid

T = "12345678901234567890123456789012"
P = "1234567890123456"
ZERO_T = "0" * 32

TP_RE = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_\-*/@]{0,255}$")
VALUE_RE = re.compile(r"^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$")


class Callbacks:
    def __init__(self):
        self.lock = threading.Condition()
        self.got = {}

    def put(self, path, headers):
        with self.lock:
            self.got[path] = headers
            self.lock.notify_all()

    def wait(self, paths, timeout):
        deadline = time.monotonic() + timeout
        with self.lock:
            while not all(p in self.got for p in paths):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.lock.wait(left)
            return [self.got.get(p) for p in paths]


CALLBACKS = Callbacks()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        CALLBACKS.put(self.path, list(self.headers.items()))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "4")
        self.end_headers()
        self.wfile.write(b"null")

    def log_message(self, *args):
        pass


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


def traceparent(headers):
    """The one traceparent a callback must carry, as (version, trace, parent, flags)."""
    values = [v for k, v in headers if k.lower() == "traceparent"]
    check(len(values) == 1, "expected one traceparent, got %r" % values)
    m = TP_RE.match(values[0])
    check(m is not None, "invalid traceparent %r" % values[0])
    version, trace, parent, flags = m.groups()
    check(version == "00", "version %s" % version)
    check(trace != ZERO_T and parent != "0" * 16, "all-zero id in %r" % values[0])
    return trace, parent, int(flags, 16)


def tracestate(headers):
    """The callback's tracestate as an ordered list of (key, value); [] when none."""
    fields = [v for k, v in headers if k.lower() == "tracestate"]
    members = []
    for field in fields:
        for member in re.split(r"[ \t]*,[ \t]*", field.strip(" \t")):
            if not member:
                continue
            key, eq, value = member.partition("=")
            check(eq and KEY_RE.match(key) and VALUE_RE.match(value), "invalid member %r" % member)
            members.append((key, value))
    check(len(members) <= 32, "%d members" % len(members))
    return members


class Harness:
    def __init__(self, service, address, port):
        self.service = urllib.parse.urlsplit(service)
        self.base = "http://%s:%d" % (address, port)
        self.callbacks = 0
        self.with_tracestate = 0

    def request(self, headers, count=1):
        """Sends one request to the service with `headers`; the callbacks' header fields."""
        scope = uuid.uuid4().hex
        paths = ["/%s.%d" % (scope, i) for i in range(count)]
        body = json.dumps([{"url": self.base + p, "arguments": []} for p in paths]).encode()
        conn = http.client.HTTPConnection(self.service.hostname, self.service.port, timeout=10)
        try:
            conn.putrequest("POST", self.service.path, skip_accept_encoding=True)
            conn.putheader("Accept", "application/json")
            conn.putheader("Content-Type", "application/json")
            for name, value in headers:
                conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            status = conn.getresponse().status
        finally:
            conn.close()
        check(status == 200, "service answered %d" % status)
        got = CALLBACKS.wait(paths, 10)
        check(all(g is not None for g in got), "the service made %d of %d callbacks" %
              (sum(g is not None for g in got), count))
        self.callbacks += count
        self.with_tracestate += sum(any(k.lower() == "tracestate" for k, _ in g) for g in got)
        return got

    def one(self, headers):
        h = self.request(headers)[0]
        return traceparent(h), tracestate(h)


def tp(value, name="traceparent"):
    return [name, value]


def ts(value, name="tracestate"):
    return [name, value]


TP00 = tp("00-%s-%s-00" % (T, P))


def new_trace(h, headers, also_not=()):
    (trace, _, _), _ = h.one(headers)
    check(trace != T and trace not in also_not, "continued %s for %r" % (trace, headers))


def continued(h, headers):
    (trace, parent, _), state = h.one(headers)
    check(trace == T, "new trace %s for %r" % (trace, headers))
    check(parent != P, "parent id not replaced")
    return state


def get(state, key):
    for k, v in state:
        if k == key:
            return v
    return None


def case_both_missing(h):
    h.one([])


def case_tp_included_ts_missing(h):
    continued(h, [tp("00-%s-%s-01" % (T, P))])


def case_tp_duplicated(h):
    new_trace(h, [tp("00-%s1-%s-01" % (T[:-1], P)), tp("00-%s-%s-01" % (T, P))], ("%s1" % T[:-1],))


def case_tp_header_name(h):
    for name in ("trace-parent", "trace.parent"):
        new_trace(h, [tp("00-%s-%s-01" % (T, P), name)])


def case_tp_name_casing(h):
    for name in ("TraceParent", "TrAcEpArEnT", "TRACEPARENT"):
        continued(h, [tp("00-%s-%s-01" % (T, P), name)])


def case_tp_version_00(h):
    for value in ("00-%s-%s-01." % (T, P), "00-%s-%s-01-what-the-future-will-be-like" % (T, P)):
        new_trace(h, [tp(value)])


def case_tp_version_cc(h):
    continued(h, [tp("cc-%s-%s-01" % (T, P))])
    continued(h, [tp("cc-%s-%s-01-what-the-future-will-be-like" % (T, P))])
    new_trace(h, [tp("cc-%s-%s-01.what-the-future-will-be-like" % (T, P))])


def case_tp_version_ff(h):
    new_trace(h, [tp("ff-%s-%s-01" % (T, P))])


def bad_traceparents(*values):
    def run(h):
        for value in values:
            new_trace(h, [tp(value)], (ZERO_T,))

    return run


def case_tp_ows(h):
    core = "00-%s-%s-01" % (T, P)
    for value in (" " + core, "\t" + core, core + " ", core + "\t", "\t " + core + " \t"):
        continued(h, [tp(value)])


def case_ts_without_tp(h):
    for value in ("foo=1", "foo=1,bar=2"):
        _, state = h.one([ts(value)])
        check(get(state, "foo") is None, "a tracestate without traceparent was propagated: %r" % state)


def case_ts_with_tp(h):
    (trace, _, flags), state = h.one([TP00, ts("foo=1,bar=2")])
    check(trace == T, "new trace")
    check(flags & 1 == 0, "sampled flag set, the request had it unset")
    check(state == [("foo", "1"), ("bar", "2")], "tracestate %r" % state)


def case_ts_header_name(h):
    for name in ("trace-state", "trace.state"):
        _, state = h.one([TP00, ts("foo=1", name)])
        check(get(state, "foo") is None, "%s taken as tracestate" % name)


def case_ts_name_casing(h):
    for name in ("TraceState", "TrAcEsTaTe", "TRACESTATE"):
        _, state = h.one([TP00, ts("foo=1", name)])
        check(get(state, "foo") == "1", "%s: %r" % (name, state))


def case_ts_empty(h):
    (trace, _, _), state = h.one([TP00, ts("")])
    check(trace == T and state == [], "empty tracestate: %r" % state)
    for headers in ([TP00, ts("foo=1"), ts("")], [TP00, ts(""), ts("foo=1")]):
        state = continued(h, headers)
        check(state == [("foo", "1")], "%r" % state)


def case_ts_multiple_fields(h):
    state = continued(h, [TP00, ts("foo=1,bar=2"), ts("rojo=1,congo=2"), ts("baz=3")])
    check(state == [("foo", "1"), ("bar", "2"), ("rojo", "1"), ("congo", "2"), ("baz", "3")], "%r" % state)


def case_ts_duplicated_keys(h):
    for headers in ([ts("foo=1,foo=1")], [ts("foo=1,foo=2")], [ts("foo=1"), ts("foo=1")],
                    [ts("foo=1"), ts("foo=2")]):
        state = continued(h, [TP00] + headers)
        check(get(state, "foo") in ("1", "2"), "%r -> %r" % (headers, state))


def case_ts_all_allowed(h):
    key = "".join(map(chr, range(0x61, 0x7B))) + "0123456789_-*/"
    value = "".join(chr(c) for c in range(0x20, 0x7F) if c not in (0x2C, 0x3D))
    for k in (key, key + "@a-z0-9_-*/"):
        _, state = h.one([TP00, ts(k + "=" + value)])
        check(get(state, k) == value, "%r" % state)


def case_ts_ows(h):
    for value in ("foo=1 \t , \t bar=2, \t baz=3", "foo=1\t \t,\t \tbar=2,\t \tbaz=3"):
        _, state = h.one([TP00, ts(value)])
        check(state == [("foo", "1"), ("bar", "2"), ("baz", "3")], "%r -> %r" % (value, state))
    for value in (" foo=1", "\tfoo=1", "foo=1 ", "foo=1\t", "\t foo=1 \t"):
        state = continued(h, [TP00, ts(value)])
        check(state == [("foo", "1")], "%r -> %r" % (value, state))


def case_ts_key_illegal(h):
    for value, key in (("foo =1", "foo "), ("FOO=1", "FOO"), ("foo.bar=1", "foo.bar")):
        _, state = h.one([TP00, ts(value)])
        check(get(state, key) is None, "%r kept" % value)


def case_ts_vendor_format(h):
    for value, want in (("foo@=1,bar=2", [("foo@", "1"), ("bar", "2")]),
                        ("foo@@bar=1,bar=2", [("foo@@bar", "1"), ("bar", "2")]),
                        ("foo@bar@baz=1,bar=2", [("foo@bar@baz", "1"), ("bar", "2")])):
        _, state = h.one([TP00, ts(value)])
        check(state == want, "%r -> %r" % (value, state))
    _, state = h.one([TP00, ts("@foo=1,bar=2")])
    check(get(state, "bar") is None, "an invalid list was propagated: %r" % state)


def case_ts_member_count(h):
    fields = [",".join("bar%02d=%02d" % (i, i) for i in range(a, b)) for a, b in ((1, 11), (11, 21), (21, 31))]
    _, state = h.one([TP00] + [ts(f) for f in fields] + [ts("bar31=31,bar32=32")])
    check(len(state) == 32 and get(state, "bar01") == "01", "32 members: %d kept" % len(state))
    _, state = h.one([TP00] + [ts(f) for f in fields] + [ts("bar31=31,bar32=32,bar33=33")])
    check(get(state, "bar01") is None, "33 members were propagated")


def case_ts_key_length(h):
    for key in ("z" * 256, "t" * 241 + "@" + "v" * 14, "t" * 242 + "@v", "t@" + "v" * 15):
        _, state = h.one([TP00, ts("foo=1"), ts(key + "=1")])
        check(state == [("foo", "1"), (key, "1")], "a %d-character key: %r" % (len(key), state))
    _, state = h.one([TP00, ts("foo=1"), ts("z" * 257 + "=1")])
    check(get(state, "foo") is None, "a list with a 257-character key was propagated")


def case_ts_value_illegal(h):
    for value in ("foo=bar=baz", "foo=,bar=3"):
        _, state = h.one([TP00, ts(value)])
        check(state == [], "%r -> %r" % (value, state))


def multiple(headers, same_trace):
    def run(h):
        got = [traceparent(c) for c in h.request(headers, 3)]
        traces = {t for t, _, _ in got}
        check(len({p for _, p, _ in got}) == 3, "parent ids repeat: %r" % got)
        check(ZERO_T not in traces, "all-zero trace")
        if same_trace:
            check(traces == {T}, "traces %r" % traces)

    return run


def case_random_flag(h):
    (trace, parent, flags), _ = h.one([tp("00-%s-%s-02" % (T, P))])
    check(trace == T and parent != P, "not continued")
    check(flags & 2, "random flag dropped: %02x" % flags)


CASES = [
    ("test_both_traceparent_and_tracestate_missing", case_both_missing),
    ("test_traceparent_included_tracestate_missing", case_tp_included_ts_missing),
    ("test_traceparent_duplicated", case_tp_duplicated),
    ("test_traceparent_header_name", case_tp_header_name),
    ("test_traceparent_header_name_valid_casing", case_tp_name_casing),
    ("test_traceparent_version_0x00", case_tp_version_00),
    ("test_traceparent_version_0xcc", case_tp_version_cc),
    ("test_traceparent_version_0xff", case_tp_version_ff),
    ("test_traceparent_version_illegal_characters",
     bad_traceparents(".0-%s-%s-01" % (T, P), "0.-%s-%s-01" % (T, P))),
    ("test_traceparent_version_too_long", bad_traceparents("000-%s-%s-01" % (T, P), "0000-%s-%s-01" % (T, P))),
    ("test_traceparent_version_too_short", bad_traceparents("0-%s-%s-01" % (T, P))),
    ("test_traceparent_trace_id_all_zero", bad_traceparents("00-%s-%s-01" % (ZERO_T, P))),
    ("test_traceparent_trace_id_illegal_characters",
     bad_traceparents("00-.%s-%s-01" % (T[1:], P), "00-%s.-%s-01" % (T[:-1], P))),
    ("test_traceparent_trace_id_too_long", bad_traceparents("00-%s3-%s-01" % (T, P))),
    ("test_traceparent_trace_id_too_short", bad_traceparents("00-%s-%s-01" % (T[:-1], P))),
    ("test_traceparent_parent_id_all_zero", bad_traceparents("00-%s-%s-01" % (T, "0" * 16))),
    ("test_traceparent_parent_id_illegal_characters",
     bad_traceparents("00-%s-.%s-01" % (T, P[1:]), "00-%s-%s.-01" % (T, P[:-1]))),
    ("test_traceparent_parent_id_too_long", bad_traceparents("00-%s-%s7-01" % (T, P))),
    ("test_traceparent_parent_id_too_short", bad_traceparents("00-%s-%s-01" % (T, P[:-1]))),
    ("test_traceparent_trace_flags_illegal_characters",
     bad_traceparents("00-%s-%s-.0" % (T, P), "00-%s-%s-0." % (T, P))),
    ("test_traceparent_trace_flags_too_long", bad_traceparents("00-%s-%s-001" % (T, P))),
    ("test_traceparent_trace_flags_too_short", bad_traceparents("00-%s-%s-1" % (T, P))),
    ("test_traceparent_ows_handling", case_tp_ows),
    ("test_tracestate_included_traceparent_missing", case_ts_without_tp),
    ("test_tracestate_included_traceparent_included", case_ts_with_tp),
    ("test_tracestate_header_name", case_ts_header_name),
    ("test_tracestate_header_name_valid_casing", case_ts_name_casing),
    ("test_tracestate_empty_header", case_ts_empty),
    ("test_tracestate_multiple_headers_different_keys", case_ts_multiple_fields),
    ("test_tracestate_duplicated_keys", case_ts_duplicated_keys),
    ("test_tracestate_all_allowed_characters", case_ts_all_allowed),
    ("test_tracestate_ows_handling", case_ts_ows),
    ("test_tracestate_key_illegal_characters", case_ts_key_illegal),
    ("test_tracestate_key_illegal_vendor_format", case_ts_vendor_format),
    ("test_tracestate_member_count_limit", case_ts_member_count),
    ("test_tracestate_key_length_limit", case_ts_key_length),
    ("test_tracestate_value_illegal_characters", case_ts_value_illegal),
    ("test_multiple_requests_with_valid_traceparent", multiple([tp("00-%s-%s-01" % (T, P))], True)),
    ("test_multiple_requests_without_traceparent", multiple([], False)),
    ("test_multiple_requests_with_illegal_traceparent", multiple([tp("00-%s-%s-01" % (ZERO_T, P))], False)),
    ("test_propagates_random_flag", case_random_flag),
]


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    server = http.server.ThreadingHTTPServer((sys.argv[2], int(sys.argv[3])), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    h = Harness(sys.argv[1], sys.argv[2], int(sys.argv[3]))
    failed = 0
    for name, run in CASES:
        try:
            run(h)
            print(json.dumps({"case": name, "ok": True}), flush=True)
        except (Failed, OSError) as e:
            failed += 1
            print(json.dumps({"case": name, "ok": False, "detail": str(e)}), flush=True)
    print(json.dumps({"cases": len(CASES), "failed": failed, "callbacks": h.callbacks,
                      "callbacks_with_tracestate": h.with_tracestate}), flush=True)
    server.shutdown()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
