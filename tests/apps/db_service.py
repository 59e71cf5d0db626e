"""A web service that calls three data stores per request, for the database stitching test.

Usage: db_service.py PORT PG_PORT REDIS_PORT MEMCACHED_PORT

Serves HTTP/1.1 on 127.0.0.1:PORT, one thread per connection (ThreadingHTTPServer), and
prints "ready" once listening. Each GET runs, on its handler thread, one PostgreSQL query
(psycopg2, database "postgres" as user "postgres", trust authentication), one Redis GET
(redis-py) and one Memcached get (pymemcache), then answers 200 "ok PATH". The store
connections are pooled and shared by all handler threads (10 of each, fewer than the
concurrent clients): a connection serves many requests on many threads over time, as in
a real service.
"""
import http.server
import queue
import sys

import psycopg2
import redis
from pymemcache.client.base import PooledClient

PORT, PG_PORT, REDIS_PORT, MC_PORT = (int(a) for a in sys.argv[1:5])
POOL = 10

pg_pool = queue.Queue()
for _ in range(POOL):
    c = psycopg2.connect(host="127.0.0.1", port=PG_PORT, user="postgres", dbname="postgres")
    c.autocommit = True
    pg_pool.put(c)
rd = redis.Redis(host="127.0.0.1", port=REDIS_PORT,
                 connection_pool=redis.BlockingConnectionPool(host="127.0.0.1", port=REDIS_PORT,
                                                              max_connections=POOL, timeout=10))
mc = PooledClient(("127.0.0.1", MC_PORT), max_pool_size=POOL, connect_timeout=5, timeout=5)
rd.set("greeting", "hello")
mc.set("greeting", "hello")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        conn = pg_pool.get(timeout=10)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM pg_class WHERE relname = %s", (self.path,))
                cur.fetchall()
        finally:
            pg_pool.put(conn)
        rd.get("greeting")
        mc.get("greeting")
        body = ("ok " + self.path + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
server.daemon_threads = True
print("ready", flush=True)
server.serve_forever()
