"""Sends raw bytes to 127.0.0.1:PORT on one connection and reads until the server closes.

usage: raw_client.py PORT HEX   (the bytes to send, hex-encoded)
Prints the first line the server answered on stdout. Loopback only; 10 s timeout.
"""
import socket
import sys

port, payload = int(sys.argv[1]), bytes.fromhex(sys.argv[2])
with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
    s.sendall(payload)
    answer = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
    except socket.timeout:
        pass
print(answer.split(b"\r\n", 1)[0].decode(errors="replace"))
