// One node.js tier of a multi-tier HTTP service, for the trace-stitching tests.
//
// Usage: node tier_service.js PORT DOWNSTREAM_URL [--fire-and-forget]
//
// Serves HTTP/1.1 on 127.0.0.1:PORT from node's single-threaded event loop and prints
// "ready" once listening. For each request it makes one GET to DOWNSTREAM_URL + req.url
// through a keep-alive agent (at most 16 sockets), forwarding no header (no traceparent:
// kspan must stitch the tiers by itself), and:
//   - by default answers 200 with the downstream body once it has ended (502 when the
//     downstream call fails or times out after 10 s, or answers other than 200);
//   - with --fire-and-forget starts the downstream GET and answers 200 "accepted" as soon
//     as the request has been handed to the kernel (not waiting for any answer), so the
//     downstream call began while this request was in flight and is still running after
//     the response has gone. (Answering in the same tick as http.get would send the
//     response first: node writes the outgoing request on a later tick.)
'use strict';

const http = require('http');

const TIMEOUT_MS = 10000;
const args = process.argv.slice(2);
const fireAndForget = args.includes('--fire-and-forget');
const positional = args.filter((a) => !a.startsWith('--'));
const port = Number(positional[0]);
const downstream = positional[1];
if (!Number.isInteger(port) || port <= 0 || !downstream) {
  process.stderr.write('usage: tier_service.js PORT DOWNSTREAM_URL [--fire-and-forget]\n');
  process.exit(2);
}
const base = downstream.replace(/\/+$/, '');
const agent = new http.Agent({keepAlive: true, maxSockets: 16});

// GET base + path; calls done(err, status, body) exactly once. Returns the request.
function callDownstream(path, done) {
  let finished = false;
  const finish = (err, status, body) => {
    if (finished) return;
    finished = true;
    done(err, status, body);
  };
  const req = http.get(base + path, {agent, timeout: TIMEOUT_MS}, (res) => {
    const chunks = [];
    res.on('data', (c) => chunks.push(c));
    res.on('end', () => finish(null, res.statusCode, Buffer.concat(chunks)));
    res.on('error', (e) => finish(e));
  });
  req.on('timeout', () => req.destroy(new Error('downstream timed out')));
  req.on('error', (e) => finish(e));
  return req;
}

function reply(res, status, body) {
  res.writeHead(status, {'Content-Type': 'text/plain', 'Content-Length': body.length});
  res.end(body);
}

const server = http.createServer((req, res) => {
  req.resume();  // GETs carry no body; drain anyway so the connection can be reused
  if (fireAndForget) {
    let answered = false;
    const answer = () => {
      if (answered) return;
      answered = true;
      reply(res, 200, Buffer.from('accepted\n'));
    };
    const down = callDownstream(req.url, (err) => {
      if (err) process.stderr.write(`downstream ${req.url}: ${err.message}\n`);
      answer();  // no-op once answered; answers when the call failed before it was sent
    });
    down.on('finish', answer);  // the request is written; its answer is not awaited
    return;
  }
  callDownstream(req.url, (err, status, body) => {
    if (err) {
      reply(res, 502, Buffer.from(`downstream failed: ${err.message}\n`));
    } else {
      reply(res, status === 200 ? 200 : 502, body);
    }
  });
});
server.requestTimeout = TIMEOUT_MS;
server.headersTimeout = TIMEOUT_MS;
server.listen(port, '127.0.0.1', () => {
  process.stdout.write('ready\n');
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
