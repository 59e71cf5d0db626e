#!/usr/bin/env python3
"""A service for the W3C Trace Context test suite (w3c/trace-context, test/test.py) that
propagates nothing itself: standard library only, no trace context code. The suite POSTs a
JSON list of {"url": ..., "arguments": [...]}; for each item the service POSTs the item's
"arguments" as JSON to its "url" (the harness's callback), one new connection each, from
the thread that serves the request. With kspan's HTTP-header carrier on, the callbacks
carry the traceparent the kernel wrote (docs/tracing.md "Context across hosts").

usage: w3c_service.py PORT [ADDRESS]   (listens on ADDRESS, default 127.0.0.1, port PORT,
path /test)"""
import http.client
import http.server
import json
import sys
import urllib.parse


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        try:
            items = json.loads(self.rfile.read(length) or b"[]")
        except ValueError:
            items = []
        for item in items if isinstance(items, list) else []:
            url = urllib.parse.urlsplit(item.get("url", ""))
            body = json.dumps(item.get("arguments", [])).encode()
            conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=5)
            try:
                # One send for the head: the carrier writes only into a whole head.
                conn.putrequest("POST", url.path or "/", skip_accept_encoding=True)
                conn.putheader("Content-Type", "application/json")
                conn.putheader("Content-Length", str(len(body)))
                conn.endheaders()
                conn.send(body)
                conn.getresponse().read()
            except OSError as e:
                sys.stderr.write("callback to %s failed: %s\n" % (item.get("url"), e))
            finally:
                conn.close()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    address = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    http.server.ThreadingHTTPServer((address, int(sys.argv[1])), Handler).serve_forever()
