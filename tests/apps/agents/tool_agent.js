// A CLI agent whose model asks for tool calls by id (the LLM mock's "gpt-4o-tools"), runs
// them over MCP stdio (mcp_stateless_server.js --stdio, the 2026-07-28 revision, spoken by
// hand), and sends the results back. Not instrumented.
//
//   NODE_EXTRA_CA_CERTS=CERT node tool_agent.js LLM_PORT CERT NOTE_PATH [loop]
//
// With `loop` it asks "gpt-4o-loop", which asks for the same lookup call again after every
// result: the agent runs 7 rounds (chat, the tool call, its result back) and stops.
//
// 1. spawns `node mcp_stateless_server.js --stdio`;
// 2. chat gpt-4o-tools (the real `openai` SDK) with "please write the note: NOTE_PATH": the
//    mock asks for call_lookup_1 lookup {query} and call_note_2 write_note {path: NOTE_PATH};
// 3. tools/call for each, in the order asked, one after the other;
// 4. chat gpt-4o-tools again with the assistant's calls and one "tool" message per call
//    (tool_call_id): the mock answers in text;
// 5. prints {"asked":[ids…],"ran":[ids…]} and exits 0.
// Bounded: 5 s a call, 60 s in all. NOTE_PATH must be under /tmp (the tool server refuses others).
'use strict';

const path = require('path');
const {spawn} = require('child_process');
const OpenAI = require('openai');

const CALL_TIMEOUT_MS = 5000;
const [llmPort, cafile, notePath, mode] = process.argv.slice(2);
const loop = mode === 'loop';
const ROUNDS = loop ? 7 : 1;
if (!llmPort || !cafile || !notePath) {
  process.stderr.write('usage: tool_agent.js LLM_PORT CERT NOTE_PATH\n');
  process.exit(2);
}
setTimeout(() => {
  process.stderr.write('tool-agent: 60 s up\n');
  process.exit(3);
}, 60000).unref();

function mcpStdio() {
  const child = spawn(process.execPath, [path.join(__dirname, 'mcp_stateless_server.js'), '--stdio'],
                      {stdio: ['pipe', 'pipe', 'inherit']});
  const waiting = new Map();
  let buffered = '';
  let next = 1;
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
  const call = (name, args) => new Promise((resolve, reject) => {
    const id = next++;
    const timer = setTimeout(() => reject(new Error(`tools/call ${name}: no answer`)), CALL_TIMEOUT_MS);
    waiting.set(id, (msg) => {
      clearTimeout(timer);
      resolve(msg);
    });
    child.stdin.write(JSON.stringify({
      jsonrpc: '2.0', id, method: 'tools/call',
      params: {name, arguments: args, _meta: {'io.modelcontextprotocol/protocolVersion': '2026-07-28'}},
    }) + '\n');
  });
  const close = () => new Promise((resolve) => {
    child.on('exit', resolve);
    child.stdin.end();
  });
  return {call, close};
}

async function main() {
  const llm = new OpenAI({apiKey: 'sk-mock-SECRET-0123456789', baseURL: `https://localhost:${llmPort}/v1`,
                          maxRetries: 0, timeout: CALL_TIMEOUT_MS});
  const tools = mcpStdio();
  const messages = [{role: 'user', content: `please write the note: ${notePath}`}];
  const model = loop ? 'gpt-4o-loop' : 'gpt-4o-tools';
  const asked = [];
  const ran = [];
  for (let round = 0; round < ROUNDS; ++round) {
    const r = await llm.chat.completions.create({model, messages, max_tokens: 64});
    const calls = r.choices[0].message.tool_calls || [];
    asked.push(...calls);
    messages.push(r.choices[0].message);
    for (const c of calls) {
      const answer = await tools.call(c.function.name, JSON.parse(c.function.arguments || '{}'));
      if (answer.error) throw new Error(`${c.function.name}: ${answer.error.message}`);
      ran.push(c.id);
      messages.push({role: 'tool', tool_call_id: c.id,
                     content: (answer.result.content || []).map((p) => p.text).join(' ')});
    }
  }
  if (!loop) await llm.chat.completions.create({model, messages, max_tokens: 64});
  await tools.close();
  process.stdout.write(JSON.stringify({asked: asked.map((c) => c.id), ran}) + '\n');
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`tool-agent: failed: ${e.message}\n`);
  process.exit(1);
});
