"""An HTTPS client on python's memory BIOs (ssl.SSLObject), pumped by hand over a
blocking socket: each request goes into the TLS object as two writes (head, then the
rest) before its ciphertext is sent with one socket write. libssl's SSL_write makes no
syscall here, and the first write is followed by another TLS call, not by its socket
write.

usage: https_memory_bio.py PORT CAFILE COUNT PATH_PREFIX
Prints one status per request. Bounded: at most 1000 requests, 10 s per socket wait.
"""
import socket
import ssl
import sys


def main():
    port, cafile, count, prefix = int(sys.argv[1]), sys.argv[2], min(int(sys.argv[3]), 1000), sys.argv[4]
    ctx = ssl.create_default_context(cafile=cafile)
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")

    def flush():
        data = outgoing.read()
        if data:
            sock.sendall(data)

    def fill():
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("server closed")
        incoming.write(data)

    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            flush()
            fill()
    flush()
    for i in range(count):
        tls.write(("GET %s/%d HTTP/1.1\r\n" % (prefix, i)).encode())
        tls.write(("Host: localhost:%d\r\n\r\n" % port).encode())
        flush()
        resp = b""
        while b"\r\n\r\n" not in resp or len(resp) < resp.index(b"\r\n\r\n") + 4 + int(
                resp.split(b"Content-Length: ")[1].split(b"\r\n")[0]):
            try:
                resp += tls.read(65536)
            except ssl.SSLWantReadError:
                fill()
        print(int(resp.split(b" ")[1]), flush=True)
    sock.close()


if __name__ == "__main__":
    main()
