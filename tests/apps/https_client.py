"""An HTTPS client (python's http.client over ssl): COUNT GETs on one keep-alive connection.

usage: https_client.py PORT CAFILE COUNT PATH_PREFIX
Prints one status per request. Bounded: at most 1000 requests, 10 s per request.
"""
import http.client
import ssl
import sys


def main():
    port, cafile, count, prefix = int(sys.argv[1]), sys.argv[2], min(int(sys.argv[3]), 1000), sys.argv[4]
    ctx = ssl.create_default_context(cafile=cafile)
    conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=10)
    for i in range(count):
        conn.request("GET", "%s/%d?token=secret" % (prefix, i))
        resp = conn.getresponse()
        resp.read()
        print(resp.status, flush=True)
    conn.close()


if __name__ == "__main__":
    main()
