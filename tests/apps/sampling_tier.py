"""One tier of a two-tier HTTP service for the sampling tests (tests/integration/sampling_test.cc).

Usage: sampling_tier.py PORT [DOWNSTREAM_URL]

Serves HTTP/1.1 keep-alive on 127.0.0.1:PORT (one thread per connection) and prints "ready".
For each GET:
  - with DOWNSTREAM_URL: one GET of DOWNSTREAM_URL + the path over a kept-alive connection
    of the handler thread (no header forwarded: kspan stitches the tiers), answering 200
    with the downstream body, or 502 when the downstream answers anything else;
  - otherwise (the leaf): a path with a segment "err" is answered 500; one with "slow"
    after 80 ms; any other 200 "ok PATH".
"""
import http.client
import http.server
import sys
import threading
import time
import urllib.parse

PORT = int(sys.argv[1])
DOWNSTREAM = urllib.parse.urlsplit(sys.argv[2]) if len(sys.argv) > 2 else None
LOCAL = threading.local()


def call_downstream(path):
    conn = getattr(LOCAL, "conn", None)
    if conn is None:
        conn = http.client.HTTPConnection(DOWNSTREAM.hostname, DOWNSTREAM.port, timeout=10)
        LOCAL.conn = conn
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (OSError, http.client.HTTPException):
        conn.close()
        LOCAL.conn = None
        raise


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY the body waits for the
    # client's delayed ACK (40 ms), which would make every trace "slow".
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        segments = self.path.split("?")[0].split("/")
        if DOWNSTREAM:
            try:
                status, body = call_downstream(self.path)
                self.reply(200 if status == 200 else 502, body)
            except (OSError, http.client.HTTPException) as e:
                self.reply(502, ("downstream failed: %s\n" % e).encode())
            return
        if "err" in segments:
            self.reply(500, b"failed on purpose\n")
            return
        if "slow" in segments:
            time.sleep(0.08)
        self.reply(200, ("ok %s\n" % self.path).encode())


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def main():
    server = Server(("127.0.0.1", PORT), Handler)
    print("ready", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
