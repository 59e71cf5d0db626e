// An MCP client of both revisions, over HTTP and stdio, for the MCP eras test. Not instrumented.
//
//   node mcp_eras_client.js STATELESS_PORT SESSION_PORT
//
// In order, each step finished before the next starts:
//   1. 2026-07-28 over HTTP to mcp_stateless_server.js on 127.0.0.1:STATELESS_PORT, by hand
//      (node's fetch): server/discover, tools/list, tools/call lookup. Every request carries
//      MCP-Protocol-Version, Mcp-Method (and Mcp-Name for the call) and the version in
//      params._meta; the tools/call's _meta also carries a traceparent (HTTP_PARENT below), as
//      an instrumented client would put there.
//   2. 2025-11-25 over HTTP to mcp_http_server.js on 127.0.0.1:SESSION_PORT with the real SDK
//      (Client + StreamableHTTPClientTransport): initialize (a session), tools/list,
//      tools/call weather, then the session is closed (DELETE).
//   3. 2026-07-28 over stdio: spawns `node mcp_stateless_server.js --stdio` and writes
//      server/discover and tools/call lookup (with _meta.traceparent STDIO_PARENT), one line each.
//   4. 2025-11-25 over stdio with the SDK (StdioClientTransport): spawns mcp_stdio_server.js,
//      initialize, tools/call lookup.
// Prints one JSON line with what each step got; exit 0 when every call answered as expected.
// Bounded: 5 s per call, 60 s in all.
'use strict';

const path = require('path');
const {spawn} = require('child_process');
const {Client} = require('@modelcontextprotocol/sdk/client/index.js');
const {StreamableHTTPClientTransport} = require('@modelcontextprotocol/sdk/client/streamableHttp.js');
const {StdioClientTransport} = require('@modelcontextprotocol/sdk/client/stdio.js');

const VERSION = '2026-07-28';
const CALL_TIMEOUT_MS = 5000;
const HTTP_PARENT = '00-6a2b3c4d5e6f708192a3b4c5d6e7f801-1a2b3c4d5e6f7081-01';
const STDIO_PARENT = '00-7b3c4d5e6f708192a3b4c5d6e7f80112-2b3c4d5e6f708192-01';

const [statelessPort, sessionPort] = process.argv.slice(2).map(Number);
if (!statelessPort || !sessionPort) {
  process.stderr.write('usage: mcp_eras_client.js STATELESS_PORT SESSION_PORT\n');
  process.exit(2);
}
setTimeout(() => {
  process.stderr.write('mcp_eras_client: 60 s up\n');
  process.exit(3);
}, 60000).unref();

function request(id, method, params, traceparent) {
  const meta = {'io.modelcontextprotocol/protocolVersion': VERSION};
  if (traceparent) meta.traceparent = traceparent;
  return {jsonrpc: '2.0', id, method, params: Object.assign({}, params, {_meta: meta})};
}

async function statelessHttp(out) {
  const url = `http://127.0.0.1:${statelessPort}/mcp`;
  const steps = [
    request(1, 'server/discover', {}),
    request(2, 'tools/list', {}),
    request(3, 'tools/call', {name: 'lookup', arguments: {query: 'TOOLARG-SECRET-9c1e'}}, HTTP_PARENT),
  ];
  for (const msg of steps) {
    const headers = {
      'content-type': 'application/json',
      'accept': 'application/json, text/event-stream',
      'mcp-protocol-version': VERSION,
      'mcp-method': msg.method,
    };
    if (msg.method === 'tools/call') headers['mcp-name'] = msg.params.name;
    const res = await fetch(url, {
      method: 'POST', headers, body: JSON.stringify(msg), signal: AbortSignal.timeout(CALL_TIMEOUT_MS)});
    const body = await res.json();
    if (res.status !== 200 || body.error) throw new Error(`stateless http ${msg.method}: ${res.status}`);
    out.push(`http ${msg.method}`);
  }
}

async function sessionHttp(out) {
  const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${sessionPort}/mcp`));
  const client = new Client({name: 'mcp-eras-client', version: '1.0.0'});
  await client.connect(transport, {timeout: CALL_TIMEOUT_MS});
  await client.listTools(undefined, {timeout: CALL_TIMEOUT_MS});
  const t = await client.callTool({name: 'weather', arguments: {city: 'TOOLARG-SECRET-9c1e'}}, undefined,
                                  {timeout: CALL_TIMEOUT_MS});
  if (t.isError) throw new Error('session http weather failed');
  out.push(`session http ${client.getServerVersion() ? 'ok' : '?'} ${transport.sessionId ? 'with session' : ''}`);
  await transport.terminateSession().catch(() => {});
  await client.close();
}

function statelessStdio(out) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'mcp_stateless_server.js'), '--stdio'],
                        {stdio: ['pipe', 'pipe', 'inherit']});
    const waiting = new Map();
    let buffered = '';
    const timer = setTimeout(() => reject(new Error('stateless stdio: no answer')), 2 * CALL_TIMEOUT_MS);
    child.stdout.on('data', (d) => {
      buffered += d.toString('utf8');
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
        const done = waiting.get(msg.id);
        if (done) done(msg);
      }
    });
    const call = (msg) => new Promise((res) => {
      waiting.set(msg.id, res);
      child.stdin.write(JSON.stringify(msg) + '\n');
    });
    (async () => {
      const d = await call(request(1, 'server/discover', {}));
      if (d.error) throw new Error('stateless stdio discover failed');
      const t = await call(request(2, 'tools/call', {name: 'lookup', arguments: {query: 'x'}}, STDIO_PARENT));
      if (t.error) throw new Error('stateless stdio lookup failed');
      out.push('stdio stateless');
      clearTimeout(timer);
      child.stdin.end();
      child.on('exit', () => resolve());
    })().catch(reject);
  });
}

async function sessionStdio(out) {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [path.join(__dirname, 'mcp_stdio_server.js')],
    cwd: __dirname,
    stderr: 'inherit',
  });
  const client = new Client({name: 'mcp-eras-client', version: '1.0.0'});
  await client.connect(transport, {timeout: CALL_TIMEOUT_MS});
  const t = await client.callTool({name: 'lookup', arguments: {query: 'x'}}, undefined, {timeout: CALL_TIMEOUT_MS});
  if (t.isError) throw new Error('session stdio lookup failed');
  out.push('stdio session');
  await transport.close().catch(() => {});
}

async function main() {
  const out = [];
  await statelessHttp(out);
  await sessionHttp(out);
  await statelessStdio(out);
  await sessionStdio(out);
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`mcp_eras_client: failed: ${e.message}\n`);
  process.exit(1);
});
