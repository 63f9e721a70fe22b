// Streams against a real `wsrpc serve` (its countdown stream): results in
// order under credit, the final value, cancel and deadline mid-stream seen
// by the server, a stream cut by a lost connection.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, Codes } from '../src/index.js';
import { Server, Proxy, noGo, waitFor } from './helpers.js';

for (const codec of ['json', 'binary']) describe(`streams (${codec})`, { skip: noGo }, () => {
  let srv;
  let c;
  before(async () => {
    srv = await Server.start();
    c = await connect(srv.url, { codec });
  });
  after(async () => {
    await c?.close();
    await srv?.stop();
  });

  it('gives the results in order, then the final value', async () => {
    const s = c.stream('countdown', { from: 300, interval_ms: 0 }, { window: 4 });
    const got = [];
    for await (const x of s) got.push(x);
    assert.deepEqual(got, Array.from({ length: 300 }, (_, i) => 300 - i));
    assert.equal(await s.result, 'liftoff');
    // Credit went out as the results were read, never more than 4096 ahead.
    assert.ok(s._granted >= 300 && s._granted <= 300 + 4096, `granted ${s._granted}`);
  });

  it('holds the callee to the credit while the reader does not read', async () => {
    const s = c.stream('countdown', { from: 10000, interval_ms: 0 }, { window: 8 });
    // Nothing read: the server sends the 8 of the initial credit, then waits.
    await waitFor(() => s.received >= 8, 5000);
    await new Promise((r) => setTimeout(r, 300)); // room for a 9th, which must not come
    assert.equal(s.received, 8);
    assert.equal((await s.next()).value, 10000); // grants up to 4096 more, fewer than the 10000
    s.cancel();
    assert.equal((await s.next()).done, true);
    await assert.rejects(s.result, (e) => e.code === Codes.CANCELED);
    await srv.waitLog(/method=countdown .*code=-32001/);
  });

  it('cancels on the server when the loop breaks early', async () => {
    const before = srv.logs.filter((l) => /method=countdown .*code=-32001/.test(l)).length;
    const s = c.stream('countdown', { from: 50, interval_ms: 20 });
    for await (const x of s) if (x === 48) break;
    await waitFor(() => srv.logs.filter((l) => /method=countdown .*code=-32001/.test(l)).length > before, 5000);
  });

  it('bounds a stream by its timeout', async () => {
    const s = c.stream('countdown', { from: 100, interval_ms: 50 }, { timeout: 300 });
    const got = [];
    await assert.rejects((async () => { for await (const x of s) got.push(x); })(), (e) => e.code === Codes.DEADLINE_EXCEEDED);
    assert.ok(got.length > 0 && got.length < 100, `${got.length} results`);
  });

  it('says a stream was cut when the connection is lost', async () => {
    const px = await Proxy.start(srv.port);
    const d = await connect(px.url, { codec, backoff: { base: 20, max: 200 } });
    try {
      const s = d.stream('countdown', { from: 100, interval_ms: 20 });
      const got = [];
      await assert.rejects((async () => {
        for await (const x of s) {
          got.push(x);
          if (got.length === 3) px.cut();
        }
      })(), (e) => e.code === Codes.CONNECTION_LOST && /cut before it ended/.test(e.message));
      assert.ok(got.length >= 3);
    } finally {
      await d.close();
      await px.close();
    }
  });

  it('is cancelled by the caller\'s signal without AbortSignal.any (Node < 20.3), and lets go of it', async () => {
    const any = AbortSignal.any;
    AbortSignal.any = undefined;
    try {
      const pre = c.stream('countdown', { from: 3, interval_ms: 0 }, { signal: AbortSignal.abort() });
      await assert.rejects(pre.result, (e) => e.code === Codes.CANCELED);
      const ac = new AbortController();
      const listeners = [];
      const add = ac.signal.addEventListener.bind(ac.signal);
      const remove = ac.signal.removeEventListener.bind(ac.signal);
      ac.signal.addEventListener = (t, fn, o) => { listeners.push(fn); add(t, fn, o); };
      ac.signal.removeEventListener = (t, fn, o) => { listeners.splice(listeners.indexOf(fn), 1); remove(t, fn, o); };
      const done = c.stream('countdown', { from: 2, interval_ms: 0 }, { signal: ac.signal });
      for await (const x of done) void x;
      assert.equal(await done.result, 'liftoff');
      assert.equal(listeners.length, 0, 'a listener left on the caller\'s signal');
      const s = c.stream('countdown', { from: 1000, interval_ms: 5 }, { signal: ac.signal });
      assert.equal(typeof (await s.next()).value, 'number');
      ac.abort();
      await assert.rejects(s.result, (e) => e.code === Codes.CANCELED);
      assert.equal(listeners.length, 0);
    } finally {
      AbortSignal.any = any;
    }
  });

  it('refuses a window out of range', () => {
    assert.throws(() => c.stream('countdown', {}, { window: 0 }), RangeError);
  });
});
