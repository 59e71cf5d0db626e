// The orchestrator agent: an HTTP server that takes a task and works it through an LLM, two MCP
// tool servers and a second agent, with the real `openai` and `@modelcontextprotocol/sdk`
// packages. Not instrumented: kspan has to see all of it from the kernel.
//
//   NODE_EXTRA_CA_CERTS=CAFILE node orchestrator.js PORT LLM_PORT CAFILE SUB_AGENT_PORT MCP_HTTP_PORT
//
// Start-up, once: spawn mcp_stdio_server.js as a child over stdio and connect an MCP client to
// it; connect a second MCP client to mcp_http_server.js at http://127.0.0.1:MCP_HTTP_PORT/mcp;
// tools/list on both; GET the sub-agent's card. Then it listens on 127.0.0.1:PORT (0 picks one)
// and prints "ready PORT" on stdout.
//
// POST /task {"task": "...", "fail": false | true | "soft"} works one task, strictly in order:
//   1. chat, not streaming, model gpt-4o           (the mock answers usage 17 / 9)
//   2. chat, streaming with include_usage, gpt-4o  (the mock answers usage 21 / 5)
//   3. MCP stdio tools/call lookup; fail: true calls fail_tool (JSON-RPC error), "soft" calls
//      soft_fail (isError result); a failure is logged to stderr and recorded, and the task goes on
//   4. MCP HTTP tools/call weather
//   5. A2A message/send to the sub-agent (which makes one gpt-4o-mini chat, 17 / 9)
// and answers 200 with a JSON summary (models, token counts, tool outcomes, the sub-agent's task
// state), never the prompts or tool arguments. A step that fails other than the tool in 3 makes
// the answer 502 {"error": "..."}. Tasks run one at a time, queued (at most 8 waiting, else 503).
//
// Prompts carry PROMPT-SECRET-kspan-7f3a and tool arguments TOOLARG-SECRET-9c1e, the API key is
// sk-kspan-test-SECRET-0123456789: tests check that none of them reaches kspan's output.
// A2A_VERSION=1.0 in the environment sends A2A 1.0's "SendMessage" (header A2A-Version: 1.0)
// instead of 0.3's "message/send".
//
// Logs one line per request to stderr ("orchestrator: POST /task fail=false -> 200 in 180 ms")
// and "orchestrator: tool fail_tool failed: <message>" when a tool fails; never prompt text.
// Bounded: bodies over 64 KiB get 413, 10 s per LLM, tool or A2A call, no retries; exits after 10
// minutes or on SIGTERM/SIGINT, closing the stdio child (stdin closed, then SIGTERM, SIGKILL).
'use strict';

const http = require('http');
const path = require('path');
const {randomUUID} = require('crypto');
const OpenAI = require('openai');
const {Client} = require('@modelcontextprotocol/sdk/client/index.js');
const {StdioClientTransport} = require('@modelcontextprotocol/sdk/client/stdio.js');
const {StreamableHTTPClientTransport} = require('@modelcontextprotocol/sdk/client/streamableHttp.js');

const MAX_BODY = 64 << 10;
const MAX_QUEUED = 8;
const CALL_TIMEOUT_MS = 10000;
const LIFETIME_MS = 10 * 60 * 1000;
const API_KEY = 'sk-kspan-test-SECRET-0123456789';
const PROMPT_SECRET = 'PROMPT-SECRET-kspan-7f3a';
const TOOLARG_SECRET = 'TOOLARG-SECRET-9c1e';
const MODEL = 'gpt-4o';

const args = process.argv.slice(2);
const [port, llmPort, , subAgentPort, mcpHttpPort] = args.map(Number);
const cafile = args[2];
if (args.length !== 5 || !Number.isInteger(port) || port < 0 ||
    ![llmPort, subAgentPort, mcpHttpPort].every((p) => Number.isInteger(p) && p > 0)) {
  process.stderr.write('usage: orchestrator.js PORT LLM_PORT CAFILE SUB_AGENT_PORT MCP_HTTP_PORT\n');
  process.exit(2);
}
if (!process.env.NODE_EXTRA_CA_CERTS || path.resolve(process.env.NODE_EXTRA_CA_CERTS) !== path.resolve(cafile)) {
  process.stderr.write(`orchestrator: NODE_EXTRA_CA_CERTS is "${process.env.NODE_EXTRA_CA_CERTS || ''}", ` +
                       `expected ${path.resolve(cafile)} (the LLM mock's certificate)\n`);
  process.exit(2);
}
const a2aV1 = process.env.A2A_VERSION === '1.0';

const log = (line) => process.stderr.write(`orchestrator: ${line}\n`);

const llm = new OpenAI({apiKey: API_KEY, baseURL: `https://localhost:${llmPort}/v1`, maxRetries: 0,
                        timeout: CALL_TIMEOUT_MS});

const stdioTransport = new StdioClientTransport({
  command: process.execPath,
  args: [path.join(__dirname, 'mcp_stdio_server.js')],
  cwd: __dirname,
  stderr: 'inherit', // the child's log lines land on our stderr
});
const stdioTools = new Client({name: 'orchestrator', version: '1.0.0'});
const httpTools = new Client({name: 'orchestrator', version: '1.0.0'});
let subAgentUrl = null;

async function chat(task) {
  const r = await llm.chat.completions.create({
    model: MODEL,
    messages: [
      {role: 'system', content: 'You are the orchestrator. Plan the task.'},
      {role: 'user', content: `Plan this task: ${task} ${PROMPT_SECRET}`},
    ],
    temperature: 0.2,
    max_tokens: 64,
  });
  return {model: r.model, stream: false, input_tokens: r.usage.prompt_tokens, output_tokens: r.usage.completion_tokens};
}

async function chatStream(task) {
  const s = await llm.chat.completions.create({
    model: MODEL,
    messages: [
      {role: 'system', content: 'You are the orchestrator. Summarise.'},
      {role: 'user', content: `Summarise the plan for: ${task} ${PROMPT_SECRET}`},
    ],
    max_tokens: 64,
    stream: true,
    stream_options: {include_usage: true},
  });
  let model = null, usage = null;
  for await (const chunk of s) {
    model = chunk.model;
    if (chunk.usage) usage = chunk.usage;
  }
  return {model, stream: true, input_tokens: usage && usage.prompt_tokens, output_tokens: usage && usage.completion_tokens};
}

// A tool's outcome: ok, a tool-level error (isError result) or a JSON-RPC error (thrown McpError).
async function callTool(client, server, name, toolArgs) {
  try {
    const r = await client.callTool({name, arguments: toolArgs}, undefined, {timeout: CALL_TIMEOUT_MS});
    const text = (r.content || []).filter((c) => c.type === 'text').map((c) => c.text).join(' ');
    if (r.isError) {
      log(`tool ${name} failed: ${text}`);
      return {server, name, ok: false, is_error: true, error: text};
    }
    return {server, name, ok: true, text};
  } catch (e) {
    log(`tool ${name} failed: ${e.message}`);
    return {server, name, ok: false, rpc_error_code: e.code, error: e.message};
  }
}

async function delegate(task) {
  const message = {role: a2aV1 ? 'ROLE_USER' : 'user', messageId: randomUUID(),
                   parts: [a2aV1 ? {text: `Answer for: ${task} ${PROMPT_SECRET}`}
                                 : {kind: 'text', text: `Answer for: ${task} ${PROMPT_SECRET}`}]};
  if (!a2aV1) message.kind = 'message';
  const res = await fetch(subAgentUrl, {
    method: 'POST',
    headers: {'content-type': 'application/json', 'accept': 'application/json',
              ...(a2aV1 ? {'a2a-version': '1.0'} : {})},
    body: JSON.stringify({jsonrpc: '2.0', id: randomUUID(), method: a2aV1 ? 'SendMessage' : 'message/send',
                          params: {message}}),
    signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
  });
  const body = await res.json();
  if (res.status !== 200 || body.error) {
    throw new Error(`sub-agent answered ${res.status} ${body.error ? body.error.message : ''}`);
  }
  const t = a2aV1 ? body.result.task : body.result;
  return {method: a2aV1 ? 'SendMessage' : 'message/send', task_id: t.id, state: t.status.state};
}

async function work(task, fail) {
  const summary = {id: randomUUID(), llm: [], tools: [], sub_agent: null};
  summary.llm.push(await chat(task));
  summary.llm.push(await chatStream(task));
  const stdioTool = fail === 'soft' ? 'soft_fail' : fail ? 'fail_tool' : 'lookup';
  summary.tools.push(await callTool(stdioTools, 'stdio', stdioTool, {query: `${TOOLARG_SECRET} what is kspan`}));
  summary.tools.push(await callTool(httpTools, 'http', 'weather', {city: `${TOOLARG_SECRET} Paris`}));
  summary.sub_agent = await delegate(task);
  return summary;
}

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {'content-type': 'application/json', 'content-length': Buffer.byteLength(text)});
  res.end(text);
}

let queue = Promise.resolve();
let queued = 0;

function onTask(req, res, raw) {
  let body;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch (e) {
    body = null;
  }
  if (!body || typeof body.task !== 'string') {
    log('POST /task -> 400');
    sendJson(res, 400, {error: 'expected {"task": "...", "fail": false}'});
    return;
  }
  if (queued >= MAX_QUEUED) {
    log('POST /task -> 503 (queue full)');
    sendJson(res, 503, {error: 'busy'});
    return;
  }
  const fail = body.fail === 'soft' ? 'soft' : Boolean(body.fail);
  queued++;
  queue = queue.then(async () => {
    const start = Date.now();
    let status = 200, answer;
    try {
      answer = await work(body.task, fail);
    } catch (e) {
      status = 502;
      answer = {error: e.message};
    }
    queued--;
    log(`POST /task fail=${fail} -> ${status} in ${Date.now() - start} ms`);
    sendJson(res, status, answer);
  });
}

const server = http.createServer((req, res) => {
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size <= MAX_BODY) chunks.push(c);
  });
  req.on('end', () => {
    const reqPath = req.url.split('?')[0];
    if (size > MAX_BODY) {
      log(`${req.method} ${reqPath} -> 413`);
      sendJson(res, 413, {error: 'body too large'});
    } else if (req.method === 'POST' && reqPath === '/task') {
      onTask(req, res, Buffer.concat(chunks));
    } else {
      log(`${req.method} ${reqPath} -> 404`);
      sendJson(res, 404, {error: `no route for ${req.method} ${reqPath}`});
    }
  });
});

async function start() {
  await stdioTools.connect(stdioTransport, {timeout: CALL_TIMEOUT_MS});
  log(`mcp stdio server pid ${stdioTransport.pid}`);
  await httpTools.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${mcpHttpPort}/mcp`)),
                          {timeout: CALL_TIMEOUT_MS});
  const [a, b] = await Promise.all([stdioTools.listTools(), httpTools.listTools()]);
  log(`tools: stdio ${a.tools.map((t) => t.name).join(',')}; http ${b.tools.map((t) => t.name).join(',')}`);
  const card = await (await fetch(`http://127.0.0.1:${subAgentPort}/.well-known/agent-card.json`,
                                  {signal: AbortSignal.timeout(CALL_TIMEOUT_MS)})).json();
  subAgentUrl = card.url;
  log(`sub-agent "${card.name}" at ${subAgentUrl}, A2A ${a2aV1 ? '1.0 SendMessage' : '0.3 message/send'}`);
  server.listen(port, '127.0.0.1', () => console.log(`ready ${server.address().port}`));
}

let stopping = false;
async function shutdown(why, code = 0) {
  if (stopping) return;
  stopping = true;
  log(`exiting: ${why}`);
  setTimeout(() => process.exit(code), 5000).unref(); // the transports' close is bounded too
  await stdioTransport.close().catch(() => {});
  process.exit(code);
}

start().catch((e) => {
  log(`start-up failed: ${e.message}`);
  shutdown('start-up failed', 1);
});
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
setTimeout(() => shutdown('10 minutes up'), LIFETIME_MS).unref();
