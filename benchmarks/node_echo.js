// The benchmarks' neutral echo server on Node's `ws` (run by `python -m benchmarks.peers serve node`).
//
// Usage: node node_echo.js [--deflate]
// Listens on 127.0.0.1, port 0, prints "PORT <n>", echoes every message with its type, and
// exits when its stdin closes (so it never outlives the benchmark that started it).
// `ws` is the one tests/interop/node installs (`npm ci --prefix tests/interop/node`).
'use strict';
const path = require('path');
const { WebSocketServer } = require(require.resolve('ws', {
  paths: [path.join(__dirname, '..', 'tests', 'interop', 'node')],
}));

const server = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  perMessageDeflate: process.argv.includes('--deflate'),
  maxPayload: 256 * 1024 * 1024,
});
server.on('listening', () => process.stdout.write(`PORT ${server.address().port}\n`));
server.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
