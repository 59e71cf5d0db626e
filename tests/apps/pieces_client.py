"""Sends one HTTP/1.1 request in pieces, as a slow or odd client does, and reads the answer.

usage: pieces_client.py PORT PATH MODE
  MODE split2:   "GE", a 50 ms pause, then the rest of the request
  MODE bytewise: the request head one byte per send(), 2 ms apart
Exits 0 when a status line came back. Loopback only.
"""
import socket
import sys
import time

port, path, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if mode == "split2":
        s.sendall(request[:2])
        time.sleep(0.05)
        s.sendall(request[2:])
    elif mode == "bytewise":
        for i in range(len(request)):
            s.sendall(request[i : i + 1])
            time.sleep(0.002)
    else:
        sys.exit(f"unknown mode {mode}")
    answer = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        answer += chunk
sys.exit(0 if answer.startswith(b"HTTP/1.") else 1)
