// An echo server on Node's `ws`, for tests/interop/test_node_ws.py.
//
// Usage: node echo_server.js '<JSON options>'
//   options.perMessageDeflate: false, true, or an object passed to ws (serverMaxWindowBits...)
// Listens on 127.0.0.1, port 0; prints one JSON line per event on stdout:
//   {"event": "listening", "port": N}
//   {"event": "open", "extensions": "<the Sec-WebSocket-Extensions the client offered>"}
//   {"event": "close", "code": N, "reason": "..."}     (what the client sent)
// A text message "close CODE REASON" makes the server close with that code and reason;
// anything else is echoed back with the same type (text or binary).
'use strict';
const { WebSocketServer } = require('ws');

const options = JSON.parse(process.argv[2] || '{}');
const server = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  perMessageDeflate: options.perMessageDeflate === undefined ? false : options.perMessageDeflate,
  maxPayload: 64 * 1024 * 1024,
});

function report(event) {
  process.stdout.write(JSON.stringify(event) + '\n');
}

server.on('listening', () => report({ event: 'listening', port: server.address().port }));
server.on('connection', (ws, request) => {
  report({ event: 'open', extensions: request.headers['sec-websocket-extensions'] || '' });
  ws.on('message', (data, isBinary) => {
    if (!isBinary) {
      const text = data.toString('utf8');
      const match = /^close (\d+) (.*)$/.exec(text);
      if (match) {
        ws.close(Number(match[1]), match[2]);
        return;
      }
    }
    ws.send(data, { binary: isBinary });
  });
  ws.on('close', (code, reason) => report({ event: 'close', code, reason: reason.toString('utf8') }));
  ws.on('error', (error) => report({ event: 'error', message: String(error) }));
});
// The test kills this process by PID; stdin closing (the test went away) also ends it.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
