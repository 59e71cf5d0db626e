"""A stand-in for the Kubernetes API server's pod endpoints, for kspan's pod watcher
(userspace/k8s/pod_watcher.cc), over HTTPS with a bearer token as in a cluster.

  GET /api/v1/pods?fieldSelector=spec.nodeName=NODE[&limit=N]      the PodList in --pods
  GET /api/v1/pods?watch=1&fieldSelector=...&resourceVersion=RV     a watch: chunked JSON
      lines, one per file the test drops into --events (event-*.json, in name order), until
      timeoutSeconds

As the API server answers: 401 with a Status object without the right token, 400 without
the node's field selector, a PodList with metadata.resourceVersion, watch events
{"type": ..., "object": ...} one per line. Every request is printed to stdout (one JSON
line) so the test can check what kspan asked. Standard library only.
"""
import argparse
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def status(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_json(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(url.query)
        print(json.dumps({"path": url.path, "query": {k: v[0] for k, v in q.items()},
                          "authorization": self.headers.get("Authorization", "")}), flush=True)
        if self.headers.get("Authorization") != "Bearer " + ARGS.token:
            return self.send_json(401, status(401, "Unauthorized", "Unauthorized"))
        if url.path != "/api/v1/pods":
            return self.send_json(404, status(404, "NotFound", "the server could not find the requested resource"))
        if q.get("fieldSelector", [""])[0] != "spec.nodeName=" + ARGS.node:
            return self.send_json(400, status(400, "BadRequest", "this test serves one node's pods only"))
        if q.get("watch", ["0"])[0] in ("1", "true"):
            return self.watch(float(q.get("timeoutSeconds", ["300"])[0]))
        with open(ARGS.pods) as f:
            self.send_json(200, json.load(f))

    def watch(self, timeout):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        deadline = time.monotonic() + min(timeout, 300)
        sent = set()
        try:
            while time.monotonic() < deadline and not STOP.is_set():
                for name in sorted(os.listdir(ARGS.events)):
                    if not name.startswith("event-") or not name.endswith(".json") or name in sent:
                        continue
                    with open(os.path.join(ARGS.events, name)) as f:
                        line = json.dumps(json.load(f), separators=(",", ":")).encode() + b"\n"
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                    self.wfile.flush()
                    sent.add(name)
                time.sleep(0.05)
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass


def main():
    global ARGS, STOP
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--node", required=True)
    p.add_argument("--pods", required=True)
    p.add_argument("--events", required=True)
    ARGS = p.parse_args()
    STOP = threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    server.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(ARGS.cert, ARGS.key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print(json.dumps({"listening": ARGS.port}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    STOP.set()


if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    main()
