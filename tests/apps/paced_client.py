"""GETs paths on one kept-alive HTTP/1.1 connection, at most RATE a second.

Usage: paced_client.py PORT PREFIX COUNT RATE
Sends GET PREFIX/0 .. PREFIX/COUNT-1 to 127.0.0.1:PORT in turn, each request no earlier
than i / RATE seconds after the first (never faster; slower when the server is), stops
after COUNT requests or 120 s, and prints "sent N ok M seconds S" (S: the first request's
start to the last answer).
"""
import http.client
import sys
import time

port, prefix, count, rate = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
start = time.monotonic()
sent = ok = 0
for i in range(count):
    due = start + i / rate
    now = time.monotonic()
    if now - start > 120:
        break
    if due > now:
        time.sleep(due - now)
    conn.request("GET", "%s/%d" % (prefix, i))
    resp = conn.getresponse()
    resp.read()
    sent += 1
    ok += resp.status == 200
print("sent %d ok %d seconds %.3f" % (sent, ok, time.monotonic() - start), flush=True)
