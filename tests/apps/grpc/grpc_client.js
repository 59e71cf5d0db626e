// A gRPC client on the real @grpc/grpc-js (node's built-in OpenSSL, h2 by ALPN), making
// the calls grpc_test.cc expects of every client against grpc_server.py, one at a time:
//   node grpc_client.js PORT CAFILE
// SayHello (unary, OK), GetUser (NOT_FOUND), Explode (INTERNAL), Count (server streaming,
// 3 answers), Chat (bidi, 4 and 4), Upload (client streaming, 5 messages, 1 answer).
// Prints "ok" when every answer was the expected one; bounded: 10 s a call.
'use strict';
const fs = require('fs');
const grpc = require('@grpc/grpc-js');

const [port, cafile] = process.argv.slice(2);
// The certificate names localhost (and 127.0.0.1, but TLS names no IP address by SNI).
const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createSsl(fs.readFileSync(cafile)),
                               {'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': `localhost:${port}`});
const ident = (b) => b;
const m = (name) => '/demo.v1.Greeter/' + name;
const deadline = () => ({deadline: Date.now() + 10000});

function unary(name, arg) {
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(m(name), ident, ident, Buffer.from(arg), deadline(), (err, res) =>
      err ? reject(err) : resolve(res.toString())));
}

function collect(call) {
  return new Promise((resolve, reject) => {
    const got = [];
    call.on('data', (d) => got.push(d.toString()));
    call.on('error', reject);
    call.on('end', () => resolve(got));
  });
}

function check(what, got, want) {
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    throw new Error(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  }
}

async function main() {
  check('SayHello', await unary('SayHello', 'bob'), 'hello bob');
  for (const [name, code] of [['GetUser', grpc.status.NOT_FOUND], ['Explode', grpc.status.INTERNAL]]) {
    const err = await unary(name, 'alice').then(() => null, (e) => e);
    if (!err || err.code !== code) throw new Error(`${name}: ${err ? err.code : 'no error'}`);
  }
  check('Count', await collect(client.makeServerStreamRequest(m('Count'), ident, ident, Buffer.from('3'),
                                                              new grpc.Metadata(), deadline())),
        ['0', '1', '2']);
  const chat = client.makeBidiStreamRequest(m('Chat'), ident, ident, new grpc.Metadata(), deadline());
  const answers = collect(chat);
  for (const s of ['a', 'b', 'c', 'd']) chat.write(Buffer.from(s));
  chat.end();
  check('Chat', await answers, ['echo a', 'echo b', 'echo c', 'echo d']);
  const uploaded = await new Promise((resolve, reject) => {
    const call = client.makeClientStreamRequest(m('Upload'), ident, ident, new grpc.Metadata(), deadline(),
                                                (err, res) => err ? reject(err) : resolve(res.toString()));
    for (let i = 0; i < 5; i++) call.write(Buffer.from('part' + i));
    call.end();
  });
  check('Upload', uploaded, '5');
  client.close();
  console.log('ok');
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
