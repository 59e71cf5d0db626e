"""A tiny http.server app for the request-overhead benchmark: HTTP/1.1 keep-alive,
one thread per connection, a fixed 13-byte body with Content-Length, no access log.
With WORK_US, each request first spins that many microseconds of CPU (a service whose
requests cost >= 200 us, for the "<= 1 % overhead" goal).

    /usr/bin/python3 http_app.py PORT [WORK_US]
"""
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BODY = b"Hello, World!"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without TCP_NODELAY, Nagle and the client's
    # delayed ACK add ~40 ms to every keep-alive request and the benchmark measures that.
    disable_nagle_algorithm = True

    work_s = 0.0

    def do_GET(self):
        if self.work_s:
            end = time.perf_counter() + self.work_s
            while time.perf_counter() < end:
                pass
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    Handler.work_s = int(sys.argv[2]) / 1e6 if len(sys.argv) > 2 else 0.0
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 1024
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
