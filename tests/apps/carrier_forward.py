"""An HTTP/1.1 service that calls another for each request, and propagates nothing itself.

usage: carrier_forward.py BIND_ADDR PORT UPSTREAM_URL [append] [tls CERT KEY]
Each GET makes one GET to UPSTREAM_URL (a new connection, urllib) on the handling thread
and answers with the upstream's status and body length. With `append`, the request's own
path is appended to UPSTREAM_URL, so each downstream request can be told apart. With
`tls CERT KEY` it serves HTTPS (python's ssl: the system libssl); an https:// upstream is
called without verifying its certificate (the tests make their own). The carrier tests use
it as the middle hop of a chain across two network namespaces (tests/bpf/carrier_test.cc,
tests/integration/wire_context_test.cc).

A postgresql:// UPSTREAM_URL (a libpq URI; the password from PGPASSWORD) makes each GET run
one query with psycopg2 instead, in autocommit: `SELECT 1 AS r_<path>` (the path's
characters other than letters and digits as `_`: a column name, so it survives kspan's
query sanitising and tells the requests apart). A path under /new/ opens a connection of
its own for it; any other path uses one connection kept open for the service's life
(shared by the handling threads, one query at a time).
"""
import http.server
import re
import ssl
import sys
import threading
import urllib.request

UPSTREAM = sys.argv[3]
ARGS = sys.argv[4:]
APPEND = "append" in ARGS
TLS = ARGS[ARGS.index("tls") + 1:ARGS.index("tls") + 3] if "tls" in ARGS else None
UNVERIFIED = ssl._create_unverified_context()
POSTGRES = UPSTREAM.startswith("postgresql://")
KEPT = {"conn": None, "lock": threading.Lock()}


def query(path):
    import psycopg2  # Debian's python3-psycopg2: only when asked for

    sql = "SELECT 1 AS r_" + re.sub("[^A-Za-z0-9]", "_", path)
    if path.startswith("/new/"):
        conn = psycopg2.connect(UPSTREAM, connect_timeout=5)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql)
                return cur.fetchall()
        finally:
            conn.close()
    with KEPT["lock"]:
        if KEPT["conn"] is None:
            KEPT["conn"] = psycopg2.connect(UPSTREAM, connect_timeout=5)
            KEPT["conn"].autocommit = True
        with KEPT["conn"].cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if POSTGRES:
            body = ("rows %d\n" % len(query(self.path))).encode()
        else:
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
