"""One tier of a multi-tier HTTP service, for the trace-stitching tests.

Usage: tier_service.py PORT [DOWNSTREAM_URL] [--exec-curl URL] [--delay-ms N]

Serves HTTP/1.1 (keep-alive) on 127.0.0.1:PORT, one thread per connection, and prints
"ready" once listening. For each GET:
  - with DOWNSTREAM_URL: one GET to DOWNSTREAM_URL + the incoming path, made with
    http.client on the handler thread over a new connection, forwarding no header at all
    (in particular no traceparent: kspan must stitch the tiers by itself); the answer is
    200 with the downstream body, or 502 when the downstream call fails (10 s timeout);
  - with --exec-curl URL: runs `curl -s -o /dev/null URL` as a child process (fork+exec
    while the request is in progress) and answers 200 "exec\\n";
  - otherwise: answers 200 "ok PATH\\n".
--delay-ms N sleeps N ms on the handler thread before answering (after any downstream
call), to keep requests in flight at the same time.
"""
import argparse
import http.client
import http.server
import subprocess
import sys
import time
import urllib.parse

DOWNSTREAM_TIMEOUT_S = 10


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("downstream", nargs="?", default=None)
    p.add_argument("--exec-curl", dest="exec_curl", default=None)
    p.add_argument("--delay-ms", dest="delay_ms", type=int, default=0)
    return p.parse_args()


ARGS = parse_args()


def call_downstream(path):
    """GET downstream + path on a fresh connection; returns (status, body)."""
    url = urllib.parse.urlsplit(ARGS.downstream)
    base_path = url.path.rstrip("/")
    conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=DOWNSTREAM_TIMEOUT_S)
    try:
        conn.request("GET", base_path + path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: one line per request would be noise
        pass

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        status, body = 200, ("ok %s\n" % self.path).encode()
        if ARGS.exec_curl:
            try:
                subprocess.run(["curl", "-s", "-o", "/dev/null", ARGS.exec_curl],
                               timeout=DOWNSTREAM_TIMEOUT_S, check=False)
                body = b"exec\n"
            except (OSError, subprocess.SubprocessError) as e:
                status, body = 502, ("exec failed: %s\n" % e).encode()
        elif ARGS.downstream:
            try:
                ds_status, body = call_downstream(self.path)
                if ds_status != 200:
                    status = 502
            except (OSError, http.client.HTTPException) as e:
                status, body = 502, ("downstream failed: %s\n" % e).encode()
        if ARGS.delay_ms > 0:
            time.sleep(ARGS.delay_ms / 1000.0)
        self.reply(status, body)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def main():
    server = Server(("127.0.0.1", ARGS.port), Handler)
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
