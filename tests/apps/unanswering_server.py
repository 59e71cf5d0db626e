"""A loopback HTTP/1.1 server that does not answer, for the reliability tests.

usage: unanswering_server.py PORT

Prints "listening" once bound. For each connection it reads one request head, then:
  /close  closes the connection without a byte of answer (the server failed);
  /hang   keeps the connection open without answering until it is killed.
Anything else gets 200 "ok".
"""
import socket
import sys
import threading


def serve(conn):
    with conn:
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            chunk = conn.recv(4096)
            if not chunk:
                return
            head += chunk
        target = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b""
        if target.startswith(b"/close"):
            return
        if target.startswith(b"/hang"):
            threading.Event().wait()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")


def main():
    port = int(sys.argv[1])
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(16)
    print("listening", flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
