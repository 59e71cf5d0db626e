// A deterministic LLM API over HTTPS (node's built-in https, or http2 with "h2"; no npm
// deps) for the gen_ai span tests: OpenAI-compatible and Anthropic endpoints with fixed
// answers.
//
//   node llm_mock.js PORT CERT KEY [h2]
//
// With "h2" it speaks HTTP/2 to clients that offer it by ALPN and HTTP/1.1 to the rest.
// Listens on 127.0.0.1:PORT (0 picks one) and prints "ready PORT" on stdout once listening.
// Logs one line per request to stderr ("POST /v1/chat/completions model=gpt-4o stream=true"),
// never the prompt. Bounded: request bodies over 1 MiB get 413; exits after 10 minutes.
//
// | request                                    | answer                                            |
// | ------------------------------------------ | ------------------------------------------------- |
// | POST /v1/chat/completions                  | chat.completion, model = request model + SUFFIX,  |
// |                                            | usage 17 / 9 / 26, cached 3, reasoning 2          |
// | POST /v1/chat/completions "stream": true   | SSE chat.completion.chunk: role, ~40 ms pause,    |
// |                                            | 5 content chunks ~5 ms apart, finish "length",    |
// |                                            | usage 21 / 5 / 26 chunk (if include_usage), [DONE]|
// | POST /v1/embeddings                        | 8 floats (base64 float32 LE when asked), 8 tokens |
// | POST /v1/responses                         | response resp_mock_1, usage 13 / 7 / 20           |
// | POST /v1/messages                          | Anthropic message msg_mock_1, usage 25 / 11       |
// | POST /v1/messages "stream": true           | Anthropic SSE events, 4 text deltas, 25 / 11      |
// | model "rate-limited-model" (any endpoint)  | 429 with the provider's error body, retry-after 0 |
// | chat model "…-big", not streaming          | the same answer with a 40 KB completion text      |
// | chat model "…-tools", not streaming, the   | finish "tool_calls", two calls: call_lookup_1     |
// | last message not a tool result             | lookup {query:"kspan"}, call_note_2 write_note    |
// |                                            | {path: what follows "note:" in the last message}  |
// |                                            | (a tool result last: the ordinary answer)         |
// | chat model "…-loop", not streaming         | always the one call call_loop_N lookup            |
// |                                            | {query:"kspan"} (N: the number of tool results    |
// |                                            | in the request), tool results or not              |
// | anything else                              | 404 JSON                                          |
// JSON answers are br- or gzip-compressed when the request accepts it (the SDKs do).
'use strict';

const http2 = require('http2');
const https = require('https');
const fs = require('fs');
const zlib = require('zlib');

const MAX_BODY = 1 << 20;
const LIFETIME_MS = 10 * 60 * 1000;
const FIRST_TOKEN_DELAY_MS = 40;
const CHUNK_GAP_MS = 5;
const CREATED = 1700000000; // fixed, so answers are byte-for-byte repeatable
const MODEL_SUFFIX = '-2024-08-06';
const TEXT = 'MOCK_COMPLETION_TEXT';
const CHAT_TEXT = TEXT + ' from the kspan mock';
const STREAM_PIECES = ['MOCK', '_COMPLETION', '_TEXT', ' streamed', ' reply'];
const ANTHROPIC_PIECES = ['MOCK', '_COMPLETION', '_TEXT', ' streamed'];
const EMBEDDING = [0.125, -0.25, 0.5, -0.75, 1, -1.5, 2, -0.0625]; // exact in float32
const RATE_LIMITED = 'rate-limited-model';
const RATE_LIMIT_MESSAGE = 'Rate limit reached for mock';

const [portArg, certFile, keyFile, mode] = process.argv.slice(2);
const port = Number(portArg);
if (!Number.isInteger(port) || port < 0 || !certFile || !keyFile || (mode !== undefined && mode !== 'h2')) {
  process.stderr.write('usage: llm_mock.js PORT CERT KEY [h2]\n');
  process.exit(2);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// JSON bodies are compressed as the real APIs do when the client accepts it: br first (the
// SDKs ask for "br, gzip, deflate"), else gzip; python's urllib asks for identity.
function sendJson(res, status, body, headers = {}) {
  const text = Buffer.from(JSON.stringify(body));
  const accept = String(res.req.headers['accept-encoding'] || '');
  let encoded = text;
  let coding = null;
  if (/\bbr\b/.test(accept)) {
    coding = 'br';
    encoded = zlib.brotliCompressSync(text);
  } else if (/\bgzip\b/.test(accept)) {
    coding = 'gzip';
    encoded = zlib.gzipSync(text);
  }
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': encoded.length,
    ...(coding ? {'content-encoding': coding} : {}),
    ...headers,
  });
  res.end(encoded);
}

// Each SSE event goes out as its own write (its own TLS record), as a real server streams.
async function sendEvents(res, headers, events) {
  res.writeHead(200, {'content-type': 'text/event-stream', 'cache-control': 'no-cache', ...headers});
  for (const e of events) {
    if (e.delay) await sleep(e.delay);
    if (res.destroyed) return;
    res.write(e.text);
  }
  res.end();
}

const openaiData = (obj) => ({text: `data: ${JSON.stringify(obj)}\n\n`});
const anthropicEvent = (obj) => ({text: `event: ${obj.type}\ndata: ${JSON.stringify(obj)}\n\n`});

function openaiRateLimit(res) {
  sendJson(res, 429, {error: {message: RATE_LIMIT_MESSAGE, type: 'requests', param: null, code: 'rate_limit_exceeded'}},
           {'retry-after': '0', 'x-request-id': 'req_mock_429'});
}

// A request whose model ends in "-big" gets a 40 KB completion: its usage lies far past the
// first bytes of the answer.
function bigAnswer(body) {
  return String(body.model).endsWith('-big');
}

// The tool calls a "…-tools" model asks for, or null when it answers in text.
function toolCallsAsked(body) {
  const messages = Array.isArray(body.messages) ? body.messages : [];
  const last = messages[messages.length - 1] || {};
  if (String(body.model).endsWith('-loop')) {
    const n = messages.filter((m) => m && m.role === 'tool').length;
    return [{id: `call_loop_${n}`, type: 'function',
             function: {name: 'lookup', arguments: JSON.stringify({query: 'kspan'})}}];
  }
  if (!String(body.model).endsWith('-tools') || last.role === 'tool') return null;
  const text = typeof last.content === 'string' ? last.content : '';
  const at = text.indexOf('note:');
  const path = at >= 0 ? text.slice(at + 5).trim().split(/\s/)[0] : '';
  return [
    {id: 'call_lookup_1', type: 'function', function: {name: 'lookup', arguments: JSON.stringify({query: 'kspan'})}},
    {id: 'call_note_2', type: 'function', function: {name: 'write_note', arguments: JSON.stringify({path})}},
  ];
}

function chatCompletions(req, res, body) {
  const model = String(body.model) + MODEL_SUFFIX;
  const headers = {'x-request-id': 'req_mock_chat'};
  const calls = body.stream ? null : toolCallsAsked(body);
  if (calls) {
    sendJson(res, 200, {
      id: 'chatcmpl-mock-tools', object: 'chat.completion', created: CREATED, model,
      choices: [{index: 0, message: {role: 'assistant', content: null, tool_calls: calls, refusal: null},
                 logprobs: null, finish_reason: 'tool_calls'}],
      usage: {prompt_tokens: 17, completion_tokens: 9, total_tokens: 26},
      system_fingerprint: 'fp_mock',
    }, headers);
    return;
  }
  if (!body.stream) {
    sendJson(res, 200, {
      id: 'chatcmpl-mock-1',
      object: 'chat.completion',
      created: CREATED,
      model,
      choices: [{
        index: 0,
        message: {role: 'assistant', content: bigAnswer(body) ? CHAT_TEXT + ' ' + 'word '.repeat(8000) : CHAT_TEXT,
                  refusal: null},
        logprobs: null,
        finish_reason: 'stop',
      }],
      usage: {
        prompt_tokens: 17,
        completion_tokens: 9,
        total_tokens: 26,
        prompt_tokens_details: {cached_tokens: 3},
        completion_tokens_details: {reasoning_tokens: 2},
      },
      system_fingerprint: 'fp_mock',
    }, headers);
    return;
  }
  const includeUsage = Boolean(body.stream_options && body.stream_options.include_usage);
  const chunk = (choices, extra = {}) => openaiData({
    id: 'chatcmpl-mock-1', object: 'chat.completion.chunk', created: CREATED, model,
    system_fingerprint: 'fp_mock', choices, ...(includeUsage ? {usage: null} : {}), ...extra,
  });
  const choice = (delta, finish = null) => [{index: 0, delta, logprobs: null, finish_reason: finish}];
  const events = [chunk(choice({role: 'assistant', content: '', refusal: null}))];
  STREAM_PIECES.forEach((piece, i) => {
    events.push({...chunk(choice({content: piece})), delay: i === 0 ? FIRST_TOKEN_DELAY_MS : CHUNK_GAP_MS});
  });
  events.push({...chunk(choice({}, 'length')), delay: CHUNK_GAP_MS});
  if (includeUsage) {
    events.push(chunk([], {usage: {prompt_tokens: 21, completion_tokens: 5, total_tokens: 26}}));
  }
  events.push({text: 'data: [DONE]\n\n'});
  return sendEvents(res, headers, events);
}

function embeddings(req, res, body) {
  let embedding = EMBEDDING;
  if (body.encoding_format === 'base64') {
    const buf = Buffer.alloc(4 * EMBEDDING.length);
    EMBEDDING.forEach((v, i) => buf.writeFloatLE(v, 4 * i));
    embedding = buf.toString('base64');
  }
  sendJson(res, 200, {
    object: 'list',
    data: [{object: 'embedding', index: 0, embedding}],
    model: String(body.model),
    usage: {prompt_tokens: 8, total_tokens: 8},
  }, {'x-request-id': 'req_mock_embeddings'});
}

function responses(req, res, body) {
  sendJson(res, 200, {
    id: 'resp_mock_1',
    object: 'response',
    created_at: CREATED,
    model: String(body.model),
    status: 'completed',
    output: [{
      type: 'message',
      id: 'msg_mock_resp_1',
      status: 'completed',
      role: 'assistant',
      content: [{type: 'output_text', text: TEXT, annotations: []}],
    }],
    usage: {
      input_tokens: 13,
      output_tokens: 7,
      total_tokens: 20,
      input_tokens_details: {cached_tokens: 0},
      output_tokens_details: {reasoning_tokens: 0},
    },
  }, {'x-request-id': 'req_mock_responses'});
}

function anthropicMessages(req, res, body) {
  const model = String(body.model);
  const headers = {'request-id': 'req_mock_messages'};
  if (model === RATE_LIMITED) {
    sendJson(res, 429, {type: 'error', error: {type: 'rate_limit_error', message: RATE_LIMIT_MESSAGE}},
             {'retry-after': '0', 'request-id': 'req_mock_429'});
    return;
  }
  if (!body.stream) {
    sendJson(res, 200, {
      id: 'msg_mock_1',
      type: 'message',
      role: 'assistant',
      model,
      content: [{type: 'text', text: TEXT}],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: {input_tokens: 25, output_tokens: 11, cache_read_input_tokens: 0, cache_creation_input_tokens: 0},
    }, headers);
    return;
  }
  // The real API's order: message_start (input tokens, output so far), the block, pings,
  // deltas, block stop, message_delta (final output tokens, cumulative), message_stop.
  const events = [
    anthropicEvent({type: 'message_start', message: {
      id: 'msg_mock_1', type: 'message', role: 'assistant', model, content: [],
      stop_reason: null, stop_sequence: null,
      usage: {input_tokens: 25, output_tokens: 1, cache_read_input_tokens: 0, cache_creation_input_tokens: 0},
    }}),
    anthropicEvent({type: 'content_block_start', index: 0, content_block: {type: 'text', text: ''}}),
    anthropicEvent({type: 'ping'}),
  ];
  ANTHROPIC_PIECES.forEach((text, i) => {
    events.push({...anthropicEvent({type: 'content_block_delta', index: 0, delta: {type: 'text_delta', text}}),
                 delay: i === 0 ? FIRST_TOKEN_DELAY_MS : CHUNK_GAP_MS});
  });
  events.push(
    {...anthropicEvent({type: 'content_block_stop', index: 0}), delay: CHUNK_GAP_MS},
    anthropicEvent({type: 'message_delta', delta: {stop_reason: 'end_turn', stop_sequence: null},
                    usage: {output_tokens: 11}}),
    anthropicEvent({type: 'message_stop'}));
  return sendEvents(res, headers, events);
}

const routes = {
  '/v1/chat/completions': chatCompletions,
  '/v1/embeddings': embeddings,
  '/v1/responses': responses,
  '/v1/messages': anthropicMessages,
};

function handle(req, res, raw) {
  const path = req.url.split('?')[0];
  const route = req.method === 'POST' ? routes[path] : undefined;
  let body = {};
  if (route) {
    try {
      body = JSON.parse(raw.toString('utf8') || '{}');
    } catch (e) {
      body = null;
    }
  }
  process.stderr.write(`${req.method} ${path} model=${body && body.model} stream=${Boolean(body && body.stream)}\n`);
  if (!route) {
    sendJson(res, 404, {error: {message: `no route for ${req.method} ${path}`, type: 'invalid_request_error',
                                param: null, code: 'not_found'}});
  } else if (body === null || typeof body !== 'object') {
    sendJson(res, 400, {error: {message: 'body is not JSON', type: 'invalid_request_error', param: null,
                                code: null}});
  } else if (body.model === RATE_LIMITED && route !== anthropicMessages) {
    openaiRateLimit(res);
  } else {
    Promise.resolve(route(req, res, body)).catch((e) => {
      process.stderr.write(`handler failed: ${e.message}\n`);
      res.destroy();
    });
  }
}

const tls = {cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile)};
function onRequest(req, res) {
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size <= MAX_BODY) chunks.push(c);
  });
  req.on('end', () => {
    if (size > MAX_BODY) {
      sendJson(res, 413, {error: {message: 'body too large', type: 'invalid_request_error', param: null, code: null}});
    } else {
      handle(req, res, Buffer.concat(chunks));
    }
  });
}

// http2's compatibility API gives the handler the same req and res as https does.
const server = mode === 'h2' ? http2.createSecureServer({...tls, allowHTTP1: true}, onRequest)
                             : https.createServer(tls, onRequest);
server.listen(port, '127.0.0.1', () => console.log(`ready ${server.address().port}`));
setTimeout(() => {
  process.stderr.write('llm_mock: 10 minutes up, exiting\n');
  process.exit(0);
}, LIFETIME_MS);
