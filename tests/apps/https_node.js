// HTTPS with node's built-in OpenSSL (memory BIOs, SSL_* inside the node binary).
//
//   node https_node.js server PORT CERT KEY          answers every GET with 200
//   node https_node.js client PORT CAFILE COUNT PATH  COUNT GETs, keep-alive, one at a time
// Bounded: at most 1000 requests, 10 s each.
'use strict';
const https = require('https');
const fs = require('fs');

const [mode, portArg, a, b, c] = process.argv.slice(2);
const port = Number(portArg);

if (mode === 'server') {
  https.createServer({cert: fs.readFileSync(a), key: fs.readFileSync(b)}, (req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, {'content-type': 'text/plain'});
      res.end('node tls ' + req.url + '\n');
    });
  }).listen(port, '127.0.0.1');
} else {
  const ca = fs.readFileSync(a);
  const agent = new https.Agent({keepAlive: true, maxSockets: 1});
  let left = Math.min(Number(b), 1000);
  let i = 0;
  const next = () => {
    if (left-- <= 0) {
      agent.destroy();
      return;
    }
    const req = https.get({host: 'localhost', port, path: `${c}/${i++}`, ca, agent, timeout: 10000}, (res) => {
      res.resume();
      res.on('end', () => {
        console.log(res.statusCode);
        next();
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => {
      console.error(e.message);
      process.exitCode = 1;
    });
  };
  next();
}
