// Reconnects against real `wsrpc serve` processes: a graceful restart with
// a call in flight, an abrupt loss (a proxy that resets every connection),
// the retry table, several endpoints, waiting for the server.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { connect, Client, Codes, ConnectError, Status, jitter } from '../src/index.js';
import { refreshAt } from '../src/auth.js';
import { retryAfter } from '../src/client.js';
import { spreadHint } from '../src/backoff.js';
import { Server, Proxy, noGo, waitFor } from './helpers.js';

const fast = { backoff: { base: 20, max: 200 } };

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function statuses(c) {
  const seen = [];
  c.addEventListener('status', (e) => seen.push(e.status));
  return seen;
}

describe('reconnect', { skip: noGo }, () => {
  const cleanup = [];
  after(async () => {
    for (const f of cleanup.reverse()) await f();
  });

  it('rides out a graceful restart: the call in flight finishes, new calls wait for the new server', async () => {
    let srv = await Server.start();
    cleanup.push(() => srv.stop());
    const c = await connect(srv.url, fast);
    cleanup.push(() => c.close());
    const seen = statuses(c);
    const notices = [];
    c.addEventListener('shutdown', (e) => notices.push(e));
    const first = (await c.call('whoami')).conn_id;
    const inFlight = c.call('sleep', { ms: 400 });
    await waitFor(() => c._conn?.pending.size === 1);
    const restarted = srv.restart('SIGTERM').then((s) => { srv = s; });
    await waitFor(() => notices.length === 1, 5000);
    // Made after the notice: it waits for the next connection.
    const queued = c.call('add', [4, 5]);
    assert.deepEqual(await inFlight, { slept_ms: 400 });
    await restarted;
    assert.equal(await queued, 9);
    const second = (await c.call('whoami')).conn_id;
    assert.notEqual(second, first);
    assert.equal(typeof notices[0].retryAfterMs, 'number');
    assert.deepEqual(seen.slice(0, 2), [Status.RECONNECTING, Status.CONNECTED]);
  });

  it('retries an idempotent call after a lost connection and reports an unknown outcome otherwise', async () => {
    const srv = await Server.start();
    cleanup.push(() => srv.stop());
    const px = await Proxy.start(srv.port);
    cleanup.push(() => px.close());
    const c = await connect(px.url, fast);
    cleanup.push(() => c.close());
    const lost = c.call('sleep', { ms: 300 });
    const retried = c.call('sleep', { ms: 300 }, { idempotent: true });
    await waitFor(() => c._conn?.pending.size === 2);
    px.cut();
    await assert.rejects(lost, (e) => e.code === Codes.CONNECTION_LOST && /outcome is unknown/.test(e.message));
    assert.deepEqual(await retried, { slept_ms: 300 });
    assert.equal(c.status, Status.CONNECTED);
  });

  it('moves over its endpoints, and fails the first connection when none answers', async () => {
    const srv = await Server.start();
    cleanup.push(() => srv.stop());
    const dead = `ws://127.0.0.1:${await freePort()}/rpc`;
    const c = await connect([dead, srv.url], fast);
    cleanup.push(() => c.close());
    assert.equal(c.url, srv.url);
    assert.equal(await c.call('add', [1, 1]), 2);
    await assert.rejects(connect(dead), (e) => e instanceof ConnectError && e.url === dead);
  });

  it('waits for a server that is not up yet with waitForServer', async () => {
    const port = await freePort();
    const c = new Client(`ws://127.0.0.1:${port}/rpc`, { ...fast, waitForServer: true });
    cleanup.push(() => c.close());
    const errors = [];
    c.addEventListener('error', (e) => errors.push(e.error));
    const early = c.call('add', [2, 3]); // waits for the connection
    await waitFor(() => errors.length >= 2, 5000); // refused, retried
    const srv = await Server.start({ port });
    cleanup.push(() => srv.stop());
    await c.ready();
    assert.equal(await early, 5);
  });

  it('waits the Retry-After of a handshake refused under a handshake rate, not the backoff', async () => {
    // One handshake in two seconds: the second client's first attempt gets 503.
    const srv = await Server.start({ args: ['--handshake-rate', '0.5', '--handshake-burst', '1'] });
    cleanup.push(() => srv.stop());
    const first = await connect(srv.url);
    cleanup.push(() => first.close());
    const sleeps = [];
    class Watched extends Client {
      _sleep(ms) {
        sleeps.push(ms);
        return super._sleep(ms);
      }
    }
    const c = new Watched(srv.url, { backoff: { base: 1, max: 1 }, waitForServer: true });
    cleanup.push(() => c.close());
    const errors = [];
    c.addEventListener('error', (e) => errors.push(e.error));
    await c.ready();
    const refused = errors.find((e) => e instanceof ConnectError && e.status === 503);
    assert.ok(refused, `no 503 among ${errors.map((e) => e.message)}`);
    assert.ok(refused.retryAfterMs >= 1000, `retryAfterMs ${refused.retryAfterMs}`);
    // The wait after the refusal is its Retry-After (up to a quarter more), not the 1 ms backoff.
    const h = Math.min(refused.retryAfterMs, 60_000);
    const waited = sleeps[errors.indexOf(refused)];
    assert.ok(waited >= h && waited <= h + h / 4, `waited ${waited} for a Retry-After of ${h}`);
    assert.equal(await c.call('add', [1, 1]), 2);
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    const now = Date.parse('Tue, 01 Dec 2026 18:00:00 GMT');
    assert.equal(retryAfter('3', now), 3000);
    assert.equal(retryAfter(' 0 ', now), 0);
    assert.equal(retryAfter('Tue, 01 Dec 2026 18:00:05 GMT', now), 5000);
    assert.equal(retryAfter('Tue, 01 Dec 2026 17:00:00 GMT', now), 0);
    for (const bad of [undefined, '', '-1', '1.5', 'soon', '12abc']) assert.equal(retryAfter(bad, now), undefined, String(bad));
    assert.equal(retryAfter('99999999999', now), 2 ** 31 - 1);
  });

  it('with reconnect off, fails calls once the connection is gone', async () => {
    const srv = await Server.start();
    cleanup.push(() => srv.stop());
    const px = await Proxy.start(srv.port);
    cleanup.push(() => px.close());
    const c = await connect(px.url, { reconnect: false });
    cleanup.push(() => c.close());
    px.cut();
    await waitFor(() => c.status === Status.CLOSED, 5000);
    await assert.rejects(c.call('add', [1]), (e) => e.code === Codes.UNAVAILABLE && /reconnect is off/.test(e.message));
  });

  it('bounds the calls waiting for a connection, and their wait', async () => {
    const srv = await Server.start();
    cleanup.push(() => srv.stop());
    const px = await Proxy.start(srv.port);
    cleanup.push(() => px.close());
    const c = await connect(px.url, { ...fast, queueSize: 1 });
    cleanup.push(() => c.close());
    px.refuse = true;
    px.cut();
    await waitFor(() => c.status === Status.RECONNECTING, 5000);
    const waiting = c.call('add', [1, 2], { timeout: 5000 });
    await assert.rejects(c.call('add', [1]), (e) => e.code === Codes.UNAVAILABLE && /queue full/.test(e.message));
    const ac = new AbortController();
    px.refuse = false;
    assert.equal(await waiting, 3);
    // A wait bounded by its deadline.
    px.refuse = true;
    px.cut();
    await waitFor(() => c.status === Status.RECONNECTING, 5000);
    await assert.rejects(c.call('add', [1], { timeout: 100 }), (e) => e.code === Codes.DEADLINE_EXCEEDED && /waiting for a connection/.test(e.message));
    await assert.rejects(c.call('add', [1], { signal: AbortSignal.abort() }), (e) => e.code === Codes.CANCELED);
    // Closing fails what waits, as closed.
    const w = c.call('add', [1], { signal: ac.signal });
    await c.close();
    await assert.rejects(w, (e) => e.code === Codes.UNAVAILABLE && e.closed);
  });

  it('finds a silent server by its heartbeat and moves to a new connection', async () => {
    const srv = await Server.start();
    cleanup.push(() => srv.stop());
    const px = await Proxy.start(srv.port);
    cleanup.push(() => px.close());
    const c = await connect(px.url, { ...fast, heartbeat: { interval: 50, timeout: 300 } });
    cleanup.push(() => c.close());
    const gone = [];
    c.addEventListener('disconnect', (e) => gone.push(e.code));
    const first = c._conn;
    await waitFor(() => first.stats.pongs >= 3, 5000); // a live server answers
    assert.deepEqual(gone, []);
    px.freeze(); // the server, or the network, goes silent: no close, no error
    await waitFor(() => gone.length === 1, 5000);
    assert.equal(gone[0], 1006);
    assert.equal(await c.call('add', [1, 2]), 3); // on a new connection
    assert.notEqual(c._conn, first);
  });

  it('refreshes a lifetime L between L - lead and L - lead/2 (lead: L/2, at most a minute)', () => {
    assert.equal(refreshAt(1000, () => 0), 500);
    assert.equal(refreshAt(1000, () => 0.999999), 749);
    assert.equal(refreshAt(3_600_000, () => 0), 3_540_000); // a one-hour token: 59 minutes
    assert.equal(refreshAt(3_600_000, () => 0.999999), 3_569_999); // up to 59.5
  });

  it('spreads a retry hint over [h, h + h/4], never sooner', () => {
    assert.equal(spreadHint(0, () => 0.5), 0);
    assert.equal(spreadHint(-5, () => 0.5), 0);
    assert.equal(spreadHint(1000, () => 0), 1000);
    assert.equal(spreadHint(1000, () => 0.999999), 1250);
    for (let i = 0; i < 1000; i++) {
      const w = spreadHint(4000);
      assert.ok(w >= 4000 && w <= 5000 && Number.isInteger(w), String(w));
    }
  });

  it('draws full-jitter delays: within [0, min(max, base*2^n)]', () => {
    assert.equal(jitter(100, 10000, 0, () => 0.999999), 100);
    assert.equal(jitter(100, 10000, 3, () => 0.999999), 800);
    assert.equal(jitter(100, 10000, 20, () => 0.999999), 10000);
    assert.equal(jitter(100, 10000, 5, () => 0), 0);
    for (let n = 0; n < 12; n++) {
      const d = jitter(100, 10000, n);
      assert.ok(d >= 0 && d <= Math.min(10000, 100 * 2 ** n), `${d} at ${n}`);
    }
  });
});
