"""An HTTP/1.1 client that keeps one connection open across a pause.

Usage: keepalive_client.py PORT GO_FILE
Sends GET /before on a fresh keep-alive connection, prints "first-done", waits until
GO_FILE exists (at most 20 s), then sends GET /after/7 on the same connection and exits.
Used to test connections that were open before kspan started.
"""
import http.client
import os
import sys
import time

port, go_file = int(sys.argv[1]), sys.argv[2]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
conn.request("GET", "/ok/before")
conn.getresponse().read()
print("first-done", flush=True)
deadline = time.monotonic() + 20
while not os.path.exists(go_file):
    if time.monotonic() > deadline:
        sys.exit("timed out waiting for " + go_file)
    time.sleep(0.02)
conn.request("GET", "/ok/after/7")
resp = conn.getresponse()
resp.read()
print("second-done", resp.status, flush=True)
conn.close()
