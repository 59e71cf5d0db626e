"""An HTTP/1.1 service that calls another for each request, and propagates nothing itself.

usage: carrier_forward.py BIND_ADDR PORT UPSTREAM_URL [append] [tls CERT KEY]
Each GET makes one GET to UPSTREAM_URL (a new connection, urllib) on the handling thread
and answers with the upstream's status and body length. With `append`, the request's own
path is appended to UPSTREAM_URL, so each downstream request can be told apart. With
`tls CERT KEY` it serves HTTPS (python's ssl: the system libssl); an https:// upstream is
called without verifying its certificate (the tests make their own). The carrier tests use
it as the middle hop of a chain across two network namespaces (tests/bpf/carrier_test.cc,
tests/integration/wire_context_test.cc).
"""
import http.server
import ssl
import sys
import urllib.request

UPSTREAM = sys.argv[3]
ARGS = sys.argv[4:]
APPEND = "append" in ARGS
TLS = ARGS[ARGS.index("tls") + 1:ARGS.index("tls") + 3] if "tls" in ARGS else None
UNVERIFIED = ssl._create_unverified_context()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        url = UPSTREAM.rstrip("/") + self.path if APPEND else UPSTREAM
        context = UNVERIFIED if url.startswith("https://") else None
        with urllib.request.urlopen(url, timeout=5, context=context) as r:
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


server = http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Handler)
if TLS:
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(TLS[0], TLS[1])
    server.socket = tls.wrap_socket(server.socket, server_side=True)
server.serve_forever()
