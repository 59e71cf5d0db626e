"""A seeded mix of HTTP/1.1 request shapes, sent the many ways a client can send them
(tests/integration/wire_context_test.cc, the reverse-proxy byte test).

usage: carrier_fuzz_client.py SEED CONNECTIONS HOST PORT OUT_FILE
The same SEED gives the same bytes sent. Per connection 1 to 5 requests, pipelined (all
written before any answer is read) or one after the other; methods with and without
bodies, 0 to 30 header fields of 1 B to 2 KiB, bodies by Content-Length or chunked (1 B to
384 KiB, random chunk sizes); what is sent is cut at random points into write() and
sendmsg() (writev) calls of several buffers, some with a pause between them, half the
connections with TCP_NODELAY. Reads every answer (status line, fields, Content-Length
body), and writes to OUT_FILE for each connection "conn LENGTH\n" and the bytes received.
Prints the number of requests sent. Bounded: CONNECTIONS connections, 20 s per socket.
"""
import random
import socket
import sys
import time

TOKEN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"
VALUE = "".join(chr(c) for c in range(0x21, 0x7F))


def field_value(rng, size):
    v = "".join(rng.choice(VALUE + " ") for _ in range(size))
    return v.strip(" ") or "v"


def body_bytes(rng, size):
    # Any byte, CR and LF included: the body is opaque to everyone on the way.
    return rng.randbytes(size)


def make_request(rng, host, last):
    method = rng.choice(["GET", "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "POST"])
    path = "/" + "/".join("".join(rng.choice(TOKEN) for _ in range(rng.randint(1, 12)))
                          for _ in range(rng.randint(1, 4)))
    if rng.random() < 0.5:
        path += "?" + "&".join("%s=%s" % ("".join(rng.choice(TOKEN) for _ in range(rng.randint(1, 6))),
                                          "".join(rng.choice(TOKEN) for _ in range(rng.randint(0, 20))))
                               for _ in range(rng.randint(1, 5)))
    fields = [("Host", host)]
    for i in range(rng.randint(0, 30)):
        name = "X-" + "".join(rng.choice(TOKEN[:-1]) for _ in range(rng.randint(1, 20))) + "-%d" % i
        size = rng.choice([1, 8, 40, 200, 700, 2048])
        fields.append((name, field_value(rng, rng.randint(1, size))))
    if last:
        fields.append(("Connection", "close"))
    body = b""
    if method in ("POST", "PUT", "PATCH"):
        size = rng.choice([0, 1, 17, 1000, 1460, 4096, 20000, 65536, 200000, 393216])
        size = rng.randint(size // 2, size) if size > 1 else size
        payload = body_bytes(rng, size)
        if rng.random() < 0.4:
            fields.append(("Transfer-Encoding", "chunked"))
            at = 0
            while at < len(payload):
                n = min(len(payload) - at, rng.choice([1, 7, 100, 1000, 8192, 30000]))
                body += b"%x\r\n" % n + payload[at:at + n] + b"\r\n"
                at += n
            body += b"0\r\n\r\n"
        else:
            fields.append(("Content-Length", str(len(payload))))
            body = payload
    rng.shuffle(fields)
    head = "%s %s HTTP/1.1\r\n" % (method, path) + "".join("%s: %s\r\n" % f for f in fields) + "\r\n"
    return head.encode("latin-1") + body


def send_cut(rng, sock, data):
    """Sends data cut at random points, by write() or sendmsg() (several buffers). The cuts
    and pauses are drawn first, so what the kernel accepts per call (partial sends on a
    socket with a timeout) never changes what the generator draws next."""
    plan = []
    at = 0
    while at < len(data):
        n = min(len(data) - at, rng.choice([1, 2, 5, 64, 500, 1448, 4000, 16384, 100000, len(data)]))
        cuts = []
        if rng.random() < 0.4 and n > 1:
            cuts = sorted(rng.sample(range(1, n), min(n - 1, rng.randint(1, 6))))
        pause = rng.choice([0.0005, 0.002]) if rng.random() < 0.15 else 0
        plan.append((data[at:at + n], cuts, pause))
        at += n
    for piece, cuts, pause in plan:
        if cuts:
            bufs = [piece[a:b] for a, b in zip([0] + cuts, cuts + [len(piece)])]
            sent = sock.sendmsg(bufs)
            if sent < len(piece):
                sock.sendall(piece[sent:])
        else:
            sock.sendall(piece)
        if pause:
            time.sleep(pause)


def read_response(sock, buf):
    """Reads one response (fields, then a Content-Length body); returns (bytes, rest)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed inside a response head")
        buf += chunk
    head_end = buf.index(b"\r\n\r\n") + 4
    length = 0
    for line in buf[:head_end].decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    while len(buf) < head_end + length:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed inside a response body")
        buf += chunk
    return buf[:head_end + length], buf[head_end + length:]


def main():
    seed, conns, host, port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
    rng = random.Random(seed)
    sent_requests = 0
    with open(out, "wb") as f:
        for _ in range(conns):
            count = rng.randint(1, 5)
            pipelined = rng.random() < 0.4
            nodelay = rng.random() < 0.5
            requests = [make_request(rng, "%s:%d" % (host, port), i == count - 1) for i in range(count)]
            sock = socket.create_connection((host, port), timeout=20)
            if nodelay:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            received = b""
            rest = b""
            if pipelined:
                send_cut(rng, sock, b"".join(requests))
                for _ in requests:
                    response, rest = read_response(sock, rest)
                    received += response
            else:
                for r in requests:
                    send_cut(rng, sock, r)
                    response, rest = read_response(sock, rest)
                    received += response
            # The last asked to close: anything after it is received too.
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                rest += chunk
            received += rest
            sock.close()
            sent_requests += count
            f.write(b"conn %d\n" % len(received))
            f.write(received)
    print(sent_requests)


if __name__ == "__main__":
    main()
