"""GETs one URL COUNT times, each request with a traceparent of its own, for the
consistent-sampling test across two agents (tests/integration/sampling_test.cc).

Usage: traceparent_client.py URL COUNT IDS_FILE [GO_FILE] [SEED]
With GO_FILE, waits (at most 60 s) until that file exists before the first request, so the
test can start agents that watch this process first. Each request is a new connection
(the server may be HTTP/1.0) carrying `traceparent: 00-<trace id>-<span id>-01` with
random ids; the trace ids are written to IDS_FILE, one a line. Prints "sent N ok M".
With SEED the ids come from a generator seeded with it: the same ids every run, so a test
whose oracle includes a statistical interval is not itself a coin flip.
"""
import http.client
import os
import random
import sys
import time
import urllib.parse

url = urllib.parse.urlsplit(sys.argv[1])
count, ids_file = int(sys.argv[2]), sys.argv[3]
go_file = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] else None
rng = random.Random(int(sys.argv[5])) if len(sys.argv) > 5 else None


def random_hex(n):
    while True:
        value = rng.getrandbits(8 * n).to_bytes(n, "big") if rng else os.urandom(n)
        if any(value):  # an all-zero id is invalid (W3C trace context)
            return value.hex()


if go_file:
    deadline = time.monotonic() + 60
    while not os.path.exists(go_file) and time.monotonic() < deadline:
        time.sleep(0.05)
sent = ok = 0
ids = []
start = time.monotonic()
for i in range(count):
    if time.monotonic() - start > 120:
        break
    trace_id, span_id = random_hex(16), random_hex(8)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.request("GET", url.path, headers={"traceparent": "00-%s-%s-01" % (trace_id, span_id)})
        resp = conn.getresponse()
        resp.read()
        ok += resp.status == 200
    finally:
        conn.close()
    sent += 1
    ids.append(trace_id)
with open(ids_file, "w") as f:
    f.write("\n".join(ids) + "\n")
print("sent %d ok %d" % (sent, ok), flush=True)
