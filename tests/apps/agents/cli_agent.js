// A CLI agent: a plain process, no server, that does one job and exits, with the real `openai`
// and `@modelcontextprotocol/sdk` packages. Not instrumented: kspan has to see its whole run as
// one invoke_agent span from the kernel.
//
//   NODE_EXTRA_CA_CERTS=CAFILE node cli_agent.js LLM_PORT CAFILE [fail]
//
// In order, once:
//   1. spawn mcp_stdio_server.js as a child over stdio, MCP initialize and tools/list
//   2. chat, not streaming, model gpt-4o            (the mock answers usage 17 / 9)
//   3. MCP stdio tools/call lookup; `fail` calls fail_tool (a JSON-RPC error) instead
//   4. MCP stdio tools/call summarize (not with `fail`): the tool server itself makes one
//      gpt-4o-mini chat with the mock (17 / 9) while it serves the call
//   5. close the child (stdin closed), print a JSON summary on stdout
//   6. exit 0; with `fail`: write "cli-agent: giving up: <message>" to stderr and exit 1
// Prompts carry PROMPT-SECRET-kspan-7f3a, tool arguments TOOLARG-SECRET-9c1e, the API key is
// sk-kspan-test-SECRET-0123456789, as in orchestrator.js. Bounded: 10 s per call, 60 s in all.
'use strict';

const path = require('path');
const OpenAI = require('openai');
const {Client} = require('@modelcontextprotocol/sdk/client/index.js');
const {StdioClientTransport} = require('@modelcontextprotocol/sdk/client/stdio.js');

const CALL_TIMEOUT_MS = 10000;
const API_KEY = 'sk-kspan-test-SECRET-0123456789';
const PROMPT_SECRET = 'PROMPT-SECRET-kspan-7f3a';
const TOOLARG_SECRET = 'TOOLARG-SECRET-9c1e';

const args = process.argv.slice(2);
const llmPort = Number(args[0]);
const cafile = args[1];
const fail = args[2] === 'fail';
if (args.length < 2 || args.length > 3 || !Number.isInteger(llmPort) || llmPort <= 0 ||
    (args.length === 3 && args[2] !== 'fail')) {
  process.stderr.write('usage: cli_agent.js LLM_PORT CAFILE [fail]\n');
  process.exit(2);
}
if (!process.env.NODE_EXTRA_CA_CERTS || path.resolve(process.env.NODE_EXTRA_CA_CERTS) !== path.resolve(cafile)) {
  process.stderr.write(`cli-agent: NODE_EXTRA_CA_CERTS must name ${path.resolve(cafile)}\n`);
  process.exit(2);
}
setTimeout(() => {
  process.stderr.write('cli-agent: 60 s up\n');
  process.exit(3);
}, 60000).unref();

async function main() {
  const llm = new OpenAI({apiKey: API_KEY, baseURL: `https://localhost:${llmPort}/v1`, maxRetries: 0,
                          timeout: CALL_TIMEOUT_MS});
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [path.join(__dirname, 'mcp_stdio_server.js')],
    cwd: __dirname,
    stderr: 'inherit',
    env: {NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS, KSPAN_LLM_PORT: String(llmPort)},
  });
  const tools = new Client({name: 'cli-agent', version: '1.0.0'});
  await tools.connect(transport, {timeout: CALL_TIMEOUT_MS});
  await tools.listTools();

  const r = await llm.chat.completions.create({
    model: 'gpt-4o',
    messages: [{role: 'user', content: `Which tool answers this? ${PROMPT_SECRET}`}],
    max_tokens: 64,
  });
  const summary = {model: r.model, input_tokens: r.usage.prompt_tokens, output_tokens: r.usage.completion_tokens};

  let error = null;
  try {
    const t = await tools.callTool({name: fail ? 'fail_tool' : 'lookup', arguments: {query: `${TOOLARG_SECRET} kspan`}},
                                   undefined, {timeout: CALL_TIMEOUT_MS});
    summary.tool = {ok: !t.isError};
  } catch (e) {
    error = e.message;
    summary.tool = {ok: false, rpc_error_code: e.code};
  }
  if (!fail) {
    const t = await tools.callTool(
        {name: 'summarize', arguments: {query: `${TOOLARG_SECRET} kspan`}}, undefined,
        {timeout: CALL_TIMEOUT_MS});
    summary.summarize = (t.content || []).map((c) => c.text).join(' ');
    if (t.isError) error = summary.summarize;
  }
  await transport.close().catch(() => {});
  process.stdout.write(JSON.stringify(summary) + '\n');
  if (error) {
    process.stderr.write(`cli-agent: giving up: ${error}\n`);
    return 1;
  }
  return 0;
}

main().then((code) => process.exit(code), (e) => {
  process.stderr.write(`cli-agent: failed: ${e.message}\n`);
  process.exit(4);
});
