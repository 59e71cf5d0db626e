# A gRPC server on Debian's python3-grpcio without generated code (raw bytes in and out),
# for tests/integration/grpc_test.cc:
#   /usr/bin/python3 grpc_server.py PORT [--tls CERT KEY] [--backend PORT]
# demo.v1.Greeter: SayHello (unary), GetUser (NOT_FOUND), Explode (INTERNAL), Count
# (server streaming), Chat (bidi), Upload (client streaming: answers how many messages
# came), and with --backend, Relay: answers each call by calling SayHello on the backend
# (h2c), so each Relay call is two RPCs. Stops after 120 s.
import sys
from concurrent import futures

import grpc

args = sys.argv[1:]
port = args.pop(0)
tls = backend = None
while args:
    flag = args.pop(0)
    if flag == "--tls":
        tls = (args.pop(0), args.pop(0))
    elif flag == "--backend":
        backend = grpc.insecure_channel("127.0.0.1:" + args.pop(0))
    else:
        sys.exit("unknown flag " + flag)

ident = lambda b: b


def say_hello(req, ctx):
    return b"hello " + req


def get_user(req, ctx):
    ctx.abort(grpc.StatusCode.NOT_FOUND, "no user " + req.decode())


def explode(req, ctx):
    ctx.abort(grpc.StatusCode.INTERNAL, "it broke")


def count(req, ctx):
    for i in range(int(req)):
        yield str(i).encode()


def chat(it, ctx):
    for m in it:
        yield b"echo " + m


def upload(it, ctx):
    return str(sum(1 for _ in it)).encode()


def relay(req, ctx):
    return backend.unary_unary("/demo.v1.Greeter/SayHello", ident, ident)(req, timeout=10)


handlers = {
    "SayHello": grpc.unary_unary_rpc_method_handler(say_hello, ident, ident),
    "GetUser": grpc.unary_unary_rpc_method_handler(get_user, ident, ident),
    "Explode": grpc.unary_unary_rpc_method_handler(explode, ident, ident),
    "Count": grpc.unary_stream_rpc_method_handler(count, ident, ident),
    "Chat": grpc.stream_stream_rpc_method_handler(chat, ident, ident),
    "Upload": grpc.stream_unary_rpc_method_handler(upload, ident, ident),
}
if backend is not None:
    handlers["Relay"] = grpc.unary_unary_rpc_method_handler(relay, ident, ident)
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("demo.v1.Greeter", handlers),))
address = "127.0.0.1:" + port
if tls:
    with open(tls[0], "rb") as c, open(tls[1], "rb") as k:
        server.add_secure_port(address, grpc.ssl_server_credentials([(k.read(), c.read())]))
else:
    server.add_insecure_port(address)
server.start()
print("listening", flush=True)
server.wait_for_termination(timeout=120)
