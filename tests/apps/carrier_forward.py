"""An HTTP/1.1 service that calls another for each request, and propagates nothing itself.

usage: carrier_forward.py BIND_ADDR PORT UPSTREAM_URL [append]
Each GET makes one GET to UPSTREAM_URL (a new connection, urllib) on the handling thread
and answers with the upstream's status and body length. With `append`, the request's own
path is appended to UPSTREAM_URL, so each downstream request can be told apart. The carrier tests use it as the
middle hop of a chain across two network namespaces (tests/bpf/carrier_test.cc).
"""
import http.server
import sys
import urllib.request

UPSTREAM = sys.argv[3]
APPEND = len(sys.argv) > 4 and sys.argv[4] == "append"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        url = UPSTREAM.rstrip("/") + self.path if APPEND else UPSTREAM
        with urllib.request.urlopen(url, timeout=5) as r:
            got = r.read()
            status = r.status
        body = ("upstream %d %d\n" % (status, len(got))).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
