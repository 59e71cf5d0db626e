// An MCP tool server over the Streamable HTTP transport (the real @modelcontextprotocol/sdk),
// plain HTTP/1.1 on 127.0.0.1. Not instrumented.
//
//   node mcp_http_server.js PORT
//
// Listens on 127.0.0.1:PORT (0 picks one), prints "ready PORT" on stdout once listening.
// One endpoint, /mcp, with the SDK's defaults: stateful sessions (the initialize answer carries an
// mcp-session-id header that every later request repeats) and SSE answers to POSTed requests
// (enableJsonResponse false), so a tools/call answer is a text/event-stream body holding one
// "event: message" whose data is the JSON-RPC response, sent with content-length when the answer
// is ready at once and chunked otherwise (timing: @hono/node-server peeks at the stream).
//
// | request                                   | answer                                         |
// | ----------------------------------------- | ---------------------------------------------- |
// | POST /mcp initialize, no session          | 200 text/event-stream, new mcp-session-id      |
// | POST /mcp notification (with session)     | 202, empty body                                |
// | POST /mcp request (with session)          | 200 text/event-stream, one event, then the end |
// | GET /mcp (with session)                   | 200 text/event-stream kept open (server pushes)|
// | DELETE /mcp (with session)                | 200, session closed                            |
// | unknown session / no session, not init    | 404 / 400 JSON-RPC error                       |
// | anything else                             | 404 JSON                                       |
//
// Tool: weather {city} -> text "weather: sunny, 21 C" (never echoes the city).
// Logs one line per request to stderr ("mcp_http: POST /mcp session=1a2b3c4d method=tools/call
// tool=weather"), never arguments. Bounded: bodies over 1 MiB get 413, at most 32 sessions,
// exits after 10 minutes or on SIGTERM/SIGINT.
'use strict';

const http = require('http');
const {randomUUID} = require('crypto');
const {z} = require('zod');
const {McpServer} = require('@modelcontextprotocol/sdk/server/mcp.js');
const {StreamableHTTPServerTransport} = require('@modelcontextprotocol/sdk/server/streamableHttp.js');
const {isInitializeRequest} = require('@modelcontextprotocol/sdk/types.js');

const MAX_BODY = 1 << 20;
const MAX_SESSIONS = 32;
const LIFETIME_MS = 10 * 60 * 1000;
const WEATHER_TEXT = 'weather: sunny, 21 C';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port < 0 || process.argv[2] === undefined) {
  process.stderr.write('usage: mcp_http_server.js PORT\n');
  process.exit(2);
}

const log = (line) => process.stderr.write(`mcp_http: ${line}\n`);

// One McpServer per session: a server object serves one transport.
function newMcpServer() {
  const mcp = new McpServer({name: 'kspan-http-tools', version: '1.0.0'});
  mcp.registerTool('weather', {
    description: 'Current weather for a city; answers a fixed text.',
    inputSchema: {city: z.string()},
  }, async () => ({content: [{type: 'text', text: WEATHER_TEXT}]}));
  return mcp;
}

const sessions = new Map(); // mcp-session-id -> StreamableHTTPServerTransport

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {'content-type': 'application/json', 'content-length': Buffer.byteLength(text)});
  res.end(text);
}

// What the log may say about a JSON-RPC body: methods and tool names, never arguments.
function describe(body) {
  const msgs = Array.isArray(body) ? body : [body];
  return msgs.map((m) => {
    if (!m || typeof m !== 'object') return 'unparsed';
    const tool = m.method === 'tools/call' && m.params ? ` tool=${m.params.name}` : '';
    return m.method ? `method=${m.method}${tool}` : 'response';
  }).join(',');
}

async function handle(req, res, raw) {
  const path = req.url.split('?')[0];
  const sid = req.headers['mcp-session-id'];
  let body;
  if (req.method === 'POST') {
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch (e) {
      body = null;
    }
  }
  log(`${req.method} ${path} session=${sid ? String(sid).slice(0, 8) : '-'}` +
      (req.method === 'POST' ? ` ${describe(body)}` : ''));
  if (path !== '/mcp') {
    sendJson(res, 404, {error: `no route for ${req.method} ${path}`});
    return;
  }
  let transport = sid ? sessions.get(String(sid)) : undefined;
  if (!transport && !sid && req.method === 'POST' && isInitializeRequest(body)) {
    if (sessions.size >= MAX_SESSIONS) {
      sendJson(res, 503, {jsonrpc: '2.0', id: null, error: {code: -32000, message: 'too many sessions'}});
      return;
    }
    transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => sessions.set(id, transport),
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    await newMcpServer().connect(transport);
  }
  if (!transport) {
    // The answers the SDK's own examples give (spec: an unknown session is 404).
    if (sid) sendJson(res, 404, {jsonrpc: '2.0', id: null, error: {code: -32001, message: 'Session not found'}});
    else sendJson(res, 400, {jsonrpc: '2.0', id: null, error: {code: -32000, message: 'Bad Request: No valid session ID provided'}});
    return;
  }
  await transport.handleRequest(req, res, body === undefined ? undefined : body);
}

const server = http.createServer((req, res) => {
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size <= MAX_BODY) chunks.push(c);
  });
  req.on('end', () => {
    if (size > MAX_BODY) {
      sendJson(res, 413, {error: 'body too large'});
      return;
    }
    handle(req, res, Buffer.concat(chunks)).catch((e) => {
      log(`handler failed: ${e.message}`);
      if (!res.headersSent) sendJson(res, 500, {error: 'internal error'});
      else res.destroy();
    });
  });
});

function shutdown(why) {
  log(`exiting: ${why}`);
  for (const t of sessions.values()) t.close().catch(() => {});
  process.exit(0);
}

server.listen(port, '127.0.0.1', () => console.log(`ready ${server.address().port}`));
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
setTimeout(() => shutdown('10 minutes up'), LIFETIME_MS).unref();
