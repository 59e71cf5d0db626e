#!/usr/bin/python3
"""otlp_sink: a fake OTLP/HTTP backend for bench/reliability.py that counts what it receives.

    otlp_sink.py PORT OUT_FILE [--count-only]

Listens on 127.0.0.1:PORT, takes POST /v1/traces with an OTLP/JSON (application/json) or
OTLP/protobuf (application/x-protobuf) body, gzip or not, answers 200 with an empty
ExportTraceServiceResponse, and appends one line per span to OUT_FILE:

    trace_id span_id kind method path status

(tab-separated; fields it could not find are "-"). The file is appended to and flushed
before the answer goes out, so a sink killed and started again keeps counting in the same
file, and a span the agent sent twice shows as two lines with the same ids. With
--count-only it writes one line per request, "count N", without decoding spans (cheap
enough for a long soak). Prints {"port":PORT} once it listens. Never answers an error: a
body it cannot decode is counted on a line "undecodable BYTES".
"""
import gzip
import json
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# OTLP field numbers (opentelemetry/proto/trace/v1/trace.proto, common/v1/common.proto).
TRACES_DATA_RESOURCE_SPANS = 1
RESOURCE_SPANS_SCOPE_SPANS = 2
SCOPE_SPANS_SPANS = 2
SPAN_TRACE_ID, SPAN_SPAN_ID, SPAN_KIND, SPAN_ATTRIBUTES = 1, 2, 6, 9
KEY_VALUE_KEY, KEY_VALUE_VALUE = 1, 2
ANY_STRING, ANY_INT = 1, 3

METHOD_KEYS = ("http.request.method", "http.method")
PATH_KEYS = ("url.path", "http.target")
STATUS_KEYS = ("http.response.status_code", "http.status_code")
KIND_NAMES = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


def varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def fields(buf):
    """(field number, wire type, value) of one protobuf message: value is an int for
    varints and fixed types, a memoryview for length-delimited fields."""
    i, n = 0, len(buf)
    while i < n:
        key, i = varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(buf, i)
        elif wt == 1:
            v, i = int.from_bytes(buf[i:i + 8], "little"), i + 8
        elif wt == 5:
            v, i = int.from_bytes(buf[i:i + 4], "little"), i + 4
        elif wt == 2:
            ln, i = varint(buf, i)
            if i + ln > n:
                raise ValueError("truncated field")
            v, i = buf[i:i + ln], i + ln
        else:
            raise ValueError(f"wire type {wt}")
        yield num, wt, v


def nested(buf, *path):
    """Every length-delimited submessage reached by following field numbers in path."""
    if not path:
        yield buf
        return
    for num, wt, v in fields(buf):
        if num == path[0] and wt == 2:
            yield from nested(v, *path[1:])


def pb_spans(body, decode):
    spans = nested(memoryview(body), TRACES_DATA_RESOURCE_SPANS, RESOURCE_SPANS_SCOPE_SPANS, SCOPE_SPANS_SPANS)
    if not decode:
        return sum(1 for _ in spans)
    out = []
    for span in spans:
        row = {"trace": "-", "id": "-", "kind": 0, "attrs": {}}
        for num, wt, v in fields(span):
            if num == SPAN_TRACE_ID and wt == 2:
                row["trace"] = bytes(v).hex()
            elif num == SPAN_SPAN_ID and wt == 2:
                row["id"] = bytes(v).hex()
            elif num == SPAN_KIND and wt == 0:
                row["kind"] = v
            elif num == SPAN_ATTRIBUTES and wt == 2:
                key, val = None, None
                for n2, w2, v2 in fields(v):
                    if n2 == KEY_VALUE_KEY and w2 == 2:
                        key = bytes(v2).decode("utf-8", "replace")
                    elif n2 == KEY_VALUE_VALUE and w2 == 2:
                        for n3, w3, v3 in fields(v2):
                            if n3 == ANY_STRING and w3 == 2:
                                val = bytes(v3).decode("utf-8", "replace")
                            elif n3 == ANY_INT and w3 == 0:
                                val = str(v3)
                if key is not None:
                    row["attrs"][key] = val
        out.append(row)
    return out


def json_value(v):
    for k in ("stringValue", "intValue", "boolValue", "doubleValue"):
        if k in v:
            return str(v[k])
    return None


def json_spans(body, decode):
    doc = json.loads(body)
    out = []
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for s in ss.get("spans", []):
                kind = s.get("kind", 0)
                if isinstance(kind, str):  # the enum's name is valid OTLP/JSON too
                    kind = {"SPAN_KIND_" + n: k for k, n in KIND_NAMES.items()}.get(kind, 0)
                out.append({"trace": s.get("traceId", "-"), "id": s.get("spanId", "-"), "kind": kind,
                            "attrs": {a.get("key"): json_value(a.get("value", {})) for a in s.get("attributes", [])}})
    return len(out) if not decode else out


def first(attrs, keys):
    for k in keys:
        if attrs.get(k) is not None:
            return attrs[k]
    return "-"


def path_of(attrs):
    """url.path on SERVER spans; CLIENT spans carry url.full (scheme://host:port/path?query)."""
    p = first(attrs, PATH_KEYS)
    if p == "-" and attrs.get("url.full"):
        p = urllib.parse.urlsplit(attrs["url.full"]).path or "-"
    return p


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        is_json = "json" in self.headers.get("Content-Type", "")
        try:
            got = (json_spans if is_json else pb_spans)(body, not self.server.count_only)
            if self.server.count_only:
                lines = [f"count\t{got}"]
            else:
                lines = ["\t".join((s["trace"], s["id"], KIND_NAMES.get(s["kind"], str(s["kind"])),
                                    first(s["attrs"], METHOD_KEYS), path_of(s["attrs"]),
                                    first(s["attrs"], STATUS_KEYS))) for s in got]
        except (ValueError, IndexError, KeyError, AttributeError) as e:
            lines = [f"undecodable\t{len(body)}\t{e}"]
        with self.server.lock:
            self.server.out.write("".join(line + "\n" for line in lines))
            self.server.out.flush()
        answer = b"{}" if is_json else b""
        self.send_response(200)
        self.send_header("Content-Type", "application/json" if is_json else "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


def main():
    import threading
    port, path = int(sys.argv[1]), sys.argv[2]
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    srv.count_only = "--count-only" in sys.argv[3:]
    srv.lock = threading.Lock()
    srv.out = open(path, "a")
    print(json.dumps({"port": srv.server_address[1]}), flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
