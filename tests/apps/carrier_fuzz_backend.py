"""A raw-socket HTTP/1.x backend that records every byte it receives (tests/integration/
wire_context_test.cc, the reverse-proxy byte test).

usage: carrier_fuzz_backend.py BIND_ADDR PORT OUT_FILE
Each connection: reads one request (head, then a Content-Length or chunked body), answers
with a response that depends only on the bytes received (its body: a pattern from their
SHA-256, 0 to 96 KiB), reads until the peer closes, and appends a record of everything it
received to OUT_FILE: "conn LENGTH\n" then the bytes. No Date that changes: the answer's
Date and Server are fixed (the proxy passes them on), so two runs with the same requests
give the same bytes. Threaded; stops on SIGTERM.
"""
import hashlib
import socket
import sys
import threading

LOCK = threading.Lock()
OUT = sys.argv[3]


def request_end(data):
    """The length of the first whole request in data, or None when it is not all there."""
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    head = data[:head_end].decode("latin-1").split("\r\n")
    fields = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    at = head_end + 4
    if "chunked" in fields.get("transfer-encoding", "").lower():
        while True:
            line_end = data.find(b"\r\n", at)
            if line_end < 0:
                return None
            size = int(data[at:line_end].split(b";")[0], 16)
            at = line_end + 2
            if size == 0:
                # Trailers, then an empty line.
                while True:
                    line_end = data.find(b"\r\n", at)
                    if line_end < 0:
                        return None
                    empty = line_end == at
                    at = line_end + 2
                    if empty:
                        return at
            at += size + 2
            if at > len(data):
                return None
    length = int(fields.get("content-length", "0"))
    return at + length if len(data) >= at + length else None


def serve(conn):
    got = b""
    answered = False
    try:
        conn.settimeout(20)
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            got += chunk
            if not answered and request_end(got) is not None:
                answered = True
                digest = hashlib.sha256(got).digest()
                size = int.from_bytes(digest[:2], "big") % (96 * 1024 + 1)
                pattern = hashlib.sha256(digest).hexdigest().encode()
                body = (pattern * (size // len(pattern) + 1))[:size]
                head = ("HTTP/1.1 200 OK\r\nServer: fuzz-backend\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n"
                        "Content-Type: application/octet-stream\r\nX-Request-Sha256: %s\r\n"
                        "Content-Length: %d\r\nConnection: close\r\n\r\n" % (digest.hex(), size)).encode()
                conn.sendall(head + body)
                conn.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        conn.close()
    with LOCK, open(OUT, "ab") as f:
        f.write(b"conn %d\n" % len(got))
        f.write(got)


def main():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], int(sys.argv[2])))
    s.listen(64)
    open(OUT, "wb").close()
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
