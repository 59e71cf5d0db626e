// An MCP tool server speaking the stateless revision 2026-07-28, written to the specification
// with plain node `http` (the npm SDK, 1.32.2, speaks only 2025-11-25 and answers a 2026-07-28
// request with 400). Not instrumented.
//
//   node mcp_stateless_server.js PORT     Streamable HTTP on 127.0.0.1:PORT, POST /mcp
//   node mcp_stateless_server.js --stdio  newline-delimited JSON-RPC on stdin/stdout
//
// The revision, as this server applies it:
// - no initialize handshake and no session: every request stands alone, no Mcp-Session-Id;
// - each request names its revision in params._meta["io.modelcontextprotocol/protocolVersion"];
//   over HTTP also in the MCP-Protocol-Version header, and its method and target in the
//   Mcp-Method and Mcp-Name headers (tools/call: the tool's name), which must match the body
//   (400 with JSON-RPC error -32020 otherwise, or when the version is missing or not 2026-07-28);
// - server/discover answers what the server offers (supportedVersions, capabilities, serverInfo);
// - results carry "resultType": "complete";
// - HTTP answers are application/json (no event stream).
//
// | method          | answer                                                                  |
// | --------------- | ----------------------------------------------------------------------- |
// | server/discover | supportedVersions ["2026-07-28"], tools capability, serverInfo          |
// | tools/list      | the tools below                                                          |
// | tools/call      | lookup {query}: text "lookup: stateless answer" (never echoes the query) |
// |                 | write_note {path}: writes "note\n" to path (under /tmp), text "wrote"     |
// |                 | other: JSON-RPC error -32602 "unknown tool NAME"                         |
// | notification    | HTTP 202, nothing on stdio                                               |
// | other           | JSON-RPC error -32601                                                    |
//
// Logs one line per request to stderr ("mcp_stateless: tools/call name=lookup"), never
// arguments. Bounded: bodies and lines over 1 MiB are refused, exits after 10 minutes, when
// stdin closes (stdio), or on SIGTERM/SIGINT. HTTP prints "ready PORT" once listening.
'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');
const readline = require('readline');

const VERSION = '2026-07-28';
const MAX_BODY = 1 << 20;
const LIFETIME_MS = 10 * 60 * 1000;
const TOOLS = [
  {
    name: 'lookup',
    description: 'Looks a fact up; answers a fixed text.',
    inputSchema: {type: 'object', properties: {query: {type: 'string'}}, required: ['query']},
  },
  {
    name: 'write_note',
    description: 'Writes a short note to a file under /tmp.',
    inputSchema: {type: 'object', properties: {path: {type: 'string'}}, required: ['path']},
  },
];

setTimeout(() => process.exit(0), LIFETIME_MS).unref();
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));

function log(line) {
  process.stderr.write(`mcp_stateless: ${line}\n`);
}

function error(id, code, message) {
  return {jsonrpc: '2.0', id: id === undefined ? null : id, error: {code, message}};
}

function result(id, value) {
  return {jsonrpc: '2.0', id, result: Object.assign({resultType: 'complete'}, value)};
}

function callTool(id, params) {
  const name = params && params.name;
  const args = (params && params.arguments) || {};
  if (name === 'lookup') return result(id, {content: [{type: 'text', text: 'lookup: stateless answer'}]});
  if (name === 'write_note') {
    const file = path.resolve(String(args.path || ''));
    if (!file.startsWith('/tmp/')) return result(id, {content: [{type: 'text', text: 'refused'}], isError: true});
    fs.writeFileSync(file, 'note\n');
    return result(id, {content: [{type: 'text', text: 'wrote'}]});
  }
  return error(id, -32602, `unknown tool ${String(name).slice(0, 64)}`);
}

// The answer to one request (null for a notification), and the HTTP status to send it with.
function handle(msg, headers) {
  if (!msg || msg.jsonrpc !== '2.0' || typeof msg.method !== 'string') {
    return {status: 400, body: error(null, -32600, 'invalid request')};
  }
  const params = msg.params || {};
  const meta = params._meta || {};
  log(`${msg.method}${params.name ? ` name=${params.name}` : ''}`);
  if (msg.id === undefined) return {status: 202, body: null};
  const version = meta['io.modelcontextprotocol/protocolVersion'];
  if (version !== VERSION) {
    return {status: 400, body: error(msg.id, -32020, `unsupported protocol version ${String(version)}`)};
  }
  if (headers) {
    const wantName = msg.method === 'tools/call' || msg.method === 'prompts/get' ? params.name : undefined;
    if (headers['mcp-protocol-version'] !== VERSION || headers['mcp-method'] !== msg.method ||
        (wantName !== undefined && headers['mcp-name'] !== wantName)) {
      return {status: 400, body: error(msg.id, -32020, 'headers do not match the body')};
    }
  }
  switch (msg.method) {
    case 'server/discover':
      return {
        status: 200,
        body: result(msg.id, {
          supportedVersions: [VERSION],
          capabilities: {tools: {listChanged: false}},
          serverInfo: {name: 'kspan-stateless-test', version: '1.0.0'},
        }),
      };
    case 'tools/list': return {status: 200, body: result(msg.id, {tools: TOOLS})};
    case 'tools/call': return {status: 200, body: callTool(msg.id, params)};
    default: return {status: 200, body: error(msg.id, -32601, `method not found: ${msg.method.slice(0, 64)}`)};
  }
}

function serveHttp(port) {
  const server = http.createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/mcp') {
      res.writeHead(404, {'content-type': 'application/json'});
      res.end('{"error":"not found"}');
      return;
    }
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        res.writeHead(413);
        res.end();
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      let msg = null;
      try {
        msg = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch (e) {
        msg = null;
      }
      const {status, body} = handle(msg, req.headers);
      if (body === null) {
        res.writeHead(status);
        res.end();
        return;
      }
      const text = JSON.stringify(body);
      res.writeHead(status, {'content-type': 'application/json', 'content-length': Buffer.byteLength(text)});
      res.end(text);
    });
  });
  server.listen(port, '127.0.0.1', () => process.stdout.write(`ready ${server.address().port}\n`));
}

function serveStdio() {
  const lines = readline.createInterface({input: process.stdin, crlfDelay: Infinity});
  lines.on('line', (line) => {
    if (line.length > MAX_BODY) return;
    let msg = null;
    try {
      msg = JSON.parse(line);
    } catch (e) {
      msg = null;
    }
    const {body} = handle(msg, null);
    if (body !== null) process.stdout.write(JSON.stringify(body) + '\n');
  });
  lines.on('close', () => process.exit(0));
}

if (process.argv[2] === '--stdio') {
  serveStdio();
} else {
  const port = Number(process.argv[2]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write('usage: mcp_stateless_server.js PORT | --stdio\n');
    process.exit(2);
  }
  serveHttp(port);
}
