// A second agent that speaks A2A (Agent2Agent) over JSON-RPC 2.0 on plain HTTP/1.1, and asks the
// LLM mock itself through the real `openai` SDK. No A2A package: node's http and JSON. Not
// instrumented.
//
//   NODE_EXTRA_CA_CERTS=CAFILE node sub_agent.js PORT LLM_PORT CAFILE
//
// Listens on 127.0.0.1:PORT (0 picks one), prints "ready PORT" on stdout once listening.
// NODE_EXTRA_CA_CERTS must name CAFILE (node reads it once at start-up, and the SDK's fetch
// trusts nothing else); without it the agent exits 2 at once rather than failing every call.
//
// | request                                   | answer                                          |
// | ----------------------------------------- | ----------------------------------------------- |
// | GET /.well-known/agent-card.json          | the agent card, name "sub-agent" (0.3 fields,   |
// |                                           | plus 1.0's supportedInterfaces)                 |
// | POST / "message/send" (A2A 0.3)           | result: Task, kind "task", state "completed",   |
// |                                           | one artifact with the LLM's text                |
// | POST / "SendMessage" (A2A 1.0)            | result: {task: Task}, "TASK_STATE_COMPLETED"    |
// | POST / other method                       | JSON-RPC error -32601                           |
// | POST / not JSON / no text part            | JSON-RPC error -32700 / -32602                  |
// | the LLM call fails                        | JSON-RPC error -32603 "llm call failed"         |
// | anything else                             | 404 JSON                                        |
//
// Each message/send makes exactly one non-streaming chat completion (model gpt-4o-mini; the mock
// answers usage 17 / 9). Logs one line per request to stderr ("sub_agent: POST /
// method=message/send"), never the message text. Bounded: bodies over 1 MiB get 413, 10 s per
// LLM call, no retries; exits after 10 minutes or on SIGTERM/SIGINT.
'use strict';

const http = require('http');
const path = require('path');
const {randomUUID} = require('crypto');
const OpenAI = require('openai');

const MAX_BODY = 1 << 20;
const LIFETIME_MS = 10 * 60 * 1000;
const API_KEY = 'sk-kspan-test-SECRET-0123456789';
const MODEL = 'gpt-4o-mini';
const CARD_PATH = '/.well-known/agent-card.json';

const [portArg, llmPortArg, cafile] = process.argv.slice(2);
const port = Number(portArg);
const llmPort = Number(llmPortArg);
if (!Number.isInteger(port) || port < 0 || portArg === undefined || !Number.isInteger(llmPort) || llmPort <= 0 ||
    !cafile) {
  process.stderr.write('usage: sub_agent.js PORT LLM_PORT CAFILE\n');
  process.exit(2);
}
if (!process.env.NODE_EXTRA_CA_CERTS || path.resolve(process.env.NODE_EXTRA_CA_CERTS) !== path.resolve(cafile)) {
  process.stderr.write(`sub_agent: NODE_EXTRA_CA_CERTS is "${process.env.NODE_EXTRA_CA_CERTS || ''}", ` +
                       `expected ${path.resolve(cafile)} (the LLM mock's certificate)\n`);
  process.exit(2);
}

const log = (line) => process.stderr.write(`sub_agent: ${line}\n`);

const llm = new OpenAI({apiKey: API_KEY, baseURL: `https://localhost:${llmPort}/v1`, maxRetries: 0, timeout: 10000});

function agentCard(url) {
  return {
    // A2A 0.3.0 card fields.
    protocolVersion: '0.3.0',
    name: 'sub-agent',
    description: 'Answers a delegated question with one LLM call (kspan test fixture).',
    url,
    preferredTransport: 'JSONRPC',
    version: '1.0.0',
    capabilities: {streaming: false, pushNotifications: false},
    defaultInputModes: ['text/plain'],
    defaultOutputModes: ['text/plain'],
    skills: [{id: 'answer', name: 'answer', description: 'Answers a question in one sentence.', tags: ['qa']}],
    // A2A 1.0 moved the endpoint and version into supportedInterfaces.
    supportedInterfaces: [
      {url, protocolBinding: 'JSONRPC', protocolVersion: '1.0'},
      {url, protocolBinding: 'JSONRPC', protocolVersion: '0.3'},
    ],
  };
}

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {'content-type': 'application/json', 'content-length': Buffer.byteLength(text)});
  res.end(text);
}

const rpcError = (res, id, code, message) => sendJson(res, 200, {jsonrpc: '2.0', id, error: {code, message}});

// The text of a message's parts, in either generation's shape (0.3: {kind: "text", text}; 1.0: {text}).
function messageText(message) {
  if (!message || !Array.isArray(message.parts)) return null;
  const texts = message.parts.filter((p) => p && typeof p.text === 'string').map((p) => p.text);
  return texts.length ? texts.join('\n') : null;
}

async function ask(question) {
  const r = await llm.chat.completions.create({
    model: MODEL,
    messages: [
      {role: 'system', content: 'You are the sub-agent. Answer in one sentence.'},
      {role: 'user', content: question},
    ],
    max_tokens: 64,
  });
  return {text: r.choices[0].message.content || '', usage: r.usage};
}

// A completed Task in the shape each generation expects.
function completedTask(v1, message, answer) {
  const now = new Date().toISOString();
  const contextId = message.contextId || randomUUID();
  const id = randomUUID();
  if (v1) {
    return {
      id, contextId,
      status: {state: 'TASK_STATE_COMPLETED', timestamp: now},
      artifacts: [{artifactId: randomUUID(), name: 'answer', parts: [{text: answer, mediaType: 'text/plain'}]}],
    };
  }
  return {
    kind: 'task', id, contextId,
    status: {state: 'completed', timestamp: now},
    artifacts: [{artifactId: randomUUID(), name: 'answer', parts: [{kind: 'text', text: answer}]}],
  };
}

async function rpc(req, res, raw) {
  let body;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch (e) {
    log('POST / unparsed');
    rpcError(res, null, -32700, 'Parse error');
    return;
  }
  const id = body && body.id !== undefined ? body.id : null;
  const method = body && body.method;
  log(`POST / method=${method}`);
  if (method !== 'message/send' && method !== 'SendMessage') {
    rpcError(res, id, -32601, 'Method not found');
    return;
  }
  const message = body.params && body.params.message;
  const text = messageText(message);
  if (text === null) {
    rpcError(res, id, -32602, 'Invalid params: no text part');
    return;
  }
  let answer;
  try {
    answer = await ask(text);
  } catch (e) {
    log(`llm call failed: ${e.message}`);
    rpcError(res, id, -32603, 'llm call failed');
    return;
  }
  const v1 = method === 'SendMessage';
  const task = completedTask(v1, message, answer.text);
  sendJson(res, 200, {jsonrpc: '2.0', id, result: v1 ? {task} : task});
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
      log(`${req.method} ${reqPath} too large`);
      sendJson(res, 413, {error: 'body too large'});
    } else if (req.method === 'GET' && reqPath === CARD_PATH) {
      log(`GET ${CARD_PATH}`);
      sendJson(res, 200, agentCard(`http://127.0.0.1:${server.address().port}/`));
    } else if (req.method === 'POST' && reqPath === '/') {
      rpc(req, res, Buffer.concat(chunks)).catch((e) => {
        log(`handler failed: ${e.message}`);
        res.destroy();
      });
    } else {
      log(`${req.method} ${reqPath} not found`);
      sendJson(res, 404, {error: `no route for ${req.method} ${reqPath}`});
    }
  });
});

function shutdown(why) {
  log(`exiting: ${why}`);
  process.exit(0);
}

server.listen(port, '127.0.0.1', () => console.log(`ready ${server.address().port}`));
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
setTimeout(() => shutdown('10 minutes up'), LIFETIME_MS).unref();
