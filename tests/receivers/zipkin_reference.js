// What OpenTelemetry's own Zipkin exporter (@opentelemetry/exporter-zipkin) sends for
// spans equal to those in an OTLP/JSON-lines file (kspan's file output). Each span is
// rebuilt as an SDK ReadableSpan, exported by a real ZipkinExporter to a throwaway HTTP
// server on 127.0.0.1, and the JSON body it POSTed is printed on stdout as one array.
//   node zipkin_reference.js --spans FILE [--ids ID,ID,...]
'use strict';

const fs = require('fs');
const http = require('http');
const api = require('@opentelemetry/api');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { ZipkinExporter } = require('@opentelemetry/exporter-zipkin');

const a = {};
for (let i = 2; i + 1 < process.argv.length; i += 2) a[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
if (!a.spans) {
  console.error('usage: zipkin_reference.js --spans FILE [--ids ID,...]');
  process.exit(2);
}
const wanted = a.ids ? new Set(a.ids.split(',')) : null;

function value(v) {
  if ('stringValue' in v) return v.stringValue;
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return typeof v.doubleValue === 'string' ? Number(v.doubleValue) : v.doubleValue;
  if ('boolValue' in v) return v.boolValue;
  throw new Error('unexpected AnyValue ' + JSON.stringify(v));
}
function attributes(list) {
  const out = {};
  for (const kv of list || []) out[kv.key] = value(kv.value);
  return out;
}
// Unix nanoseconds (a decimal string) as the SDK's HrTime [seconds, nanoseconds].
function hrTime(ns) {
  const n = BigInt(ns);
  return [Number(n / 1000000000n), Number(n % 1000000000n)];
}

const spans = [];
for (const line of fs.readFileSync(a.spans, 'utf8').split('\n')) {
  if (!line.trim()) continue;
  for (const rs of JSON.parse(line).resourceSpans || []) {
    const resource = resourceFromAttributes(attributes(rs.resource && rs.resource.attributes));
    for (const ss of rs.scopeSpans || []) {
      for (const s of ss.spans || []) {
        if (wanted && !wanted.has(s.spanId)) continue;
        const ctx = { traceId: s.traceId, spanId: s.spanId, traceFlags: s.flags & 0xff };
        spans.push({
          name: s.name,
          kind: s.kind - 1, // OTLP numbers kinds from 1 (INTERNAL); the JS API from 0
          spanContext: () => ctx,
          parentSpanContext: s.parentSpanId ? { traceId: s.traceId, spanId: s.parentSpanId, traceFlags: 1 } : undefined,
          startTime: hrTime(s.startTimeUnixNano),
          endTime: hrTime(s.endTimeUnixNano),
          duration: hrTime((BigInt(s.endTimeUnixNano) - BigInt(s.startTimeUnixNano)).toString()),
          status: { code: (s.status && s.status.code) || api.SpanStatusCode.UNSET, message: s.status && s.status.message },
          attributes: attributes(s.attributes),
          links: [],
          events: (s.events || []).map((e) => ({ name: e.name, time: hrTime(e.timeUnixNano), attributes: attributes(e.attributes) })),
          ended: true,
          resource,
          instrumentationScope: ss.scope || { name: '' },
          droppedAttributesCount: 0,
          droppedEventsCount: 0,
          droppedLinksCount: 0,
        });
      }
    }
  }
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    process.stdout.write(Buffer.concat(chunks).toString('utf8') + '\n');
    res.writeHead(202);
    res.end();
    server.close();
  });
});
server.listen(0, '127.0.0.1', () => {
  const exporter = new ZipkinExporter({ url: `http://127.0.0.1:${server.address().port}/api/v2/spans` });
  exporter.export(spans, (result) => {
    if (result.code !== 0) {
      console.error('export failed: ' + (result.error && result.error.message));
      process.exit(1);
    }
  });
});
setTimeout(() => {
  console.error('timed out');
  process.exit(1);
}, 10000).unref();
