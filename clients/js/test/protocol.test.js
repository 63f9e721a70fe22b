// The exchanges of docs/PROTOCOL.md that a real server does not produce on
// demand, against a scripted peer (fake.js): the exact messages sent,
// credit, the shutdown notice and the close code that follows it, bad
// replies, and the answers to the server's bad or unknown requests.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Client, connect, Codes, RPCError, ConnectError } from '../src/index.js';
import { FakeServer } from './fake.js';

const fast = { backoff: { base: 1, max: 5 } };

async function setup(opts = {}) {
  const fake = new FakeServer(opts.fake);
  const c = await connect('ws://fake/rpc', { WebSocket: fake.WebSocket, ...fast, ...opts.client });
  const ws = await fake.socket(0);
  return { fake, c, ws };
}

describe('protocol (scripted peer)', () => {
  it('writes requests as docs/PROTOCOL.md says: $timeout, sorted $meta, $stream', async () => {
    const { fake, c, ws } = await setup();
    assert.deepEqual(ws.protocols, ['jsonrpc2.0']);
    const p = c.call('m', [1], { timeout: 1500, metadata: { 'trace-id': '4bf92f35', tenant: 'acme' } });
    const req = await fake.sentOn(ws);
    assert.ok(req.$timeout > 1000 && req.$timeout <= 1500 && Number.isInteger(req.$timeout), `$timeout ${req.$timeout}`);
    assert.equal(ws.sent[0], `{"jsonrpc":"2.0","id":1,"method":"m","params":[1],"$timeout":${req.$timeout},"$meta":{"tenant":"acme","trace-id":"4bf92f35"}}`);
    fake.push(ws, { jsonrpc: '2.0', id: 1, result: 3 });
    assert.equal(await p, 3);
    await c.notify('log', ['x']);
    assert.equal(ws.sent[1], '{"jsonrpc":"2.0","method":"log","params":["x"]}');
    await c.close();
  });

  it('matches replies by id in any order, drops unknown ones, fails on bad ones', async () => {
    const { fake, c, ws } = await setup();
    const a = c.call('a');
    const b = c.call('b');
    const bad = c.call('bad');
    await fake.until(() => ws.sent.length === 3);
    fake.push(ws, [{ jsonrpc: '2.0', id: 2, result: 'B' }, { jsonrpc: '2.0', id: 1, error: { code: 7, message: 'A', data: { x: 1 } } }]);
    fake.push(ws, { jsonrpc: '2.0', id: 99, result: 'nobody' });
    fake.push(ws, { jsonrpc: '2.0', id: 3, result: 1, error: { code: 1, message: 'both' } });
    assert.equal(await b, 'B');
    await assert.rejects(a, (e) => e instanceof RPCError && e.code === 7 && e.message === 'A' && e.data.x === 1);
    await assert.rejects(bad, (e) => e.code === Codes.INTERNAL_ERROR && /invalid reply/.test(e.message));
    assert.equal(c._conn.stats.unknownReplies, 1);
    await c.close();
  });

  it('sends $/cancelRequest when a call is aborted or its deadline passes, and drops the late reply', async () => {
    const { fake, c, ws } = await setup();
    const ac = new AbortController();
    const p = c.call('slow', undefined, { signal: ac.signal });
    await fake.sentOn(ws);
    ac.abort();
    await assert.rejects(p, (e) => e.code === Codes.CANCELED);
    assert.equal(ws.sent[1], '{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":1}}');
    fake.push(ws, { jsonrpc: '2.0', id: 1, result: 'late' });
    assert.equal(c._conn.stats.unknownReplies, 1);
    const q = c.call('slow', undefined, { timeout: 20 });
    await assert.rejects(q, (e) => e.code === Codes.DEADLINE_EXCEEDED);
    assert.equal(ws.sent[3], '{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":2}}');
    await c.close();
  });

  it('grants credit as the stream is read, and fails a callee that sends beyond it', async () => {
    const { fake, c, ws } = await setup();
    const s = c.stream('count', { n: 10 }, { window: 4 });
    const req = await fake.sentOn(ws);
    assert.equal(req.$stream, 4);
    // Results of 300 KB: 1 MiB holds fewer than 4, so the window stays 4.
    const big = 'x'.repeat(300_000);
    const item = (v) => ({ jsonrpc: '2.0', method: '$/stream.item', params: { id: req.id, item: [v, big] } });
    fake.push(ws, [item(1), item(2), item(3), item(4)]); // a batch, as a server packs them
    assert.equal((await s.next()).value[0], 1);
    assert.equal(ws.sent.length, 1); // 3 of 4 still out: no credit yet
    assert.equal((await s.next()).value[0], 2);
    assert.equal(ws.sent[1], `{"jsonrpc":"2.0","method":"$/stream.credit","params":{"id":${req.id},"credit":2}}`);
    fake.push(ws, item(5));
    fake.push(ws, item(6));
    fake.push(ws, item(7)); // 7 > 4 + 2 granted
    await assert.rejects(s.result, (e) => e.code === Codes.INTERNAL_ERROR && /more results than the 6 granted/.test(e.message));
    assert.equal(ws.sent.at(-1), `{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":${req.id}}}`);
    const got = [];
    await assert.rejects((async () => { for await (const v of s) got.push(v); })(), (e) => e.code === Codes.INTERNAL_ERROR);
    assert.deepEqual(got.map((v) => v[0]), [3, 4, 5, 6]);

    // Small results: the window grows to what 1 MiB holds, at most 4096.
    const small = c.stream('count', {}, { window: 4 });
    const r3 = await fake.sentOn(ws, (m) => m.method === 'count', 1);
    fake.push(ws, { jsonrpc: '2.0', method: '$/stream.item', params: { id: r3.id, item: 1 } });
    assert.equal((await small.next()).value, 1);
    const grant = await fake.sentOn(ws, (m) => m.method === '$/stream.credit' && m.params.id === r3.id);
    assert.equal(grant.params.credit, 4096 - 3); // out: 3 of the first 4; the window is now 4096
    small.cancel();

    // A callee that does not know streams answers with the reply alone.
    const plain = c.stream('old', []);
    const r2 = await fake.sentOn(ws, (m) => m.method === 'old');
    fake.push(ws, { jsonrpc: '2.0', id: r2.id, result: [1, 2] });
    const all = [];
    for await (const v of plain) all.push(v);
    assert.deepEqual(all, []);
    assert.deepEqual(await plain.result, [1, 2]);
    await c.close();
  });

  it('after a shutdown notice and 1012, retries what the server never started on the next connection', async () => {
    const { fake, c, ws } = await setup();
    const notices = [];
    c.addEventListener('shutdown', (e) => notices.push(e));
    const p = c.call('work', [1]);
    await fake.sentOn(ws);
    fake.push(ws, { jsonrpc: '2.0', method: '$/shutdown', params: { retryAfterMs: 5, reason: 'restart' } });
    assert.deepEqual([notices[0].retryAfterMs, notices[0].reason], [5, 'restart']);
    // The client tells the server it moves, and sends nothing new there.
    await fake.until(() => ws.sent.length >= 2);
    assert.deepEqual(JSON.parse(ws.sent[1]), { jsonrpc: '2.0', method: '$/shutdown', params: { retryAfterMs: 0, reason: 'client moved to a new connection' } });
    const later = c.call('later');
    const ws2 = await fake.socket(1);
    const l = await fake.sentOn(ws2, (m) => m.method === 'later');
    fake.push(ws2, { jsonrpc: '2.0', id: l.id, result: 'on 2' });
    assert.equal(await later, 'on 2');
    fake.drop(ws, 1012, 'service restart'); // no reply for "work": it was never started
    const w = await fake.sentOn(ws2, (m) => m.method === 'work');
    fake.push(ws2, { jsonrpc: '2.0', id: w.id, result: 'done' });
    assert.equal(await p, 'done');
    await c.close();
  });

  it('waits the notice\'s hint, up to a quarter more at random, before the next connection', async () => {
    const fake = new FakeServer();
    const sleeps = [];
    class Watched extends Client {
      _sleep(ms) {
        sleeps.push(ms);
        return super._sleep(Math.min(ms, 5)); // the test does not wait it out
      }
    }
    for (const [r, want] of [[0, 40], [0.999999, 50]]) {
      sleeps.length = 0;
      const c = new Watched('ws://fake/rpc', { WebSocket: fake.WebSocket, ...fast, random: () => r });
      await c.ready();
      const n = fake.sockets.length;
      fake.push(fake.sockets[n - 1], { jsonrpc: '2.0', method: '$/shutdown', params: { retryAfterMs: 40 } });
      await fake.until(() => fake.sockets[n]?.readyState === 1 && c.status === 'connected');
      assert.deepEqual(sleeps, [want]);
      await c.close();
    }
  });

  it('reports an unknown outcome when the connection drops after a notice without 1012', async () => {
    const { fake, c, ws } = await setup();
    const p = c.call('work');
    const idem = c.call('read', undefined, { idempotent: true });
    await fake.until(() => ws.sent.length === 2);
    fake.push(ws, { jsonrpc: '2.0', method: '$/shutdown' });
    fake.drop(ws, 1006);
    await assert.rejects(p, (e) => e.code === Codes.CONNECTION_LOST);
    const ws2 = await fake.socket(1);
    const r = await fake.sentOn(ws2, (m) => m.method === 'read');
    fake.push(ws2, { jsonrpc: '2.0', id: r.id, result: 'again' });
    assert.equal(await idem, 'again');
    await c.close();
  });

  it('closes a drained connection with 1000 once its calls are answered', async () => {
    const { fake, c, ws } = await setup();
    const p = c.call('work');
    await fake.sentOn(ws);
    fake.push(ws, { jsonrpc: '2.0', method: '$/shutdown', params: { retryAfterMs: 0 } });
    assert.equal(ws.closedWith, null); // still waiting for "work"
    fake.push(ws, { jsonrpc: '2.0', id: 1, result: 'ok' });
    assert.equal(await p, 'ok');
    assert.deepEqual(ws.closedWith, { code: 1000, reason: 'client moved to a new connection' });
    await c.close();
  });

  it('answers the server\'s requests: results, -32601, -32600, cancels, batches', async () => {
    const { fake, c, ws } = await setup();
    let release;
    c.handle('ask', (params, ctx) => ({ params, meta: ctx.metadata, deadline: typeof ctx.deadline }));
    c.handle('hang', (params, ctx) => new Promise((resolve, reject) => {
      release = resolve;
      ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason));
    }));
    fake.push(ws, { jsonrpc: '2.0', id: 'x', method: 'ask', params: [1], $timeout: 5000, $meta: { k: 'v' } });
    assert.deepEqual(await fake.sentOn(ws, (m) => m.id === 'x'), { jsonrpc: '2.0', id: 'x', result: { params: [1], meta: { k: 'v' }, deadline: 'number' } });
    fake.push(ws, { jsonrpc: '2.0', id: 2, method: 'nope' });
    assert.equal((await fake.sentOn(ws, (m) => m.id === 2)).error.code, Codes.METHOD_NOT_FOUND);
    fake.push(ws, { jsonrpc: '2.0', id: 3, method: 'ask', $timeout: -1 });
    assert.equal((await fake.sentOn(ws, (m) => m.id === 3)).error.code, Codes.INVALID_REQUEST);
    fake.push(ws, { jsonrpc: '2.0', method: 'ask', $meta: ['no'] });
    const inv = await fake.sentOn(ws, (m) => m.id === null);
    assert.equal(inv.error.code, Codes.INVALID_REQUEST);
    fake.push(ws, '{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]');
    assert.equal((await fake.sentOn(ws, (m) => m.id === null && m.error?.code === Codes.PARSE_ERROR)).error.code, Codes.PARSE_ERROR);
    // A cancel: the handler is aborted and no reply is sent.
    fake.push(ws, { jsonrpc: '2.0', id: 4, method: 'hang' });
    fake.push(ws, { jsonrpc: '2.0', id: 4, method: 'hang' });
    assert.equal((await fake.sentOn(ws, (m) => m.id === 4)).error.code, Codes.INVALID_REQUEST); // duplicate id
    const sentBefore = ws.sent.length;
    fake.push(ws, { jsonrpc: '2.0', method: '$/cancelRequest', params: { id: 4 } });
    await fake.until(() => c._conn.served.size === 0);
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(ws.sent.length, sentBefore);
    release?.();
    // A batch of requests: one array of replies.
    fake.push(ws, [{ jsonrpc: '2.0', id: 'b1', method: 'ask', params: [1] }, { jsonrpc: '2.0', method: 'ask' }, { jsonrpc: '2.0', id: 'b2', method: 'nope' }]);
    const arr = await fake.until(() => ws.sent.map((t) => JSON.parse(t)).find(Array.isArray));
    assert.deepEqual(arr.map((r) => r.id).sort(), ['b1', 'b2']);
    await c.close();
  });

  it('answers -32603 when a handler throws a value that has no text, and frees its slot', async () => {
    const { fake, c, ws } = await setup({ client: { maxServed: 1 } });
    let unhandled = null;
    const onUnhandled = (e) => { unhandled = e; };
    process.on('unhandledRejection', onUnhandled);
    try {
      c.handle('odd', () => { throw Object.create(null); });
      c.handle('odd2', async () => { throw Object.create(null); });
      fake.push(ws, { jsonrpc: '2.0', id: 1, method: 'odd' });
      const r1 = await fake.sentOn(ws, (m) => m.id === 1);
      assert.equal(r1.error.code, Codes.INTERNAL_ERROR);
      fake.push(ws, { jsonrpc: '2.0', id: 2, method: 'odd2' }); // not -32003: the slot of id 1 was freed
      const r2 = await fake.sentOn(ws, (m) => m.id === 2);
      assert.equal(r2.error.code, Codes.INTERNAL_ERROR);
      assert.equal(c._conn.served.size, 0);
      await new Promise((r) => setImmediate(r));
      assert.equal(unhandled, null);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    await c.close();
  });

  it('bounds the server\'s calls handled at once: -32003 beyond, notifications dropped', async () => {
    const { fake, c, ws } = await setup({ client: { maxServed: 2 } });
    const release = [];
    c.handle('hold', () => new Promise((resolve) => release.push(resolve)));
    fake.push(ws, { jsonrpc: '2.0', id: 1, method: 'hold' });
    fake.push(ws, { jsonrpc: '2.0', method: 'hold' });
    fake.push(ws, { jsonrpc: '2.0', id: 2, method: 'hold' });
    fake.push(ws, { jsonrpc: '2.0', method: 'hold' });
    const busy = await fake.sentOn(ws, (m) => m.id === 2);
    assert.equal(busy.error.code, Codes.BUSY);
    assert.equal(c._conn.stats.droppedNotifications, 1);
    for (const r of release) r('done');
    assert.equal((await fake.sentOn(ws, (m) => m.id === 1)).result, 'done');
    fake.push(ws, { jsonrpc: '2.0', id: 3, method: 'hold' });
    await fake.until(() => release.length === 3);
    release[2]('again');
    assert.equal((await fake.sentOn(ws, (m) => m.id === 3)).result, 'again');
    await c.close();
  });

  it('leaves a for-await loop over a subscription at once, its $/unsubscribe sent and not waited for', { timeout: 20_000 }, async () => {
    const { fake, c, ws } = await setup();
    const subP = c.subscribe('news.eu');
    const sub = await fake.sentOn(ws, (m) => m.method === '$/subscribe');
    fake.push(ws, { jsonrpc: '2.0', id: sub.id, result: { sub: 7, topic: 'news.eu', position: { offset: 0, epoch: 'E' } } });
    const s = await subP;
    fake.push(ws, { jsonrpc: '2.0', method: '$/publication', params: { sub: 7, topic: 'news.eu', offset: 1, epoch: 'E', data: 'a' } });
    for await (const p of s) {
      assert.equal(p.data, 'a');
      break; // the server never answers the $/unsubscribe: the loop must not wait for it
    }
    assert.equal(s.ended, true);
    const un = await fake.sentOn(ws, (m) => m.method === '$/unsubscribe');
    assert.deepEqual(un.params, { sub: 7 });
    // A refusal of the unsubscribe comes as an error event.
    const errors = [];
    c.addEventListener('error', (e) => errors.push(e.error));
    fake.push(ws, { jsonrpc: '2.0', id: un.id, error: { code: Codes.INVALID_PARAMS, message: 'no such subscription' } });
    await fake.until(() => errors.length === 1);
    assert.equal(errors[0].code, Codes.INVALID_PARAMS);
    await c.close();
  });

  it('closes with 1003 on a binary message', async () => {
    const { fake, c, ws } = await setup();
    fake.push(ws, new Uint8Array([1, 2, 3]));
    assert.equal(ws.closedWith.code, 1003);
    await c.close();
  });

  it('routes packed publications, detects a gap and subscribes again from its position', async () => {
    const { fake, c, ws } = await setup();
    const subP = c.subscribe('news.eu');
    const sub = await fake.sentOn(ws, (m) => m.method === '$/subscribe');
    assert.deepEqual(sub.params, { topic: 'news.eu' });
    fake.push(ws, { jsonrpc: '2.0', id: sub.id, result: { sub: 7, topic: 'news.eu', position: { offset: 0, epoch: 'E' } } });
    const s = await subP;
    const pub = (o, data, extra = {}) => ({ jsonrpc: '2.0', method: '$/publication', params: { sub: 7, topic: 'news.eu', offset: o, epoch: 'E', data, ...extra } });
    fake.push(ws, [pub(1, 'a'), pub(2, null, { skipped: true, data: undefined }), pub(3, 'c')]);
    fake.push(ws, pub(5, 'e')); // 4 is missing
    const again = await fake.sentOn(ws, (m) => m.method === '$/subscribe', 1);
    assert.deepEqual(again.params, { topic: 'news.eu', since: { offset: 3, epoch: 'E' } });
    fake.push(ws, pub(6, 'f')); // dropped while recovering: the reply replays it
    fake.push(ws, { jsonrpc: '2.0', id: again.id, result: { sub: 7, topic: 'news.eu', position: { offset: 6, epoch: 'E' }, recovered: true, publications: [pub(4, 'd').params, pub(5, 'e').params, pub(6, 'f').params] } });
    const got = [];
    while (got.length < 5) {
      const { value: p } = await s.next();
      got.push([p.offset, p.data, p.gap]);
    }
    assert.deepEqual(got, [[1, 'a', false], [3, 'c', false], [4, 'd', false], [5, 'e', false], [6, 'f', false]]);
    const done = s.unsubscribe();
    const un = await fake.sentOn(ws, (m) => m.method === '$/unsubscribe');
    assert.deepEqual(un.params, { sub: 7 });
    fake.push(ws, { jsonrpc: '2.0', id: un.id, result: true });
    await done;
    assert.equal((await s.next()).done, true);
    await c.close();
  });

  it('ends a subscription the server refuses on a new connection, and hands the server\'s own to onPublication', async () => {
    const own = [];
    const { fake, c, ws } = await setup({ client: { onPublication: (p) => own.push(p) } });
    const subP = c.subscribe('news.eu');
    const sub = await fake.sentOn(ws, (m) => m.method === '$/subscribe');
    fake.push(ws, { jsonrpc: '2.0', id: sub.id, result: { sub: 3, topic: 'news.eu' } }); // a live-only topic: no position
    const s = await subP;
    assert.equal(s.position, null);
    fake.push(ws, { jsonrpc: '2.0', method: '$/publication', params: { sub: 3, topic: 'news.eu', offset: 0, epoch: '', data: 'live' } });
    fake.push(ws, { jsonrpc: '2.0', method: '$/publication', params: { sub: 9, topic: 'server.made', offset: 4, epoch: 'E', data: 'for you' } });
    assert.deepEqual(await s.next(), { value: { topic: 'news.eu', offset: 0, epoch: '', data: 'live', gap: false }, done: false });
    assert.deepEqual(own, [{ topic: 'server.made', offset: 4, epoch: 'E', data: 'for you', gap: false }]);
    fake.drop(ws);
    const ws2 = await fake.socket(1);
    const again = await fake.sentOn(ws2, (m) => m.method === '$/subscribe');
    assert.deepEqual(again.params, { topic: 'news.eu' }); // no position to recover from
    fake.push(ws2, { jsonrpc: '2.0', id: again.id, error: { code: Codes.PERMISSION_DENIED, message: 'not any more' } });
    await assert.rejects(s.next(), (e) => e.code === Codes.PERMISSION_DENIED && /resubscribe to "news.eu": not any more/.test(e.message));
    assert.equal(s.ended, true);
    assert.equal((await s.next()).done, true);
    await c.close();
  });

  it('refuses a subprotocol it did not offer, and bounds the handshake', async () => {
    const fake = new FakeServer({ protocol: 'wsrpc.v1' });
    await assert.rejects(connect('ws://fake/rpc', { WebSocket: fake.WebSocket }), (e) => e instanceof ConnectError && /not offered/.test(e.message));
    const hang = new FakeServer({ open: false });
    await assert.rejects(connect('ws://fake/rpc', { WebSocket: hang.WebSocket, handshakeTimeout: 30 }), (e) => e instanceof ConnectError && /no handshake within 30 ms/.test(e.message));
  });

  it('authenticates in-band on every connection before anything else goes out', async () => {
    const fake = new FakeServer();
    let n = 0;
    const c = new Client('ws://fake/rpc', { WebSocket: fake.WebSocket, ...fast, inBandAuth: 'auth.login', credentials: async ({ reason }) => ({ token: `t${++n}`, reason }) });
    const call = c.call('work');
    const ws = await fake.socket(0);
    const login = await fake.sentOn(ws);
    assert.deepEqual([login.method, login.params], ['auth.login', { token: 't1', reason: 'connect' }]);
    assert.equal(ws.sent.length, 1); // "work" waits for the login
    fake.push(ws, { jsonrpc: '2.0', id: login.id, result: true });
    const w = await fake.sentOn(ws, (m) => m.method === 'work');
    fake.push(ws, { jsonrpc: '2.0', id: w.id, result: 1 });
    assert.equal(await call, 1);
    // A reconnect reuses the credential; a refused login closes that
    // connection, and the next one fetches a new credential after a backoff.
    fake.drop(ws);
    const ws2 = await fake.socket(1);
    const l2 = await fake.sentOn(ws2);
    assert.deepEqual(l2.params, { token: 't1', reason: 'connect' });
    fake.push(ws2, { jsonrpc: '2.0', id: l2.id, error: { code: Codes.UNAUTHENTICATED, message: 'bad token' } });
    await fake.until(() => ws2.closedWith);
    const ws3 = await fake.socket(2);
    const l3 = await fake.sentOn(ws3);
    assert.deepEqual(l3.params, { token: 't2', reason: 'refused' });
    await c.close();
  });

  it('closes while the credentials function has not answered yet', { timeout: 20_000 }, async () => {
    const fake = new FakeServer();
    let asked;
    const c = new Client('ws://fake/rpc', { WebSocket: fake.WebSocket, inBandAuth: 'auth.login', credentials: () => new Promise(() => { asked = true; }) });
    await fake.until(() => asked);
    await c.close(); // it waited for the credential, for ever
    await assert.rejects(c.ready(), (e) => e.closed === true);
    assert.equal(fake.sockets[0].sent.length, 0);
  });

  it('closes within closeTimeout when the server does not answer the close', { timeout: 20_000 }, async () => {
    // The fake's sockets cannot be terminated, as a browser's: the connection counts as closed.
    const { fake, c, ws } = await setup({ client: { closeTimeout: 50 } });
    const p = c.call('slow');
    await fake.sentOn(ws);
    const failed = assert.rejects(p, (e) => e.closed === true && e.code === Codes.CONNECTION_LOST);
    fake.deaf = true;
    const codes = [];
    c.addEventListener('disconnect', (e) => codes.push(e.code));
    await c.close(); // it waited for the close event, for ever
    await failed;
    assert.deepEqual(ws.closedWith, { code: 1000, reason: 'client closed' });
    assert.deepEqual(codes, [1006]);
    assert.equal(c._conns.size, 0);
  });

  it('sends a call the server refused unstarted again on the same connection, after a pause', async () => {
    const { fake, c, ws } = await setup();
    const p = c.call('work', [1]);
    const first = await fake.sentOn(ws);
    fake.push(ws, { jsonrpc: '2.0', id: first.id, error: { code: Codes.UNAVAILABLE, message: 'not now; the request was not started' } });
    const second = await fake.sentOn(ws, (m) => m.method === 'work', 1);
    assert.notEqual(second.id, first.id);
    fake.push(ws, { jsonrpc: '2.0', id: second.id, result: 'ok' });
    assert.equal(await p, 'ok');
    assert.equal(fake.sockets.length, 1);
    // Busy (-32003) is not retried.
    const q = c.call('work', [2]);
    const b = await fake.sentOn(ws, (m) => m.method === 'work', 2);
    fake.push(ws, { jsonrpc: '2.0', id: b.id, error: { code: Codes.BUSY, message: 'busy' } });
    await assert.rejects(q, (e) => e.code === Codes.BUSY);
    await c.close();
  });

  it('ends a call pausing before its retry when the client closes', { timeout: 20_000 }, async () => {
    // A pause of a minute: without close ending it, the test times out.
    const { fake, c, ws } = await setup({ client: { backoff: { base: 60_000, max: 60_000 }, random: () => 0.999 } });
    const p = c.call('work', [1]);
    const first = await fake.sentOn(ws);
    fake.push(ws, { jsonrpc: '2.0', id: first.id, error: { code: Codes.UNAVAILABLE, message: 'not now; the request was not started' } });
    await fake.until(() => c._pauses.size === 1);
    const failed = assert.rejects(p, (e) => e.closed === true && e.code === Codes.UNAVAILABLE);
    await c.close();
    await failed;
    assert.equal(c._pauses.size, 0);
    assert.equal(ws.sent.filter((m) => JSON.parse(m).method === 'work').length, 1);
  });

  it('closes at once while a handshake hangs', { timeout: 20_000 }, async () => {
    const hang = new FakeServer({ open: false });
    const c = new Client('ws://fake/rpc', { WebSocket: hang.WebSocket, handshakeTimeout: 60_000 });
    await hang.until(() => hang.sockets.length === 1);
    await c.close(); // not after the 60 s handshake timeout: the test's own timeout is 20 s
    await assert.rejects(c.ready(), (e) => e.closed === true);
  });

  it('fails the first connection when every endpoint refuses it', async () => {
    const fake = new FakeServer();
    fake.refuse = true;
    await assert.rejects(connect(['ws://a/rpc', 'ws://b/rpc'], { WebSocket: fake.WebSocket }), ConnectError);
    assert.deepEqual(fake.sockets.map((s) => s.url), ['ws://a/rpc', 'ws://b/rpc']);
  });
});
