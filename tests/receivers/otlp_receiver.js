// An OTLP (HTTP protobuf or gRPC) or Zipkin receiver on 127.0.0.1 for the export tests.
// See README.md. Usage:
//   node otlp_receiver.js --protocol http|grpc|zipkin|metrics|metrics-grpc --port N --out FILE
//                         [--behaviour ok|alternate-503|always-400|stall-first]
//                         [--stall-ms N]   (stall-first: how long the first answer waits; 3000)
//                         [--tls-cert PEM --tls-key PEM]   (https / gRPC over TLS)
'use strict';

const fs = require('fs');
const http = require('http');
const https = require('https');
const zlib = require('zlib');
const grpc = require('@grpc/grpc-js');
// The OpenTelemetry JS SDK's generated protobuf types: the official schema and decoder.
const root = require('@opentelemetry/otlp-transformer/build/src/generated/root');

const ExportTraceServiceRequest = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
const ExportTraceServiceResponse = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse;
const ExportMetricsServiceRequest = root.opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest;
const ExportMetricsServiceResponse = root.opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceResponse;

function args() {
  const a = { behaviour: 'ok' };
  for (let i = 2; i + 1 < process.argv.length; i += 2) a[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
  for (const k of ['protocol', 'port', 'out']) {
    if (!a[k]) {
      console.error(`missing --${k}`);
      process.exit(2);
    }
  }
  return a;
}

const opts = args();
const stats = { requests: 0, accepted: 0, refused: 0, spans: 0, lastHeaders: {} };
function saveStats() {
  fs.writeFileSync(opts.out + '.stats.tmp', JSON.stringify(stats));
  fs.renameSync(opts.out + '.stats.tmp', opts.out + '.stats');
}

// Decides the fate of request number n (1-based): 'ok', 'retry', 'refuse' or 'stall'
// (accepted and recorded, but answered only after --stall-ms: a frozen backend that
// thaws, as a client that timed out sees it).
function verdict(n) {
  if (opts.behaviour === 'stall-first') return n === 1 ? 'stall' : 'ok';
  if (opts.behaviour === 'alternate-503') return n % 2 === 1 ? 'retry' : 'ok';
  if (opts.behaviour === 'always-400') return 'refuse';
  return 'ok';
}

const hex = (b64) => Buffer.from(b64 || '', 'base64').toString('hex');

// The decoded request as an OTLP/JSON line: what the official decoder saw, in the file
// exporter's format (hex ids, 64-bit integers as decimal strings, enums as numbers).
function toOtlpJson(message) {
  const o = ExportTraceServiceRequest.toObject(message, { longs: String, enums: Number, bytes: String });
  let spans = 0;
  for (const rs of o.resourceSpans || []) {
    for (const ss of rs.scopeSpans || []) {
      for (const s of ss.spans || []) {
        spans++;
        s.traceId = hex(s.traceId);
        s.spanId = hex(s.spanId);
        if (s.parentSpanId !== undefined) {
          s.parentSpanId = hex(s.parentSpanId);
          if (s.parentSpanId === '') delete s.parentSpanId;
        }
        for (const l of s.links || []) {
          l.traceId = hex(l.traceId);
          l.spanId = hex(l.spanId);
        }
      }
    }
  }
  return { line: JSON.stringify(o), spans };
}

function record(message, headers) {
  const { line, spans } = toOtlpJson(message);
  fs.appendFileSync(opts.out, line + '\n');
  stats.accepted++;
  stats.spans += spans;
  stats.lastHeaders = headers;
  saveStats();
}

function readBody(req, done) {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let body = Buffer.concat(chunks);
    if ((req.headers['content-encoding'] || '') === 'gzip') body = zlib.gunzipSync(body);
    done(body);
  });
}

const tls = opts['tls-cert'] ? { cert: fs.readFileSync(opts['tls-cert']), key: fs.readFileSync(opts['tls-key']) } : null;

const stallMs = Number(opts['stall-ms'] || 3000);

// A response whose head and body go out only after stallMs (in that order: timers of one
// delay run first in, first out), to a client that may have given up by then.
function deferred(res) {
  const later = (f) => setTimeout(() => {
    try {
      if (!res.destroyed) f();
    } catch (e) {
      // the client hung up: what a stalled backend would see
    }
  }, stallMs);
  return {
    writeHead: (...a) => later(() => res.writeHead(...a)),
    end: (...a) => later(() => res.end(...a)),
  };
}

function startHttp(onBody) {
  const handler = (req, res) => {
    readBody(req, (body) => {
      stats.requests++;
      const v = verdict(stats.requests);
      if (v === 'retry') {
        stats.refused++;
        saveStats();
        res.writeHead(503, { 'Content-Type': 'text/plain' });
        res.end('busy');
        return;
      }
      if (v === 'refuse') {
        stats.refused++;
        saveStats();
        res.writeHead(400, { 'Content-Type': 'text/plain' });
        res.end('refused by the test receiver');
        return;
      }
      try {
        if (v === 'stall') {
          stats.stalled = (stats.stalled || 0) + 1;
          onBody(body, req.headers, deferred(res));
          return;
        }
        onBody(body, req.headers, res);
      } catch (e) {
        console.error('bad request: ' + e.stack);
        stats.refused++;
        saveStats();
        res.writeHead(400);
        res.end(String(e));
      }
    });
  };
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
  server.listen(Number(opts.port), '127.0.0.1', () => console.log('listening ' + server.address().port));
}

// A metrics request decoded by the official decoder, written as one OTLP/JSON line (64-bit
// integers as strings, enums as numbers).
function recordMetrics(message, headers) {
  const o = ExportMetricsServiceRequest.toObject(message, { longs: String, enums: Number, bytes: String });
  let points = 0;
  for (const rm of o.resourceMetrics || []) {
    for (const sm of rm.scopeMetrics || []) {
      for (const m of sm.metrics || []) points += ((m.sum || m.histogram || m.gauge || {}).dataPoints || []).length;
    }
  }
  fs.appendFileSync(opts.out, JSON.stringify(o) + '\n');
  stats.accepted++;
  stats.spans += points;  // data points, for the metrics protocols
  stats.lastHeaders = headers;
  saveStats();
}

// A unary gRPC method by hand, with raw bytes in and out, so decoding is visibly the
// official decoder's job and nothing else's.
function rawUnary(path) {
  const raw = (b) => b;
  return {
    Export: {
      path,
      requestStream: false,
      responseStream: false,
      requestSerialize: raw,
      requestDeserialize: raw,
      responseSerialize: raw,
      responseDeserialize: raw,
    },
  };
}

function bindGrpc(server) {
  const credentials = tls
    ? grpc.ServerCredentials.createSsl(null, [{ private_key: tls.key, cert_chain: tls.cert }])
    : grpc.ServerCredentials.createInsecure();
  server.bindAsync('127.0.0.1:' + opts.port, credentials, (err, port) => {
    if (err) {
      console.error(String(err));
      process.exit(1);
    }
    console.log('listening ' + port);
  });
}

if (opts.protocol === 'http') {
  startHttp((body, headers, res) => {
    if (headers['content-type'] !== 'application/x-protobuf') throw new Error('content-type ' + headers['content-type']);
    record(ExportTraceServiceRequest.decode(body), headers);
    res.writeHead(200, { 'Content-Type': 'application/x-protobuf' });
    res.end(Buffer.from(ExportTraceServiceResponse.encode(ExportTraceServiceResponse.create({})).finish()));
  });
} else if (opts.protocol === 'metrics') {
  // OTLP/HTTP metrics.
  startHttp((body, headers, res) => {
    if (headers['content-type'] !== 'application/x-protobuf') throw new Error('content-type ' + headers['content-type']);
    recordMetrics(ExportMetricsServiceRequest.decode(body), headers);
    res.writeHead(200, { 'Content-Type': 'application/x-protobuf' });
    res.end(Buffer.from(ExportMetricsServiceResponse.encode(ExportMetricsServiceResponse.create({})).finish()));
  });
} else if (opts.protocol === 'metrics-grpc') {
  // OTLP/gRPC metrics: MetricsService/Export by hand, raw bytes in and out (as for traces).
  const server = new grpc.Server();
  server.addService(rawUnary('/opentelemetry.proto.collector.metrics.v1.MetricsService/Export'), {
    Export: (call, callback) => {
      stats.requests++;
      try {
        recordMetrics(ExportMetricsServiceRequest.decode(call.request), call.metadata.getMap());
      } catch (e) {
        callback({ code: grpc.status.INVALID_ARGUMENT, details: String(e) });
        return;
      }
      callback(null, Buffer.from(ExportMetricsServiceResponse.encode(ExportMetricsServiceResponse.create({})).finish()));
    },
  });
  bindGrpc(server);
} else if (opts.protocol === 'zipkin') {
  startHttp((body, headers, res) => {
    const spans = JSON.parse(body.toString('utf8'));
    if (!Array.isArray(spans)) throw new Error('not a JSON array');
    fs.appendFileSync(opts.out, JSON.stringify(spans) + '\n');
    stats.accepted++;
    stats.spans += spans.length;
    stats.lastHeaders = headers;
    saveStats();
    res.writeHead(202);
    res.end();
  });
} else if (opts.protocol === 'grpc') {
  const server = new grpc.Server();
  server.addService(rawUnary('/opentelemetry.proto.collector.trace.v1.TraceService/Export'), {
    Export: (call, callback) => {
      stats.requests++;
      const v = verdict(stats.requests);
      if (v === 'retry' || v === 'refuse') {
        stats.refused++;
        saveStats();
        callback({
          code: v === 'retry' ? grpc.status.UNAVAILABLE : grpc.status.INVALID_ARGUMENT,
          details: 'decided by the test receiver',
        });
        return;
      }
      try {
        record(ExportTraceServiceRequest.decode(call.request), call.metadata.getMap());
      } catch (e) {
        callback({ code: grpc.status.INVALID_ARGUMENT, details: String(e) });
        return;
      }
      const answer = () =>
        callback(null, Buffer.from(ExportTraceServiceResponse.encode(ExportTraceServiceResponse.create({})).finish()));
      if (v === 'stall') {
        stats.stalled = (stats.stalled || 0) + 1;
        saveStats();
        setTimeout(answer, stallMs);
        return;
      }
      answer();
    },
  });
  bindGrpc(server);
} else {
  console.error('unknown --protocol ' + opts.protocol);
  process.exit(2);
}

saveStats();
process.on('SIGTERM', () => process.exit(0));
