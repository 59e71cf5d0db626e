// An MCP tool server over stdio (the real @modelcontextprotocol/sdk), spawned by orchestrator.js
// through StdioClientTransport. Not instrumented.
//
//   node mcp_stdio_server.js          (stdin/stdout carry MCP; stderr gets the log)
//
// Wire: newline-delimited JSON-RPC 2.0, one JSON object and one write(2) per message, no
// Content-Length framing (the SDK's shared/stdio.js: JSON.stringify(message) + "\n").
// Spawned by node, stdin and stdout are AF_UNIX stream socketpairs, not pipe(2)s.
//
// | tool      | arguments | answer                                                           |
// | --------- | --------- | ---------------------------------------------------------------- |
// | lookup    | {query}   | result, text "lookup: kspan traces processes from the kernel"    |
// |           |           | (never echoes the query)                                         |
// | soft_fail | {query}   | result with isError: true, text "soft_fail: upstream said no"    |
// | fail_tool | {query}   | JSON-RPC error, no result: code -32603, message                  |
// |           |           | "MCP error -32603: fail_tool: backend unavailable" (McpError     |
// |           |           | prefixes its message; the client prefixes it once more)          |
// | summarize | {query}   | asks the LLM mock itself (one gpt-4o-mini chat over HTTPS, 17/9) |
// |           |           | and answers "summarize: <model>"; only when KSPAN_LLM_PORT is set |
// |           |           | (and NODE_EXTRA_CA_CERTS names the mock's certificate)           |
// | other     |           | JSON-RPC error -32602 "MCP error -32602: unknown tool NAME"      |
//
// Why the low-level Server and not McpServer: McpServer's tools/call handler catches every
// error a tool throws, McpError included (only -32042 passes), and turns it into an isError
// result. A JSON-RPC error response needs a handler of our own, which the low-level class allows.
//
// Logs one line per request to stderr ("mcp_stdio: tools/call name=lookup"), never arguments.
// Bounded: exits after 10 minutes, when stdin closes, or on SIGTERM/SIGINT.
'use strict';

const {Server} = require('@modelcontextprotocol/sdk/server/index.js');
const {StdioServerTransport} = require('@modelcontextprotocol/sdk/server/stdio.js');
const {CallToolRequestSchema, ListToolsRequestSchema, ErrorCode, McpError} =
    require('@modelcontextprotocol/sdk/types.js');

const LIFETIME_MS = 10 * 60 * 1000;
const LOOKUP_ANSWER = 'lookup: kspan traces processes from the kernel';
const SOFT_FAIL_TEXT = 'soft_fail: upstream said no';
const FAIL_MESSAGE = 'fail_tool: backend unavailable';

const queryArg = {
  type: 'object',
  properties: {query: {type: 'string', description: 'what to look up'}},
  required: ['query'],
};
const llmPort = Number(process.env.KSPAN_LLM_PORT || 0);
const TOOLS = [
  {name: 'lookup', description: 'Looks a fact up; answers a fixed text.', inputSchema: queryArg},
  {name: 'soft_fail', description: 'Always answers a tool-level error (isError: true).', inputSchema: queryArg},
  {name: 'fail_tool', description: 'Always answers a JSON-RPC error (-32603).', inputSchema: queryArg},
];
if (llmPort > 0) {
  TOOLS.push(
      {name: 'summarize', description: 'Asks an LLM; answers which model replied.', inputSchema: queryArg});
}

// The tool server's own call, made while it serves tools/call summarize. The prompt never
// carries the tool's arguments.
async function summarize() {
  const res = await fetch(`https://localhost:${llmPort}/v1/chat/completions`, {
    method: 'POST',
    headers: {'content-type': 'application/json', 'authorization': 'Bearer sk-kspan-test-SECRET-0123456789'},
    body: JSON.stringify({
      model: 'gpt-4o-mini',
      messages: [{role: 'user', content: 'Summarize. PROMPT-SECRET-kspan-7f3a'}],
      max_tokens: 32
    }),
    signal: AbortSignal.timeout(10000),
  });
  const body = await res.json();
  if (res.status !== 200)
    throw new McpError(ErrorCode.InternalError, `summarize: the LLM answered ${res.status}`);
  return {content: [{type: 'text', text: `summarize: ${body.model}`}]};
}

const log = (line) => process.stderr.write(`mcp_stdio: ${line}\n`);

const server = new Server({name: 'kspan-stdio-tools', version: '1.0.0'}, {capabilities: {tools: {}}});

server.setRequestHandler(ListToolsRequestSchema, async () => {
  log('tools/list');
  return {tools: TOOLS};
});

server.setRequestHandler(CallToolRequestSchema, async (request) => {
  const name = request.params.name;
  log(`tools/call name=${name}`);
  switch (name) {
    case 'lookup':
      return {content: [{type: 'text', text: LOOKUP_ANSWER}]};
    case 'soft_fail':
      return {content: [{type: 'text', text: SOFT_FAIL_TEXT}], isError: true};
    case 'fail_tool':
      throw new McpError(ErrorCode.InternalError, FAIL_MESSAGE);
    case 'summarize':
      if (llmPort > 0) return summarize();
      throw new McpError(ErrorCode.InvalidParams, `unknown tool ${name}`);
    default:
      throw new McpError(ErrorCode.InvalidParams, `unknown tool ${name}`);
  }
});

function shutdown(why) {
  log(`exiting: ${why}`);
  process.exit(0);
}

server.connect(new StdioServerTransport()).then(() => log('ready'), (e) => {
  log(`connect failed: ${e.message}`);
  process.exit(1);
});
process.stdin.on('end', () => shutdown('stdin closed'));
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
setTimeout(() => shutdown('10 minutes up'), LIFETIME_MS).unref();
