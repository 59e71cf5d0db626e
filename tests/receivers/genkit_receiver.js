// @genkit-ai/telemetry-server on 127.0.0.1 for the OTLP/HTTP JSON test. It accepts OTLP/JSON
// at /api/otlp/v1/traces and serves what it stored at /api/traces/<traceId>.
//   node genkit_receiver.js --port N --dir DIR
'use strict';

const path = require('path');
const { startTelemetryServer, LocalFileTraceStore, LocalFileLogStore } = require('@genkit-ai/telemetry-server');

const a = {};
for (let i = 2; i + 1 < process.argv.length; i += 2) a[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
if (!a.port || !a.dir) {
  console.error('usage: genkit_receiver.js --port N --dir DIR');
  process.exit(2);
}
const dir = path.resolve(a.dir);
startTelemetryServer({
  port: Number(a.port),
  traceStore: new LocalFileTraceStore({ storeRoot: dir, indexRoot: dir }),
  logStore: new LocalFileLogStore({ storeRoot: dir, indexRoot: dir }),
}).then(
  () => console.log('started ' + a.port),
  (e) => {
    console.error(String(e && e.stack));
    process.exit(1);
  });
