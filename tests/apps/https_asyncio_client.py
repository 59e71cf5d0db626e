"""An HTTPS client on asyncio streams: COUNT GETs on one keep-alive connection. asyncio
runs TLS over memory BIOs (ssl.SSLObject): libssl's SSL_write makes no syscall, and the
event loop writes the ciphertext to the socket afterwards, as node does.

usage: https_asyncio_client.py PORT CAFILE COUNT PATH_PREFIX
Prints one status per request. Bounded: at most 1000 requests, 10 s per request.
"""
import asyncio
import ssl
import sys


async def main():
    port, cafile, count, prefix = int(sys.argv[1]), sys.argv[2], min(int(sys.argv[3]), 1000), sys.argv[4]
    ctx = ssl.create_default_context(cafile=cafile)
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost"), 10)
    for i in range(count):
        writer.write(("GET %s/%d HTTP/1.1\r\nHost: localhost:%d\r\n\r\n" % (prefix, i, port)).encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await asyncio.wait_for(reader.readexactly(length), 10)
        print(int(head.split(b" ")[1]), flush=True)
    writer.close()
    await writer.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
