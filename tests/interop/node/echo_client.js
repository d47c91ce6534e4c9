// A client on Node's `ws`, for tests/interop/test_node_ws.py.
//
// Usage: node echo_client.js URL '<JSON options>'
//   options.perMessageDeflate: false, true, or an object passed to ws
//   options.messages: [{"type": "text"|"binary", "size": N}, ...] sent one at a time,
//     each echo checked byte for byte
//   options.closeCode / options.closeReason: the client closes with these at the end;
//     with options.waitClose true it sends nothing, waits for the server to close.
// Prints one JSON line per event on stdout:
//   {"event": "open", "extensions": "<the Sec-WebSocket-Extensions response header>"}
//   {"event": "echo", "type": ..., "size": N, "ok": true|false}
//   {"event": "close", "code": N, "reason": "..."}   (the code the server sent)
//   {"event": "error", "message": "..."}
'use strict';
const WebSocket = require('ws');

const url = process.argv[2];
const options = JSON.parse(process.argv[3] || '{}');
const messages = options.messages || [];

function report(event) {
  process.stdout.write(JSON.stringify(event) + '\n');
}

function payload(spec, index) {
  // Compressible but not trivial: a repeating pattern shifted by the message index.
  const buffer = Buffer.alloc(spec.size);
  for (let i = 0; i < spec.size; i++) buffer[i] = 0x61 + ((i * 7 + index) % 26);
  return spec.type === 'text' ? buffer.toString('latin1') : buffer;
}

const ws = new WebSocket(url, {
  perMessageDeflate: options.perMessageDeflate === undefined ? false : options.perMessageDeflate,
  maxPayload: 64 * 1024 * 1024,
});
let index = 0;
let expected = null;
let extensions = '';

ws.on('upgrade', (response) => {
  extensions = response.headers['sec-websocket-extensions'] || '';
});

function next() {
  if (index >= messages.length) {
    if (!options.waitClose) ws.close(options.closeCode || 1000, options.closeReason || '');
    return;
  }
  const spec = messages[index];
  expected = payload(spec, index);
  ws.send(expected, { binary: spec.type === 'binary' });
}

ws.on('open', () => {
  report({ event: 'open', extensions });
  next();
});
ws.on('message', (data, isBinary) => {
  const spec = messages[index];
  const sameType = isBinary === (spec.type === 'binary');
  const got = isBinary ? data : data.toString('latin1');
  const same = isBinary ? Buffer.compare(got, expected) === 0 : got === expected;
  report({ event: 'echo', type: spec.type, size: spec.size, ok: sameType && same });
  index += 1;
  next();
});
ws.on('close', (code, reason) => {
  report({ event: 'close', code, reason: reason.toString('utf8') });
  process.exit(0);
});
ws.on('error', (error) => report({ event: 'error', message: String(error) }));
