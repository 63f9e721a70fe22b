// Timers longer than setTimeout holds (2^31 - 1 ms, about 24.8 days): the
// deadline of a call, of a handler, the refresh of a long-lived credential.
import { describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { later, cancel, MAX_DELAY } from '../src/timer.js';
import { connect, Client } from '../src/index.js';
import { FakeServer } from './fake.js';

describe('timers', () => {
  it('later waits out delays beyond 2^31 - 1 ms in steps, and cancel stops it', () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
    try {
      const month = 30 * 24 * 3600 * 1000; // more than MAX_DELAY
      assert.ok(month > MAX_DELAY);
      let fired = 0;
      later(() => fired++, month);
      mock.timers.tick(MAX_DELAY);
      assert.equal(fired, 0, 'fired after MAX_DELAY, before the month');
      mock.timers.tick(month - MAX_DELAY - 1);
      assert.equal(fired, 0, 'fired a millisecond early');
      mock.timers.tick(1);
      assert.equal(fired, 1);
      mock.timers.tick(month);
      assert.equal(fired, 1, 'fired twice');

      let short = 0;
      later(() => short++, 5);
      later(() => short++, -5); // as 0
      mock.timers.tick(5);
      assert.equal(short, 2);

      let cancelled = 0;
      const h = later(() => cancelled++, 3 * MAX_DELAY);
      mock.timers.tick(MAX_DELAY + 10); // past the first step
      cancel(h);
      mock.timers.tick(3 * MAX_DELAY);
      assert.equal(cancelled, 0);
      cancel(undefined);
    } finally {
      mock.timers.reset();
    }
  });

  it('a call with a timeout of a month waits for its reply; Infinity is no deadline', async () => {
    const fake = new FakeServer();
    const c = await connect('ws://fake/rpc', { WebSocket: fake.WebSocket });
    const ws = await fake.socket(0);
    const month = 30 * 24 * 3600 * 1000;
    const p = c.call('m', [], { timeout: month });
    const req = await fake.sentOn(ws);
    assert.ok(req.$timeout > MAX_DELAY && req.$timeout <= month, `$timeout ${req.$timeout}`);
    // A delay that a timer of 1 ms (what setTimeout makes of a month) would beat.
    await new Promise((r) => setTimeout(r, 20));
    fake.push(ws, { jsonrpc: '2.0', id: req.id, result: 'late but in time' });
    assert.equal(await p, 'late but in time');

    const q = c.call('m', [], { timeout: Infinity });
    const req2 = await fake.sentOn(ws, (m) => m.id !== req.id);
    assert.equal(Object.hasOwn(req2, '$timeout'), false, JSON.stringify(req2));
    fake.push(ws, { jsonrpc: '2.0', id: req2.id, result: 2 });
    assert.equal(await q, 2);

    // The server's call with a deadline of a month: the handler is not aborted at once.
    let aborted = false;
    let release;
    c.handle('long', (params, ctx) => new Promise((resolve) => {
      release = resolve;
      ctx.signal.addEventListener('abort', () => { aborted = true; });
    }));
    fake.push(ws, { jsonrpc: '2.0', id: 'L', method: 'long', $timeout: month });
    await fake.until(() => release);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(aborted, false);
    release('ok');
    assert.equal((await fake.sentOn(ws, (m) => m.id === 'L')).result, 'ok');
    await c.close();
  });

  it('does not refresh a credential that lives a month until near its expiry', async () => {
    const fake = new FakeServer();
    let asked = 0;
    const c = await connect('ws://fake/rpc', { WebSocket: fake.WebSocket, credentials: async () => { asked++; return { token: 't' }; } });
    const ws = await fake.socket(0);
    const month = 30 * 24 * 3600 * 1000;
    fake.push(ws, { jsonrpc: '2.0', method: '$/auth.expiry', params: { expiresIn: month } });
    await fake.until(() => c.authExpiry !== null);
    assert.ok(c.authExpiry > Date.now() + MAX_DELAY, `authExpiry ${c.authExpiry}`);
    // A delay that a timer of 1 ms (what setTimeout makes of a month) would beat.
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(asked, 0);
    assert.equal(ws.sent.filter((m) => m.includes('$/auth.refresh')).length, 0);
    await c.close();
  });

  it('refuses options setTimeout cannot hold', () => {
    const WebSocket = new FakeServer().WebSocket;
    assert.throws(() => new Client('ws://fake/rpc', { WebSocket, backoff: { base: 1, max: 2 ** 31 } }), /backoff/);
    assert.throws(() => new Client('ws://fake/rpc', { WebSocket, handshakeTimeout: 2 ** 31 }), /handshakeTimeout/);
    assert.throws(() => new Client('ws://fake/rpc', { WebSocket, heartbeat: { interval: 2 ** 31 } }), /heartbeat/);
  });
});
