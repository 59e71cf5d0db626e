// Drives the real `openai` node SDK (tests/apps/llm) against llm_mock.js over HTTPS.
//
//   NODE_EXTRA_CA_CERTS=CAFILE node llm_openai_client.js PORT CAFILE SCENARIO
//
// SCENARIO: chat | stream | embeddings | responses | error | all (chat, stream, embeddings,
// one after the other on one client). Prints one line per call with what came back; exits 0
// when every call went as expected (for `error`: the 429 arrived as an APIError), 1 otherwise.
//
// The SDK (v6) sends with node's global fetch, whose TLS trusts only the built-in roots plus
// NODE_EXTRA_CA_CERTS, which node reads once at start-up. So the caller sets it to CAFILE;
// when it doesn't, the script runs itself again as a child with it set (a second process:
// tests that match spans to a pid should set the variable themselves).
// Bounded: no retries, 10 s per request.
'use strict';

const path = require('path');
const {spawnSync} = require('child_process');

const SCENARIOS = ['chat', 'stream', 'embeddings', 'responses', 'error', 'all'];
const API_KEY = 'sk-kspan-test-SECRET-0123456789';
const PROMPT = 'PROMPT-SECRET-kspan-7f3a';

const [portArg, cafile, scenario] = process.argv.slice(2);
const port = Number(portArg);
if (!Number.isInteger(port) || port <= 0 || !cafile || !SCENARIOS.includes(scenario)) {
  process.stderr.write(`usage: llm_openai_client.js PORT CAFILE ${SCENARIOS.join('|')}\n`);
  process.exit(2);
}

const ca = path.resolve(cafile);
if (!process.env.NODE_EXTRA_CA_CERTS || path.resolve(process.env.NODE_EXTRA_CA_CERTS) !== ca) {
  process.stderr.write(`llm_openai_client: re-running with NODE_EXTRA_CA_CERTS=${ca}\n`);
  const child = spawnSync(process.execPath, process.argv.slice(1),
                          {stdio: 'inherit', env: {...process.env, NODE_EXTRA_CA_CERTS: ca}, timeout: 120000});
  process.exit(child.status === null ? 1 : child.status);
}

const OpenAI = require(path.join(__dirname, 'llm', 'node_modules', 'openai'));

const client = new OpenAI({
  apiKey: API_KEY,
  baseURL: `https://localhost:${port}/v1`,
  maxRetries: 0,
  timeout: 10000,
});

const messages = [
  {role: 'system', content: 'You are a test fixture.'},
  {role: 'user', content: `Say hello. ${PROMPT}`},
];
const sampling = {model: 'gpt-4o', messages, temperature: 0.2, max_tokens: 64, top_p: 0.9};
const usage = (u) => (u ? `${u.prompt_tokens}/${u.completion_tokens}/${u.total_tokens}` : 'none');

async function chat() {
  const r = await client.chat.completions.create(sampling);
  const u = r.usage;
  console.log(`chat id=${r.id} model=${r.model} finish=${r.choices[0].finish_reason} usage=${usage(u)}` +
              ` cached=${u.prompt_tokens_details.cached_tokens}` +
              ` reasoning=${u.completion_tokens_details.reasoning_tokens} request_id=${r._request_id}` +
              ` text=${JSON.stringify(r.choices[0].message.content)}`);
}

async function stream() {
  const s = await client.chat.completions.create({...sampling, stream: true, stream_options: {include_usage: true}});
  let chunks = 0, text = '', finish = null, id = null, model = null, u = null;
  for await (const c of s) {
    chunks++;
    id = c.id;
    model = c.model;
    if (c.usage) u = c.usage;
    for (const choice of c.choices) {
      text += choice.delta.content || '';
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  console.log(`stream id=${id} model=${model} chunks=${chunks} finish=${finish} usage=${usage(u)}` +
              ` text=${JSON.stringify(text)}`);
}

async function embeddings() {
  const r = await client.embeddings.create({model: 'text-embedding-3-small', input: PROMPT});
  const v = r.data[0].embedding;
  console.log(`embeddings model=${r.model} dims=${v.length} vector=${JSON.stringify(v)}` +
              ` usage=${r.usage.prompt_tokens}/${r.usage.total_tokens}`);
}

async function responses() {
  const r = await client.responses.create({model: 'gpt-4o-mini', input: `Say hello. ${PROMPT}`});
  const u = r.usage;
  console.log(`responses id=${r.id} model=${r.model} status=${r.status}` +
              ` usage=${u.input_tokens}/${u.output_tokens}/${u.total_tokens} text=${JSON.stringify(r.output_text)}`);
}

async function error() {
  try {
    await client.chat.completions.create({...sampling, model: 'rate-limited-model'});
  } catch (e) {
    if (e instanceof OpenAI.APIError && e.status === 429) {
      console.log(`error status=${e.status} code=${e.code} type=${e.type} request_id=${e.requestID}`);
      return;
    }
    throw e;
  }
  throw new Error('expected a 429 from rate-limited-model, got a success');
}

const run = {chat, stream, embeddings, responses, error,
             all: async () => { await chat(); await stream(); await embeddings(); }};

// The SDKs wrap fetch's failure ("Connection error."); the reason, e.g. an untrusted
// certificate, is in the cause chain.
run[scenario]().catch((e) => {
  console.error(`llm_openai_client ${scenario} failed: ${e.stack || e}`);
  for (let c = e.cause, depth = 0; c && depth < 4; c = c.cause, depth++) console.error(`  caused by: ${c.message || c}`);
  process.exitCode = 1;
});
