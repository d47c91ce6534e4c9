// The benchmarks' many-connection driver on Node's `ws` (run by `python -m benchmarks.peers drive-node`).
//
// Usage: node node_driver.js PORT
// One Node process holds every client connection, so the driver never runs short of CPU
// or threads before the server under test does. It prints "READY", then answers each
// command line on stdin with one JSON line:
//
//   open N CONCURRENCY    open N connections, at most CONCURRENCY handshakes in flight:
//                         {opened, failed, seconds}
//   pings SECONDS         wait (at most SECONDS) until every open connection got at least
//                         one ping (ws answers each with a pong by itself):
//                         {pinged, unpinged, closed, seconds, pings}
//   rtt ROUNDS TIMEOUT    every connection sends a 32-byte text and waits for its echo,
//                         ROUNDS times, all at once: {done, lost, seconds, closed}
//   load SECONDS          every connection ping-pongs 32-byte texts for SECONDS, each
//                         round trip timed: {ops, seconds, p50, p99} (microseconds)
//   listen SECONDS        read broadcast messages for SECONDS (each begins with the
//                         sender's CLOCK_MONOTONIC in ns and a sequence number; a message
//                         "END" ends early): {deliveries, messages, p50, p99, maxgap}
//                         p50/p99: from the broadcast to the last connection's receipt (us)
//   close TIMEOUT         close every connection (1000) and wait for each to end:
//                         {closed, seconds}
// `ws` is the one tests/interop/node installs (`npm ci --prefix tests/interop/node`).
'use strict';
const path = require('path');
const readline = require('readline');
const WebSocket = require(require.resolve('ws', {
  paths: [path.join(__dirname, '..', 'tests', 'interop', 'node')],
}));

const url = `ws://127.0.0.1:${process.argv[2]}/`;
const conns = [];
let unexpectedCloses = 0;

function now() { return Number(process.hrtime.bigint()) / 1e3; } // microseconds, CLOCK_MONOTONIC

function pct(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

function reply(obj) { process.stdout.write(JSON.stringify(obj) + '\n'); }

function openOne() {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.pings = 0;
    ws.ended = false;
    ws.on('ping', () => { ws.pings += 1; });
    ws.on('open', () => { conns.push(ws); resolve(true); });
    ws.on('error', () => { if (ws.readyState !== WebSocket.OPEN) resolve(false); });
    ws.on('close', () => { if (!ws.ended) unexpectedCloses += 1; ws.ended = true; });
  });
}

async function open(n, concurrency) {
  const start = now();
  let next = 0; let opened = 0; let failed = 0;
  async function worker() {
    while (next < n) {
      next += 1;
      if (await openOne()) opened += 1; else failed += 1;
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return { opened, failed, seconds: (now() - start) / 1e6 };
}

async function pings(seconds) {
  const start = now();
  const end = start + seconds * 1e6;
  const alive = () => conns.filter((ws) => ws.readyState === WebSocket.OPEN);
  while (now() < end && alive().some((ws) => ws.pings === 0)) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const live = alive();
  return {
    pinged: live.filter((ws) => ws.pings > 0).length,
    unpinged: live.filter((ws) => ws.pings === 0).length,
    closed: conns.length - live.length,
    pings: live.reduce((a, ws) => a + ws.pings, 0),
    seconds: (now() - start) / 1e6,
  };
}

function echoOnce(ws, text, timeoutMs) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => { ws.removeListener('message', onMessage); resolve(false); }, timeoutMs);
    function onMessage() { clearTimeout(timer); ws.removeListener('message', onMessage); resolve(true); }
    ws.on('message', onMessage);
    ws.send(text);
  });
}

async function rtt(rounds, timeout) {
  const start = now();
  const text = 'x'.repeat(32);
  let done = 0; let lost = 0;
  await Promise.all(conns.map(async (ws) => {
    for (let i = 0; i < rounds; i += 1) {
      if (ws.readyState !== WebSocket.OPEN) { lost += rounds - i; return; }
      if (await echoOnce(ws, text, timeout * 1000)) done += 1; else { lost += rounds - i; return; }
    }
  }));
  return { done, lost, seconds: (now() - start) / 1e6, closed: unexpectedCloses };
}

async function load(seconds) {
  const text = 'x'.repeat(32);
  const samples = [];
  const start = now();
  const end = start + seconds * 1e6;
  await Promise.all(conns.map(async (ws) => {
    while (now() < end && ws.readyState === WebSocket.OPEN) {
      const t0 = now();
      if (!(await echoOnce(ws, text, 30000))) return;
      samples.push(now() - t0);
    }
  }));
  const elapsed = (now() - start) / 1e6;
  samples.sort((a, b) => a - b);
  return { ops: samples.length, seconds: elapsed, p50: pct(samples, 0.5), p99: pct(samples, 0.99) };
}

async function listen(seconds) {
  const last = new Map(); // sequence -> [sent us, last receipt us, receipts]
  let deliveries = 0;
  let finished = false;
  let resolveEnd;
  const ended = new Promise((r) => { resolveEnd = r; });
  const handlers = conns.map((ws) => {
    const onMessage = (data) => {
      const t = now();
      const s = data.toString('latin1', 0, 40);
      if (s.startsWith('END')) { finished = true; resolveEnd(); return; }
      deliveries += 1;
      const space = s.indexOf(' ');
      const space2 = s.indexOf(' ', space + 1);
      const seq = s.slice(space + 1, space2);
      let entry = last.get(seq);
      if (!entry) { entry = [Number(s.slice(0, space)) / 1e3, t, 0]; last.set(seq, entry); }
      entry[1] = t;
      entry[2] += 1;
    };
    ws.on('message', onMessage);
    return [ws, onMessage];
  });
  await Promise.race([ended, new Promise((r) => setTimeout(r, seconds * 1000))]);
  // Let what is in flight arrive (bounded), then stop counting.
  await new Promise((r) => setTimeout(r, finished ? 500 : 0));
  for (const [ws, h] of handlers) ws.removeListener('message', h);
  const lat = [];
  for (const [, [sent, t]] of last) lat.push(t - sent);
  lat.sort((a, b) => a - b);
  return { deliveries, messages: last.size, p50: pct(lat, 0.5), p99: pct(lat, 0.99), connections: conns.length };
}

async function close(timeout) {
  const start = now();
  const live = conns.filter((ws) => ws.readyState === WebSocket.OPEN);
  for (const ws of conns) ws.ended = true;
  const waits = live.map((ws) => new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) { resolve(true); return; }
    const timer = setTimeout(() => resolve(false), timeout * 1000);
    ws.once('close', () => { clearTimeout(timer); resolve(true); });
    ws.close(1000);
  }));
  const results = await Promise.all(waits);
  return { closed: results.filter(Boolean).length, of: live.length, seconds: (now() - start) / 1e6 };
}

const rl = readline.createInterface({ input: process.stdin });
let chain = Promise.resolve();
rl.on('line', (line) => {
  const [cmd, a, b] = line.trim().split(/\s+/);
  chain = chain.then(async () => {
    if (cmd === 'open') reply(await open(Number(a), Number(b || 200)));
    else if (cmd === 'pings') reply(await pings(Number(a)));
    else if (cmd === 'rtt') reply(await rtt(Number(a), Number(b || 30)));
    else if (cmd === 'load') reply(await load(Number(a)));
    else if (cmd === 'listen') reply(await listen(Number(a)));
    else if (cmd === 'close') reply(await close(Number(a || 30)));
    else if (cmd === 'quit') process.exit(0);
    else reply({ error: `unknown command ${cmd}` });
  });
});
rl.on('close', () => { chain.then(() => process.exit(0)); });
process.stdout.write('READY\n');
