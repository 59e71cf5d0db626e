// Drives the real `@anthropic-ai/sdk` node SDK (tests/apps/llm) against llm_mock.js over HTTPS.
//
//   NODE_EXTRA_CA_CERTS=CAFILE node llm_anthropic_client.js PORT CAFILE SCENARIO
//
// SCENARIO: chat | stream | error. Prints one line per call with what came back; exits 0 when
// the call went as expected (for `error`: the 429 arrived as an APIError), 1 otherwise.
//
// Like llm_openai_client.js: the SDK sends with node's global fetch, which trusts CAFILE only
// through NODE_EXTRA_CA_CERTS (read at start-up); without it the script runs itself again as
// a child with it set. Bounded: no retries, 10 s per request.
'use strict';

const path = require('path');
const {spawnSync} = require('child_process');

const SCENARIOS = ['chat', 'stream', 'error'];
const API_KEY = 'sk-ant-kspan-test-SECRET-0123456789';
const PROMPT = 'PROMPT-SECRET-kspan-7f3a';

const [portArg, cafile, scenario] = process.argv.slice(2);
const port = Number(portArg);
if (!Number.isInteger(port) || port <= 0 || !cafile || !SCENARIOS.includes(scenario)) {
  process.stderr.write(`usage: llm_anthropic_client.js PORT CAFILE ${SCENARIOS.join('|')}\n`);
  process.exit(2);
}

const ca = path.resolve(cafile);
if (!process.env.NODE_EXTRA_CA_CERTS || path.resolve(process.env.NODE_EXTRA_CA_CERTS) !== ca) {
  process.stderr.write(`llm_anthropic_client: re-running with NODE_EXTRA_CA_CERTS=${ca}\n`);
  const child = spawnSync(process.execPath, process.argv.slice(1),
                          {stdio: 'inherit', env: {...process.env, NODE_EXTRA_CA_CERTS: ca}, timeout: 120000});
  process.exit(child.status === null ? 1 : child.status);
}

const Anthropic = require(path.join(__dirname, 'llm', 'node_modules', '@anthropic-ai', 'sdk'));

const client = new Anthropic({
  apiKey: API_KEY,
  baseURL: `https://localhost:${port}`, // the SDK appends /v1/messages
  maxRetries: 0,
  timeout: 10000,
});

const params = {
  model: 'claude-sonnet-4-5',
  max_tokens: 128,
  temperature: 0.5,
  system: 'You are a test fixture.',
  messages: [{role: 'user', content: `Say hello. ${PROMPT}`}],
};
const text = (m) => JSON.stringify(m.content.filter((b) => b.type === 'text').map((b) => b.text).join(''));

async function chat() {
  const m = await client.messages.create(params);
  console.log(`chat id=${m.id} model=${m.model} stop=${m.stop_reason}` +
              ` usage=${m.usage.input_tokens}/${m.usage.output_tokens} request_id=${m._request_id} text=${text(m)}`);
}

async function stream() {
  const s = client.messages.stream(params);
  const events = {};
  for await (const e of s) events[e.type] = (events[e.type] || 0) + 1;
  const m = await s.finalMessage();
  const counts = Object.entries(events).map(([k, v]) => `${k}:${v}`).join(',');
  console.log(`stream id=${m.id} model=${m.model} stop=${m.stop_reason}` +
              ` usage=${m.usage.input_tokens}/${m.usage.output_tokens} events=${counts} text=${text(m)}`);
}

async function error() {
  try {
    await client.messages.create({...params, model: 'rate-limited-model'});
  } catch (e) {
    if (e instanceof Anthropic.APIError && e.status === 429) {
      console.log(`error status=${e.status} type=${e.error && e.error.error && e.error.error.type}` +
                  ` request_id=${e.requestID}`);
      return;
    }
    throw e;
  }
  throw new Error('expected a 429 from rate-limited-model, got a success');
}

const run = {chat, stream, error};

// The SDKs wrap fetch's failure ("Connection error."); the reason, e.g. an untrusted
// certificate, is in the cause chain.
run[scenario]().catch((e) => {
  console.error(`llm_anthropic_client ${scenario} failed: ${e.stack || e}`);
  for (let c = e.cause, depth = 0; c && depth < 4; c = c.cause, depth++) console.error(`  caused by: ${c.message || c}`);
  process.exitCode = 1;
});
