// An A2A agent and its caller on the real @a2a-js/sdk (1.3.0: A2A 1.0 by default, 0.3 through
// its compatibility layer), served with express. Not instrumented.
//
//   node a2a_pair.js server PORT   the agent "echo-agent" on 127.0.0.1:PORT
//   node a2a_pair.js client PORT   calls it, in order (each call finished before the next):
//     1. A2A 1.0 JSON-RPC (the SDK's ClientFactory from the agent card, JSONRPC preferred):
//        SendMessage (A2A-Version: 1.0), then SendStreamingMessage, then GetTask
//     2. A2A 1.0 HTTP+JSON (ClientFactory, HTTP+JSON preferred): SendMessage (POST /rest/message:send)
//     3. A2A 0.3 JSON-RPC (the compat layer's LegacyJsonRpcTransport): message/send, tasks/get
//     4. SendMessage whose text is "fail": the agent answers a task in TASK_STATE_FAILED
//
// The server: the agent card at /.well-known/agent-card.json (interfaces: JSONRPC 1.0 and
// 0.3 at /a2a/jsonrpc, HTTP+JSON 1.0 at /rest), jsonRpcHandler with legacyCompat, restHandler.
// Its executor answers every message with a task: submitted, working, then completed with an
// artifact "echo: done" (never the message's text), or failed for "fail". Prints "ready PORT"
// once listening. The client prints one JSON line of what it got: the task ids and states.
// Bounded: 5 s a call, 60 s in all (client), 10 minutes (server), SIGTERM/SIGINT end both.
'use strict';

const express = require('express');
const {randomUUID} = require('crypto');
const {AGENT_CARD_PATH, Role, TaskState} = require('@a2a-js/sdk');
const {DefaultRequestHandler, InMemoryTaskStore} = require('@a2a-js/sdk/server');
const {agentCardHandler, jsonRpcHandler, restHandler, UserBuilder} = require('@a2a-js/sdk/server/express');
const {ClientFactory, ClientFactoryOptions, JsonRpcTransportFactory, RestTransportFactory} =
    require('@a2a-js/sdk/client');
const {LegacyJsonRpcTransport} = require('@a2a-js/sdk/compat/v0_3/client');

const CALL_TIMEOUT_MS = 5000;
const [mode, portArg] = process.argv.slice(2);
const port = Number(portArg);
if (!['server', 'client'].includes(mode) || !Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write('usage: a2a_pair.js server|client PORT\n');
  process.exit(2);
}
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));

function textOf(message) {
  return ((message && message.parts) || []).map((p) => (p.content && p.content.$case === 'text' ? p.content.value : ''))
      .join('');
}

function status(state) {
  return {state, message: undefined, timestamp: new Date().toISOString()};
}

class EchoExecutor {
  async execute(ctx, bus) {
    const {taskId, contextId} = ctx;
    const fail = textOf(ctx.userMessage) === 'fail';
    process.stderr.write(`a2a_pair: task ${taskId}${fail ? ' (fail)' : ''}\n`);
    bus.publish({
      kind: 'task',
      data: {
        id: taskId, contextId, status: status(TaskState.TASK_STATE_SUBMITTED), artifacts: [], history: [],
        metadata: undefined,
      },
    });
    bus.publish({kind: 'statusUpdate', data: {taskId, contextId, status: status(TaskState.TASK_STATE_WORKING),
                                               metadata: undefined}});
    if (!fail) {
      bus.publish({
        kind: 'artifactUpdate',
        data: {
          taskId, contextId, append: false, lastChunk: true, metadata: undefined,
          artifact: {artifactId: randomUUID(), name: 'echo', description: '', metadata: undefined, extensions: [],
                     parts: [{content: {$case: 'text', value: 'echo: done'}, metadata: undefined, filename: '',
                              mediaType: 'text/plain'}]},
        },
      });
    }
    bus.publish({
      kind: 'statusUpdate',
      data: {taskId, contextId, status: status(fail ? TaskState.TASK_STATE_FAILED : TaskState.TASK_STATE_COMPLETED),
             metadata: undefined},
    });
    bus.finished();
  }
  async cancelTask() {}
}

function serve() {
  setTimeout(() => process.exit(0), 10 * 60 * 1000).unref();
  const base = `http://127.0.0.1:${port}`;
  const card = {
    name: 'echo-agent',
    description: 'Answers every message with a task that echoes nothing of it.',
    supportedInterfaces: [
      {url: `${base}/a2a/jsonrpc`, protocolBinding: 'JSONRPC', tenant: '', protocolVersion: '1.0'},
      {url: `${base}/rest`, protocolBinding: 'HTTP+JSON', tenant: '', protocolVersion: '1.0'},
      {url: `${base}/a2a/jsonrpc`, protocolBinding: 'JSONRPC', tenant: '', protocolVersion: '0.3'},
    ],
    provider: undefined,
    version: '1.0.0',
    capabilities: {streaming: true, pushNotifications: false, extensions: [], extendedAgentCard: false},
    securitySchemes: {},
    securityRequirements: [],
    defaultInputModes: ['text/plain'],
    defaultOutputModes: ['text/plain'],
    skills: [{id: 'echo', name: 'echo', description: 'echoes', tags: ['test'], examples: [], inputModes: [],
              outputModes: [], securityRequirements: []}],
    signatures: [],
  };
  const handler = new DefaultRequestHandler(card, new InMemoryTaskStore(), new EchoExecutor());
  const app = express();
  app.use(`/${AGENT_CARD_PATH}`, agentCardHandler({agentCardProvider: handler}));
  app.use('/a2a/jsonrpc', jsonRpcHandler({requestHandler: handler, userBuilder: UserBuilder.noAuthentication,
                                          legacyCompat: {enabled: true}}));
  app.use('/rest', restHandler({requestHandler: handler, userBuilder: UserBuilder.noAuthentication}));
  const server = app.listen(port, '127.0.0.1', () => process.stdout.write(`ready ${server.address().port}\n`));
}

function message(text) {
  return {
    tenant: '',
    message: {messageId: randomUUID(), contextId: '', taskId: '', role: Role.ROLE_USER, metadata: undefined,
              extensions: [], referenceTaskIds: [],
              parts: [{content: {$case: 'text', value: text}, metadata: undefined, filename: '', mediaType: 'text/plain'}]},
    configuration: undefined,
    metadata: undefined,
  };
}

function taskOf(result) {
  // A Task, or a Message (no task).
  return result && result.status ? {id: result.id, state: result.status.state} : {message: true};
}

async function call() {
  setTimeout(() => {
    process.stderr.write('a2a_pair: 60 s up\n');
    process.exit(3);
  }, 60000).unref();
  const opts = () => ({signal: AbortSignal.timeout(CALL_TIMEOUT_MS)});
  const base = `http://127.0.0.1:${port}`;
  const out = {};
  const v1 = await new ClientFactory(ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
    preferredTransports: ['JSONRPC'],
  })).createFromUrl(base);
  out.send = taskOf(await v1.sendMessage(message('hello'), opts()));
  const states = [];
  for await (const ev of v1.sendMessageStream(message('hello again'), opts())) {
    const p = ev.payload || {};
    if (p.$case === 'task' || p.$case === 'statusUpdate') states.push(p.value.status.state);
  }
  out.stream = states;
  out.get = taskOf(await v1.getTask({tenant: '', id: out.send.id, historyLength: 0}, opts()));

  const rest = await new ClientFactory(ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
    preferredTransports: ['HTTP+JSON'],
  })).createFromUrl(base);
  out.rest = taskOf(await rest.sendMessage(message('hello rest'), opts()));

  const legacy = new LegacyJsonRpcTransport({endpoint: `${base}/a2a/jsonrpc`});
  out.legacy = taskOf(await legacy.sendMessage(message('hello 0.3'), opts()));
  out.legacy_get = taskOf(await legacy.getTask({tenant: '', id: out.legacy.id, historyLength: 0}, opts()));

  out.fail = taskOf(await v1.sendMessage(message('fail'), opts()));
  process.stdout.write(JSON.stringify(out) + '\n');
}

if (mode === 'server') {
  serve();
} else {
  call().then(() => process.exit(0), (e) => {
    process.stderr.write(`a2a_pair: failed: ${e.stack || e.message}\n`);
    process.exit(1);
  });
}
