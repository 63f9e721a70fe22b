// Fuzzing the decoder of what the network sends: mutated JSON-RPC messages
// (valid ones of every kind, with members replaced by random values,
// truncated, or with random bytes) pushed into a connection that has a call,
// a stream and a subscription open. Nothing may throw out of the message
// handler, every message the client sends must be JSON-RPC 2.0, and the
// connection must still work afterwards. FUZZ_ITERATIONS sets the count
// (default 3000); FUZZ_SEED the seed.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../src/index.js';
import { decode, classify } from '../src/jsonrpc.js';
import { FakeServer } from './fake.js';

function prng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const seeds = [
  { jsonrpc: '2.0', id: 1, result: 3 },
  { jsonrpc: '2.0', id: 1, error: { code: -32601, message: 'x', data: { a: 1 } } },
  { jsonrpc: '2.0', id: 'q', method: 'h', params: [1], $timeout: 10, $meta: { k: 'v' } },
  { jsonrpc: '2.0', method: 'h', params: { a: 1 } },
  { jsonrpc: '2.0', method: '$/cancelRequest', params: { id: 'q' } },
  { jsonrpc: '2.0', method: '$/shutdown', params: { retryAfterMs: 5, reason: 'r' } },
  { jsonrpc: '2.0', method: '$/publication', params: { sub: 1, topic: 't', offset: 2, epoch: 'E', data: 'x' } },
  { jsonrpc: '2.0', method: '$/publication', params: { sub: 1, topic: 't', offset: 3, epoch: 'E', skipped: true } },
  { jsonrpc: '2.0', method: '$/stream.item', params: { id: 2, item: 5 } },
  [{ jsonrpc: '2.0', method: '$/stream.item', params: { id: 2, item: 6 } }, { jsonrpc: '2.0', id: 1, result: null }],
];

const odd = [null, true, false, 0, -1, 1.5, 2 ** 53, -(2 ** 31) - 1, '', '\ud800', 'x'.repeat(300), [], {}, [1, [2, [3]]], { id: 1 }, { sub: 1 }, NaN];

function mutate(v, r) {
  if (r() < 0.1) return odd[Math.floor(r() * odd.length)];
  if (Array.isArray(v)) {
    const out = v.map((x) => (r() < 0.5 ? mutate(x, r) : x));
    if (r() < 0.2) out.push(mutate(seeds[Math.floor(r() * seeds.length)], r));
    return out;
  }
  if (v && typeof v === 'object') {
    const out = { ...v };
    const keys = Object.keys(out);
    const k = keys[Math.floor(r() * keys.length)];
    if (k !== undefined) {
      if (r() < 0.2) delete out[k];
      else out[k] = mutate(out[k], r);
    }
    if (r() < 0.1) out[['id', 'method', 'result', 'error', 'params', '$meta', '$timeout'][Math.floor(r() * 7)]] = odd[Math.floor(r() * odd.length)];
    return out;
  }
  return v;
}

function text(v, r) {
  let t = JSON.stringify(v) ?? 'null';
  const x = r();
  if (x < 0.05) t = t.slice(0, Math.floor(r() * t.length));
  else if (x < 0.08) t = t.replace(/./u, String.fromCharCode(Math.floor(r() * 0x10000)));
  else if (x < 0.1) t = String.fromCharCode(...Array.from({ length: 8 }, () => Math.floor(r() * 256)));
  return t;
}

describe('fuzz', () => {
  it('classify never throws on any JSON value', () => {
    const r = prng(1);
    for (let i = 0; i < 5000; i++) {
      const e = classify(mutate(seeds[i % seeds.length], r));
      assert.ok(typeof e.kind === 'string');
      decode(text(mutate(seeds[i % seeds.length], r), r));
    }
  });

  it('the connection survives mutated messages and keeps answering', async () => {
    const n = Number(process.env.FUZZ_ITERATIONS ?? 3000);
    const seed = Number(process.env.FUZZ_SEED ?? 42);
    const r = prng(seed);
    const fake = new FakeServer();
    const c = await connect('ws://fake/rpc', { WebSocket: fake.WebSocket, backoff: { base: 1, max: 2 } });
    const bugs = [];
    c.addEventListener('error', (e) => { if (!(e.error?.code)) bugs.push(e.error); });
    c.handle('h', (p, ctx) => new Promise((resolve) => setTimeout(() => resolve(p), ctx.signal.aborted ? 0 : 1)));
    let ws = await fake.socket(0);
    for (let i = 0; i < n; i++) {
      if (ws.readyState !== 1 || !ws.onmessage) ws = await fake.until(() => fake.sockets.findLast((s) => s.readyState === 1 && s.onmessage));
      const seedMsg = seeds[Math.floor(r() * seeds.length)];
      const msg = text(mutate(seedMsg, r), r);
      // Keep calls, streams and subscriptions open for the mutations to hit.
      if (i % 50 === 0 && c._waiting < 100) {
        c.call('x', [i], { timeout: 100 }).catch(() => {});
        c.stream('s', [i], { window: 2, timeout: 100 }).result.catch(() => {});
      }
      assert.doesNotThrow(() => ws.onmessage({ data: msg }), `message ${JSON.stringify(msg)}`);
      if (i % 100 === 0) await new Promise((res) => setImmediate(res));
    }
    for (const s of fake.sockets) {
      for (const t of s.sent) {
        const m = JSON.parse(t);
        for (const one of Array.isArray(m) ? m : [m]) assert.equal(one.jsonrpc, '2.0', t);
      }
    }
    assert.deepEqual(bugs, []);
    // Still working.
    const p = c.call('still', []);
    ws = await fake.until(() => fake.sockets.find((s) => s.sent.some((t) => t.includes('"still"'))));
    const req = await fake.sentOn(ws, (m) => m.method === 'still');
    fake.push(ws, { jsonrpc: '2.0', id: req.id, result: 'yes' });
    assert.equal(await p, 'yes');
    await c.close();
  });
});
