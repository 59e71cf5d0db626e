// A minimal agent with an MCP-style tool server as its child over stdio: newline-delimited
// JSON-RPC, one write per message, the way @modelcontextprotocol/sdk's StdioClientTransport
// spawns one (stdio 'pipe', which node makes AF_UNIX stream socketpairs). For
// tests/bpf/agent_capture_test.cc.
//
//   node stdio_agent.js agent GO_FILE   waits until GO_FILE exists (so the test can mark
//                                      it as an agent first), spawns the server, sends
//                                      tools/list (id 1) then tools/call (id 2), each after
//                                      the previous answer, logs each answer to stderr as
//                                      "agent: got id=N", and exits 0
//   node stdio_agent.js server          answers each request line with a result line
//
// Bounded: the agent exits 3 after 20 s whatever happens.
'use strict';
const fs = require('fs');
const {spawn} = require('child_process');

const [mode, goFile] = process.argv.slice(2);

function server() {
  let buf = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const msg = JSON.parse(buf.slice(0, i));
      buf = buf.slice(i + 1);
      process.stdout.write(JSON.stringify({jsonrpc: '2.0', id: msg.id, result: {method: msg.method}}) + '\n');
    }
  });
  process.stdin.on('end', () => process.exit(0));
}

function agent() {
  setTimeout(() => process.exit(3), 20000).unref();
  const child = spawn(process.execPath, [__filename, 'server'], {stdio: ['pipe', 'pipe', 'inherit']});
  const requests = [
    {jsonrpc: '2.0', id: 1, method: 'tools/list'},
    {jsonrpc: '2.0', id: 2, method: 'tools/call', params: {name: 'lookup', arguments: {query: 'q'}}},
  ];
  let next = 0;
  let buf = '';
  const send = () => child.stdin.write(JSON.stringify(requests[next++]) + '\n');
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const msg = JSON.parse(buf.slice(0, i));
      buf = buf.slice(i + 1);
      process.stderr.write(`agent: got id=${msg.id}\n`);
      if (next < requests.length) send();
      else child.stdin.end();
    }
  });
  child.on('exit', (code) => process.exit(code === 0 ? 0 : 4));
  send();
}

if (mode === 'server') {
  server();
} else {
  const wait = () => (fs.existsSync(goFile) ? agent() : setTimeout(wait, 10));
  wait();
}
