"""An HTTP/1.1 client that keeps one connection open across a pause.

Usage: keepalive_client.py PORT GO_FILE [DONE_FILE]
Sends GET /before on a fresh keep-alive connection, prints "first-done", waits until
GO_FILE exists (at most 20 s), then sends GET /after/7 on the same connection, prints
"second-done", and, given DONE_FILE, stays alive until it exists (at most 20 s) so the
test can check what was read from /proc/PID while the process lived.
Used to test connections that were open before kspan started.
"""
import http.client
import os
import sys
import time

port, go_file = int(sys.argv[1]), sys.argv[2]
done_file = sys.argv[3] if len(sys.argv) > 3 else None


def wait_for(path):
    deadline = time.monotonic() + 20
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            sys.exit("timed out waiting for " + path)
        time.sleep(0.02)


conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
conn.request("GET", "/ok/before")
conn.getresponse().read()
print("first-done", flush=True)
wait_for(go_file)
conn.request("GET", "/ok/after/7")
resp = conn.getresponse()
resp.read()
print("second-done", resp.status, flush=True)
conn.close()
if done_file:
    wait_for(done_file)
