"""An HTTPS server on 127.0.0.1 (python's ssl, i.e. the system libssl, SSL_*_ex).

usage: https_server.py PORT CERT KEY
GET /status/NNN answers NNN; anything else 200 with a short body. POST /slow/... reads
its body slowly (16 KiB a millisecond) and answers "got N": a client writing a large body
meets a full socket (https_upload.py). Threaded, keep-alive.
"""
import http.server
import ssl
import sys
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        status = 200
        if self.path.startswith("/status/"):
            status = int(self.path.split("/")[2])
        body = ("tls %s\n" % self.path).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        left = int(self.headers.get("Content-Length", "0"))
        got = 0
        while left > 0:
            chunk = self.rfile.read(min(left, 16384))
            if not chunk:
                break
            got += len(chunk)
            left -= len(chunk)
            if self.path.startswith("/slow"):
                time.sleep(0.001)
        body = ("got %d\n" % got).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
