// The binary codec against docs/PROTOCOL.md: every hex example of section
// 3.6 and the wsrpc.v1 session of section 14.2 decoded, and re-encoded
// byte for byte where the example is what an encoder writes; then the
// codec on a connection (a scripted peer) and fuzzed.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { binaryCodec as B } from '../src/binary.js';
import { connect, Codes } from '../src/index.js';
import { FakeServer } from './fake.js';
import { repoRoot } from './helpers.js';

const doc = readFileSync(join(repoRoot, 'docs', 'PROTOCOL.md'), 'utf8');

/** hexBlocks returns the ```hex blocks of the doc: {tag, bytes, title}. */
function hexBlocks() {
  const out = [];
  const re = /^#### (.*)\n[\s\S]*?```hex ?(\w*)\n([\s\S]*?)```/gm;
  for (const m of doc.matchAll(re)) {
    out.push({ title: m[1], tag: m[2], bytes: bytesOf(m[3]) });
  }
  return out;
}

/** bytesOf reads the hex column of a dump: pairs (or runs of pairs) before two spaces. */
function bytesOf(text) {
  const b = [];
  for (const line of text.split('\n')) {
    const col = line.split(/ {2,}/)[0].trim();
    if (!col) continue;
    for (const group of col.split(' ')) {
      assert.match(group, /^([0-9a-f]{2})+$/, `hex ${JSON.stringify(group)} in ${JSON.stringify(line)}`);
      for (let i = 0; i < group.length; i += 2) b.push(parseInt(group.slice(i, i + 2), 16));
    }
  }
  return new Uint8Array(b);
}

/** reencode writes an entry back as the encoder would, or null for what the client never sends. */
function reencode(e, title) {
  switch (e.kind) {
    case 'request':
      return B.request({ id: e.id, method: e.method, params: e.params, timeoutMs: e.timeoutMs, meta: e.meta });
    case 'notification':
      if (e.method === '$/cancelRequest') return B.cancel(e.params.id);
      if (e.method === '$/shutdown') return B.shutdown(e.params.retryAfterMs, e.params.reason);
      return B.notification({ method: e.method, params: e.params, meta: e.meta });
    case 'result':
      return B.result(e.id, e.result);
    case 'error':
      return B.error(e.id, e.code, e.message, e.data);
  }
  throw new Error(`${title}: ${e.kind}`);
}

const hex = (b) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(' ');

describe('wsrpc.v1 codec', () => {
  it('decodes every hex example of PROTOCOL.md, and writes the encoder\'s ones byte for byte', () => {
    const blocks = hexBlocks();
    assert.ok(blocks.length >= 17, `${blocks.length} blocks`);
    const seen = new Set();
    for (let i = 0; i < blocks.length; i++) {
      const { title, tag, bytes } = blocks[i];
      seen.add(tag);
      const d = B.decode(bytes);
      switch (tag) {
        case '': {
          assert.ok(!d.close, `${title}: ${d.close?.reason}`);
          assert.equal(d.entries.length, 1, title);
          assert.equal(hex(reencode(d.entries[0], title)), hex(bytes), title);
          break;
        }
        case 'received':
          assert.ok(!d.close, `${title}: ${d.close?.reason}`);
          if (bytes[0] === 0x40) assert.deepEqual(d.entries, [{ kind: 'dropped' }], title);
          else assert.deepEqual(d.entries[0], { kind: 'request', id: 3, method: 'ping', params: undefined, timeoutMs: 0, meta: { k: 'v' } }, title);
          break;
        case 'answered': {
          // Refused for its metadata: the answer is the next example, byte for byte.
          const [e] = d.entries;
          assert.equal(e.kind, 'invalid', title);
          assert.equal(hex(B.error(e.id, e.code, e.why)), hex(blocks[i + 1].bytes), title);
          break;
        }
        case 'dropped':
          assert.deepEqual(d.entries, [{ kind: 'dropped' }], title);
          break;
        case 'malformed':
          assert.equal(d.close.code, 1002, title);
          assert.match(d.close.reason, /^malformed wsrpc.v1 message: unknown message kind 10$/);
          break;
        case 'packed':
          assert.deepEqual(d.entries.map((e) => [e.kind, e.method, e.params]), [['notification', 'tick', 1], ['notification', 'tick', 2]]);
          break;
        default:
          assert.fail(`unknown block tag ${tag}`);
      }
    }
    assert.deepEqual([...seen].sort(), ['', 'answered', 'dropped', 'malformed', 'packed', 'received']);
  });

  it('writes and reads the stream session of section 14.2', () => {
    const m = /The same on `wsrpc\.v1`[\s\S]*?```\n([\s\S]*?)```/.exec(doc);
    assert.ok(m, 'the session is in PROTOCOL.md');
    const lines = m[1].trim().split('\n').map((l) => bytesOf(l));
    assert.equal(hex(B.request({ id: 1, method: 'countdown', params: { from: 3 }, stream: 2 })), hex(lines[0]));
    for (const [i, want] of [[1, 3], [2, 2], [4, 1]]) {
      assert.deepEqual(B.decode(lines[i]).entries, [{ kind: 'notification', method: '$/stream.item', params: { id: 1, item: want } }]);
    }
    assert.equal(hex(B.credit(1, 1)), hex(lines[3]));
    assert.deepEqual(B.decode(lines[5]).entries, [{ kind: 'result', id: 1, result: 'liftoff' }]);
  });

  it('refuses what section 3.4 calls malformed, with 1002', () => {
    const tests = [
      [[], 'message ends in kind'],
      [[0x00, 0x00], 'unknown message kind 0'],
      [[0x01, 0x05, 0x01], 'extension block longer than the frame'],
      [[0x01, 0x00, 0x80], 'bad varint in id'],
      [[0x01, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], 'bad varint in id'],
      [[0x05, 0x00, 0x01, 0x00], 'bytes after the id of a cancel'],
      [[0x09, 0x00, 0x01, 0x00], 'a stream credit of 0'],
      [[0x07, 0x00], 'an empty packed message'],
      [[0x07, 0x00, 0x03, 0x03, 0x00, 0x01], 'packed message of kind 3'],
      [[0x02, 0x00, 0x02, 0xc3, 0x28], 'method is not valid UTF-8'],
      [[0x04, 0x00, 0x01, 0xff, 0xff, 0xff, 0xff, 0x1f, 0x00], 'error code out of the signed 32-bit range'],
    ];
    for (const [give, want] of tests) {
      const d = B.decode(new Uint8Array(give));
      assert.equal(d.close?.code, 1002, hex(give));
      assert.equal(d.close.reason, `malformed wsrpc.v1 message: ${want}`, hex(give));
    }
  });

  it('carries ids and timeouts beyond 2^53, and large credits', () => {
    const big = 2n ** 64n - 1n;
    const d = B.decode(B.request({ id: big, method: 'm', timeoutMs: 1.0004 }));
    assert.equal(d.entries[0].id, big);
    assert.equal(d.entries[0].timeoutMs, 1.001); // rounded up to a whole microsecond
    assert.equal(B.decode(B.result(big, 1)).entries[0].id, big);
    assert.equal(B.decode(B.request({ id: 2 ** 53 - 1, method: 'm' })).entries[0].id, 2 ** 53 - 1);
  });

  it('on a connection: binary messages only; a text one is 1003, a malformed one 1002', async () => {
    const fake = new FakeServer({ protocol: 'wsrpc.v1' });
    const c = await connect('ws://fake/rpc', { WebSocket: fake.WebSocket, codec: 'binary', backoff: { base: 1, max: 2 } });
    const ws = await fake.socket(0);
    assert.deepEqual(ws.protocols, ['wsrpc.v1']);
    const p = c.call('echo', 'any value', { metadata: { k: 'v' } }); // not only arrays and objects (section 3.5)
    await fake.until(() => ws.sent.length === 1);
    const req = B.decode(ws.sent[0]).entries[0];
    assert.deepEqual(req, { kind: 'request', id: 1, method: 'echo', params: 'any value', timeoutMs: 0, meta: { k: 'v' } });
    fake.push(ws, B.result(1, 'any value'));
    assert.equal(await p, 'any value');
    c.handle('h', (params) => params);
    fake.push(ws, B.request({ id: 7, method: 'h', params: [1] }));
    await fake.until(() => ws.sent.length === 2);
    assert.deepEqual(B.decode(ws.sent[1]).entries[0], { kind: 'result', id: 7, result: [1] });
    fake.push(ws, 'text');
    assert.equal(ws.closedWith.code, 1003);
    const ws2 = await fake.until(() => fake.sockets[1]?.onmessage && fake.sockets[1]);
    fake.push(ws2, new Uint8Array([0x0a, 0x00]));
    assert.deepEqual(ws2.closedWith, { code: 1002, reason: 'malformed wsrpc.v1 message: unknown message kind 10' });
    await c.close();
    await assert.rejects(connect('ws://fake/rpc', { WebSocket: fake.WebSocket, codec: 'json' }), /wsrpc\.v1.*not offered/);
  });

  it('survives mutated binary messages', async () => {
    let s = 7;
    const r = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const seeds = [
      B.result(1, { a: [1, 2] }), B.error(2, -32601, 'nope', { x: 1 }), B.request({ id: 3, method: 'h', params: [1], timeoutMs: 5, meta: { k: 'v' } }),
      B.notification({ method: '$/publication', params: { sub: 1, topic: 't', offset: 1, epoch: 'E', data: 1 } }), B.cancel(3), B.shutdown(5, 'bye'),
      ...hexBlocks().map((b) => b.bytes),
    ];
    const fake = new FakeServer({ protocol: 'wsrpc.v1' });
    const c = await connect('ws://fake/rpc', { WebSocket: fake.WebSocket, codec: 'binary', backoff: { base: 1, max: 2 } });
    const bugs = [];
    c.addEventListener('error', (e) => { if (!e.error?.code) bugs.push(e.error); });
    c.handle('h', (p) => p);
    const mutate = () => {
      const m = new Uint8Array(seeds[Math.floor(r() * seeds.length)]);
      const flips = 1 + Math.floor(r() * 3);
      for (let k = 0; k < flips && m.length > 0; k++) m[Math.floor(r() * m.length)] = Math.floor(r() * 256);
      return r() < 0.2 ? m.subarray(0, Math.floor(r() * m.length)) : m;
    };
    // The decoder alone, fast: it never throws, and what it reads it can write.
    const n = Number(process.env.FUZZ_ITERATIONS ?? 3000);
    for (let i = 0; i < n * 10; i++) {
      const m = mutate();
      const d = B.decode(m);
      if (d.close) continue;
      for (const e of d.entries) {
        if (['request', 'result', 'error'].includes(e.kind) || (e.kind === 'notification' && e.method !== '$/stream.item')) {
          assert.ok(!B.decode(reencode(e, hex(m))).close, hex(m));
        }
      }
    }
    // On a connection (each malformed one costs a reconnect: fewer).
    for (let i = 0; i < n / 10; i++) {
      const ws = await fake.until(() => fake.sockets.findLast((x) => x.readyState === 1 && x.onmessage));
      const cut = mutate();
      if (i % 40 === 0 && c._waiting < 50) c.call('x', [i], { timeout: 50 }).catch(() => {});
      assert.doesNotThrow(() => ws.onmessage({ data: cut }), hex(cut));
      if (i % 100 === 0) await new Promise((res) => setImmediate(res));
    }
    for (const ws of fake.sockets) {
      if (ws.closedWith) assert.ok([1000, 1002, 1003].includes(ws.closedWith.code), JSON.stringify(ws.closedWith));
      for (const m of ws.sent) assert.ok(!B.decode(m).close, `the client sent a malformed message ${hex(m)}`);
    }
    assert.deepEqual(bugs, []);
    await c.close();
    assert.equal(Codes.CONNECTION_LOST, -32006);
  });
});
