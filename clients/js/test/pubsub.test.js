// Pub/sub against a real `wsrpc serve` (its demo topics: chat.> open to
// clients with 1000 kept per topic, time published by the server every
// second): subscribe, publish, echo and publisher exclusion, recovery after
// a lost connection, a new epoch after a restart, a reader that lags.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, Codes } from '../src/index.js';
import { Server, Proxy, noGo, waitFor } from './helpers.js';

const fast = { backoff: { base: 20, max: 200 } };

async function take(sub, n) {
  const out = [];
  for await (const p of sub) {
    out.push(p);
    if (out.length === n) break;
  }
  return out;
}

/** takeKeep reads n publications without ending the subscription. */
async function takeKeep(sub, n) {
  const out = [];
  while (out.length < n) {
    const { value, done } = await sub.next();
    if (done) break;
    out.push(value);
  }
  return out;
}

for (const codec of ['json', 'binary']) describe(`pubsub (${codec})`, { skip: noGo }, () => {
  let srv;
  let pub; // a publisher on a direct connection
  const cleanup = [];
  before(async () => {
    srv = await Server.start();
    pub = await connect(srv.url, { codec });
  });
  after(async () => {
    for (const f of cleanup.reverse()) await f();
    await pub?.close();
    await srv?.stop();
  });

  it('subscribes, publishes, and leaves its own publications out unless echo', async () => {
    const c = await connect(srv.url, { codec });
    cleanup.push(() => c.close());
    const mine = await c.subscribe('chat.a');
    const echoed = await c.subscribe('chat.>', { echo: true });
    const pos = await c.publish('chat.a', { n: 1 });
    assert.equal(pos.offset, 1);
    assert.equal(typeof pos.epoch, 'string');
    await pub.publish('chat.a', { n: 2 });
    const [e1, e2] = await takeKeep(echoed, 2);
    assert.deepEqual([e1.data, e2.data], [{ n: 1 }, { n: 2 }]);
    assert.equal(e1.topic, 'chat.a');
    // The own publication comes as a position only: the first delivered is n: 2, no gap.
    const [m] = await takeKeep(mine, 1);
    assert.deepEqual(m, { topic: 'chat.a', offset: 2, epoch: pos.epoch, data: { n: 2 }, gap: false });
    assert.deepEqual(mine.position, { offset: 2, epoch: pos.epoch });
    await mine.unsubscribe();
    assert.equal((await mine.next()).done, true);
  });

  it('refuses bad topics locally and reports the server\'s refusals', async () => {
    await assert.rejects(pub.subscribe('chat..x'), (e) => e.code === Codes.INVALID_PARAMS);
    await assert.rejects(pub.subscribe('chat.>', { since: { offset: 1, epoch: 'x' } }), (e) => e.code === Codes.INVALID_PARAMS && /pattern/.test(e.message));
    await assert.rejects(pub.publish('chat.*', 1), (e) => e.code === Codes.INVALID_PARAMS);
    await assert.rejects(pub.publish('time', 'no'), (e) => e.code === Codes.PERMISSION_DENIED);
    const s = await pub.subscribe('chat.dup');
    await assert.rejects(pub.subscribe('chat.dup'), /already subscribed/);
    await s.unsubscribe();
  });

  it('recovers what it missed while its connection was down', async () => {
    const px = await Proxy.start(srv.port);
    cleanup.push(() => px.close());
    const c = await connect(px.url, { ...fast, codec });
    cleanup.push(() => c.close());
    const s = await c.subscribe('chat.rec');
    await pub.publish('chat.rec', 'a');
    const [a] = await takeKeep(s, 1);
    assert.equal(a.data, 'a');
    px.refuse = true;
    px.cut();
    await waitFor(() => c.status === 'reconnecting', 5000);
    for (const x of ['b', 'c', 'd']) await pub.publish('chat.rec', x);
    px.refuse = false;
    const got = await takeKeep(s, 3);
    assert.deepEqual(got.map((p) => [p.data, p.offset, p.gap]), [['b', 2, false], ['c', 3, false], ['d', 4, false]]);
    await pub.publish('chat.rec', 'e');
    const [e] = await takeKeep(s, 1);
    assert.deepEqual([e.data, e.offset, e.gap], ['e', 5, false]);
  });

  it('starts from a position kept from an earlier run (since)', async () => {
    const p1 = await pub.publish('chat.since', 1);
    await pub.publish('chat.since', 2);
    await pub.publish('chat.since', 3);
    const c = await connect(srv.url, { codec });
    cleanup.push(() => c.close());
    const s = await c.subscribe('chat.since', { since: p1 });
    const got = await take(s, 2);
    assert.deepEqual(got.map((p) => p.data), [2, 3]);
  });

  it('holds at most its buffer for a reader that lags, and recovers the rest from the history', async () => {
    const c = await connect(srv.url, { codec });
    cleanup.push(() => c.close());
    const s = await c.subscribe('chat.slow', { buffer: 3 });
    for (let i = 1; i <= 20; i++) await pub.publish('chat.slow', i);
    await waitFor(() => s._stalled, 5000);
    assert.ok(s._queue.length <= 3, `queue ${s._queue.length}`);
    const got = await takeKeep(s, 20);
    assert.deepEqual(got.map((p) => p.data), Array.from({ length: 20 }, (_, i) => i + 1));
    assert.ok(got.every((p) => !p.gap));
  });

  it('subscribes to patterns', async () => {
    const c = await connect(srv.url, { codec });
    cleanup.push(() => c.close());
    const s = await c.subscribe('chat.team.*');
    await pub.publish('chat.team.dev', 'x');
    await pub.publish('chat.team.ops', 'y');
    const got = await take(s, 2);
    assert.deepEqual(got.map((p) => [p.topic, p.data]), [['chat.team.dev', 'x'], ['chat.team.ops', 'y']]);
    assert.equal(s.ended, true); // break ended it
  });

  it('goes on after the server restarts: a new epoch, flagged as a gap', async () => {
    const own = await Server.start();
    let cur = own;
    cleanup.push(() => cur.stop());
    const c = await connect(own.url, { ...fast, codec });
    cleanup.push(() => c.close());
    const s = await c.subscribe('chat.epoch');
    await c.publish('chat.epoch', 'before'); // publisher exclusion: a position only
    const oldPos = s.position;
    cur = await own.restart('SIGTERM');
    await waitFor(() => c.status === 'connected' && s._conn?.usable && s._conn !== null && s.position?.epoch !== oldPos.epoch, 10_000);
    const other = await connect(cur.url, { codec });
    cleanup.push(() => other.close());
    await other.publish('chat.epoch', 'after');
    const [p] = await takeKeep(s, 1);
    assert.equal(p.data, 'after');
    assert.notEqual(p.epoch, oldPos.epoch);
    assert.equal(p.gap, true); // what the old stream had after our position may be lost
  });
});
