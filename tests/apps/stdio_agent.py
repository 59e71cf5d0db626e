"""A minimal agent with an MCP-style tool server as its child over stdio, the way Python
MCP clients spawn one: subprocess with stdin and stdout PIPE (real pipe(2)s), newline-
delimited JSON-RPC, one write per message. For tests/bpf/agent_capture_test.cc.

  python3 stdio_agent.py agent GO_FILE   waits until GO_FILE exists (so the test can mark
                                        it as an agent first), spawns the server, sends
                                        tools/list (id 1) then tools/call (id 2), each
                                        after the previous answer, logs each answer to
                                        stderr as "agent: got id=N", and exits 0
  python3 stdio_agent.py server          answers each request line with a result line

Bounded: the agent gives up after 20 s.
"""
import json
import os
import subprocess
import sys
import time

COMPACT = (",", ":")  # as MCP SDKs write JSON-RPC


def server():
    for line in sys.stdin.buffer:
        msg = json.loads(line)
        answer = {"jsonrpc": "2.0", "id": msg["id"], "result": {"method": msg["method"]}}
        os.write(1, (json.dumps(answer, separators=COMPACT) + "\n").encode())


def agent(go_file):
    deadline = time.monotonic() + 20
    while not os.path.exists(go_file):
        if time.monotonic() > deadline:
            sys.exit(3)
        time.sleep(0.01)
    child = subprocess.Popen([sys.executable, __file__, "server"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE)
    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
         "params": {"name": "lookup", "arguments": {"query": "q"}}},
    ]
    for req in requests:
        os.write(child.stdin.fileno(), (json.dumps(req, separators=COMPACT) + "\n").encode())
        answer = json.loads(child.stdout.readline())
        os.write(2, f"agent: got id={answer['id']}\n".encode())
    child.stdin.close()
    sys.exit(0 if child.wait(timeout=max(1, deadline - time.monotonic())) == 0 else 4)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server()
    else:
        agent(sys.argv[2])
