// Posts N tasks to orchestrator.js, one after the other, and checks each answer.
//
//   node run_tasks.js ORCH_PORT N [fail|soft]
//
// fail: every task asks for fail_tool (a JSON-RPC error from the stdio MCP server); soft: for
// soft_fail (an isError result). Prints one line per task; exits 0 when every task answered 200
// with the expected tool outcome, 1 otherwise, 2 on bad arguments. Bounded: 30 s per task.
'use strict';

const TASK_TIMEOUT_MS = 30000;
const MAX_TASKS = 1000;

const [portArg, nArg, mode] = process.argv.slice(2);
const port = Number(portArg);
const n = Number(nArg);
if (!Number.isInteger(port) || port <= 0 || !Number.isInteger(n) || n < 1 || n > MAX_TASKS ||
    ![undefined, 'fail', 'soft'].includes(mode)) {
  process.stderr.write(`usage: run_tasks.js ORCH_PORT N(1..${MAX_TASKS}) [fail|soft]\n`);
  process.exit(2);
}
const fail = mode === 'soft' ? 'soft' : mode === 'fail';

// What the first (stdio) tool must have come back as.
function stdioToolAsExpected(t) {
  if (!t) return false;
  if (mode === 'fail') return t.name === 'fail_tool' && !t.ok && t.rpc_error_code === -32603;
  if (mode === 'soft') return t.name === 'soft_fail' && !t.ok && t.is_error === true;
  return t.name === 'lookup' && t.ok;
}

async function one(i) {
  const res = await fetch(`http://127.0.0.1:${port}/task`, {
    method: 'POST',
    headers: {'content-type': 'application/json'},
    body: JSON.stringify({task: `task ${i}: find out what kspan does`, fail}),
    signal: AbortSignal.timeout(TASK_TIMEOUT_MS),
  });
  const body = await res.json();
  const llm = (body.llm || []).map((c) => `${c.model}${c.stream ? '(stream)' : ''}=${c.input_tokens}/${c.output_tokens}`);
  const tools = (body.tools || []).map((t) => `${t.server}:${t.name}=${t.ok ? 'ok' : t.is_error ? 'isError' : `rpc ${t.rpc_error_code}`}`);
  const sub = body.sub_agent ? `${body.sub_agent.method}=${body.sub_agent.state}` : body.error;
  console.log(`task ${i}: ${res.status} llm ${llm.join(' ')} tools ${tools.join(' ')} sub-agent ${sub}`);
  return res.status === 200 && stdioToolAsExpected(body.tools[0]) && body.tools[1].ok;
}

(async () => {
  let good = 0;
  for (let i = 1; i <= n; i++) {
    try {
      if (await one(i)) good++;
    } catch (e) {
      console.log(`task ${i}: failed: ${e.message}`);
    }
  }
  console.log(`${good} of ${n} tasks as expected`);
  process.exitCode = good === n ? 0 : 1;
})();
