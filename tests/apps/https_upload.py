"""An HTTPS client that makes OpenSSL retry its writes: COUNT POSTs of BYTES bytes each
on one keep-alive connection, over a non-blocking socket with a tiny send buffer, to a
server that reads slowly (https_server.py, /slow). Every SSL_write that the socket
cannot take returns WANT_WRITE and is retried with the same length, as OpenSSL requires.

usage: https_upload.py PORT CAFILE COUNT BYTES
Prints one JSON line: {"want_write": retries, "statuses": [...], "echo": [...]}.
Bounded: at most 16 requests of at most 16 MiB, 20 s in all.
"""
import json
import select
import socket
import ssl
import sys
import time


def main():
    port, cafile = int(sys.argv[1]), sys.argv[2]
    count, size = min(int(sys.argv[3]), 16), min(int(sys.argv[4]), 16 << 20)
    deadline = time.monotonic() + 20
    ctx = ssl.create_default_context(cafile=cafile)
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    raw.connect(("127.0.0.1", port))
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    s.setblocking(False)

    def wait(readable):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("upload took too long")
        select.select([s] if readable else [], [] if readable else [s], [], left)

    want_write, statuses, echo = 0, [], []
    for i in range(count):
        body = bytes([0x61 + i % 26]) * size
        head = ("POST /slow/%d HTTP/1.1\r\nHost: localhost:%d\r\nContent-Type: application/octet-stream\r\n"
                "Content-Length: %d\r\n\r\n" % (i, port, size)).encode()
        view = memoryview(head + body)
        sent = 0
        while sent < len(view):
            try:
                sent += s.send(view[sent:])  # a retry passes the same length
            except ssl.SSLWantWriteError:
                want_write += 1
                wait(False)
            except ssl.SSLWantReadError:
                wait(True)
        resp = b""
        while b"\r\n\r\n" not in resp or len(resp) < resp.index(b"\r\n\r\n") + 4 + int(
                resp.split(b"Content-Length: ")[1].split(b"\r\n")[0]):
            try:
                chunk = s.recv(65536)
            except ssl.SSLWantReadError:
                wait(True)
                continue
            if not chunk:
                raise ConnectionError("server closed")
            resp += chunk
        statuses.append(int(resp.split(b" ")[1]))
        echo.append(resp.split(b"\r\n\r\n", 1)[1].decode())
    s.close()
    print(json.dumps({"want_write": want_write, "statuses": statuses, "echo": echo}), flush=True)


if __name__ == "__main__":
    main()
