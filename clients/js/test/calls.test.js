// Calls against a real `wsrpc serve`: results, errors, metadata, deadlines
// and cancellation that reach the server, notifications, and the server's
// calls to the client.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, Client, Codes, RPCError, Status } from '../src/index.js';
import { Server, noGo, waitFor, handles, noneLeft } from './helpers.js';

for (const codec of ['json', 'binary']) describe(`calls (${codec})`, { skip: noGo }, () => {
  let srv;
  let c;
  before(async () => {
    srv = await Server.start({ args: ['--demo-broadcast'] });
    c = await connect(srv.url, { codec });
  });
  after(async () => {
    await c?.close();
    await srv?.stop();
  });

  it('returns results and speaks JSON-RPC', async () => {
    assert.equal(await c.call('add', [1, 2, 3.5]), 6.5);
    assert.deepEqual(await c.call('echo', { a: [1, 'x'] }), { a: [1, 'x'] });
    const who = await c.call('whoami');
    assert.equal(who.subprotocol, codec === 'json' ? 'jsonrpc2.0' : 'wsrpc.v1');
    assert.equal(c.status, Status.CONNECTED);
  });

  it('rejects with an RPCError carrying the code', async () => {
    await assert.rejects(c.call('nope'), (e) => e instanceof RPCError && e.code === Codes.METHOD_NOT_FOUND && /nope/.test(e.message));
    await assert.rejects(c.call('add', ['x']), (e) => e.code === Codes.INVALID_PARAMS);
  });

  it('sends metadata, and refuses metadata over the bounds unsent', async () => {
    const who = await c.call('whoami', undefined, { metadata: { tenant: 'acme', 'trace-id': 'café' } });
    assert.deepEqual(who.metadata, { tenant: 'acme', 'trace-id': 'café' });
    const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v']));
    await assert.rejects(c.call('whoami', undefined, { metadata: many }), (e) => e.code === Codes.INVALID_REQUEST && /more than 64/.test(e.message));
    await assert.rejects(c.call('whoami', undefined, { metadata: { '': 'x' } }), (e) => e.code === Codes.INVALID_REQUEST && /empty/.test(e.message));
    await assert.rejects(c.call('whoami', undefined, { metadata: { big: 'x'.repeat(8192) } }), (e) => e.code === Codes.INVALID_REQUEST && /8192 bytes/.test(e.message));
  });

  it('refuses params that JSON-RPC cannot carry, unsent (wsrpc.v1 carries any value)', async () => {
    if (codec === 'json') await assert.rejects(c.call('echo', 'a string'), (e) => e.code === Codes.INVALID_REQUEST && /array or an object/.test(e.message));
    else assert.equal(await c.call('echo', 'a string'), 'a string');
  });

  it('sends the timeout as the deadline: the handler stops on the server', async () => {
    const start = Date.now();
    await assert.rejects(c.call('sleep', { ms: 5000 }, { timeout: 150 }), (e) => e.code === Codes.DEADLINE_EXCEEDED);
    assert.ok(Date.now() - start < 4000);
    // The handler stopped long before its 5 s: by the server's own deadline
    // (-32002) or by the cancel the client sent when its timer fired at the
    // same moment (-32001).
    const line = await srv.waitLog(/method=sleep .*code=-3200[12]/);
    assert.ok(Number(/duration=([\d.]+)ms/.exec(line)?.[1]) < 4000, line);
    // The deadline itself travels: the server's call back to this client
    // carries what is left of it.
    let left = null;
    c.handle('client.deadline', (params, ctx) => { left = ctx.deadline - Date.now(); return null; });
    await c.call('callback', { method: 'client.deadline', params: [] }, { timeout: 3000 });
    assert.ok(left > 0 && left <= 3000, `the handler had ${left} ms left`);
  });

  it('cancels with an AbortSignal: $/cancelRequest stops the handler', async () => {
    const ac = new AbortController();
    const p = c.call('sleep', { ms: 5000 }, { signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    await assert.rejects(p, (e) => e.code === Codes.CANCELED);
    await srv.waitLog(/method=sleep .*code=-32001 error="context canceled"/);
    // An already aborted signal sends nothing.
    await assert.rejects(c.call('echo', [1], { signal: AbortSignal.abort() }), (e) => e.code === Codes.CANCELED);
  });

  it('sends notifications, and receives the server\'s', async () => {
    // --demo-broadcast: a notification of "broadcast" makes the server
    // notify every connection, this one included, with the same params.
    const got = [];
    const off = c.handle('broadcast', (params, ctx) => { got.push({ params, meta: ctx.metadata }); });
    await c.notify('broadcast', { hello: 'all' });
    await waitFor(() => got.length > 0, 5000);
    assert.deepEqual(got[0].params, { hello: 'all' });
    off();
  });

  it('serves the server\'s calls to the client', async () => {
    const off = c.handle('client.confirm', async (params, ctx) => {
      assert.equal(ctx.method, 'client.confirm');
      return { ok: true, got: params };
    });
    assert.deepEqual(await c.call('callback', { method: 'client.confirm', params: ['sure?'] }), { ok: true, got: ['sure?'] });
    c.handle('client.fail', () => { throw new RPCError(4242, 'no way', { why: 'test' }); });
    await assert.rejects(c.call('callback', { method: 'client.fail', params: [] }), (e) => e.code === 4242 && /no way/.test(e.message) && e.data?.why === 'test');
    c.handle('client.crash', () => { throw new Error('boom'); });
    await assert.rejects(c.call('callback', { method: 'client.crash', params: [] }), (e) => e.code === Codes.INTERNAL_ERROR && /boom/.test(e.message));
    off();
    await assert.rejects(c.call('callback', { method: 'client.confirm', params: [] }), (e) => e.code === Codes.METHOD_NOT_FOUND);
  });

  it('aborts a handler when the server gives up on its call', async () => {
    let aborted = null;
    c.handle('client.slow', (params, ctx) => new Promise((resolve, reject) => {
      ctx.signal.addEventListener('abort', () => {
        aborted = ctx.signal.reason;
        reject(ctx.signal.reason);
      });
    }));
    // The outer call's deadline travels to the server, whose call to the
    // client carries it on and is cancelled when it passes.
    await assert.rejects(c.call('callback', { method: 'client.slow', params: [] }, { timeout: 200 }), (e) => e.code === Codes.DEADLINE_EXCEEDED);
    await waitFor(() => aborted !== null, 5000);
    assert.ok(aborted instanceof RPCError && [Codes.CANCELED, Codes.DEADLINE_EXCEEDED].includes(aborted.code), String(aborted));
  });

  it('makes 2,000 concurrent calls on one connection', async () => {
    const n = 2000;
    const got = await Promise.all(Array.from({ length: n }, (_, i) => c.call('add', [i, 1])));
    assert.deepEqual(got, Array.from({ length: n }, (_, i) => i + 1));
  });

  it('leaves no timer or socket behind once closed', async () => {
    const before = handles();
    const d = await connect(srv.url, { codec });
    await d.call('sleep', { ms: 1 }, { timeout: 5000 });
    const ac = new AbortController();
    const p = d.call('sleep', { ms: 60000 }, { signal: ac.signal, timeout: 60000 });
    const settled = p.catch((e) => { throw e; });
    settled.catch(() => {});
    await waitFor(() => d._conn?.pending.size === 1, 5000); // sent
    await d.close();
    await assert.rejects(settled, (e) => e.code === Codes.CONNECTION_LOST && e.closed === true);
    await assert.rejects(d.call('add', [1]), (e) => e.code === Codes.UNAVAILABLE && e.closed === true);
    assert.equal(d.status, Status.CLOSED);
    await noneLeft(before);
  });

  it('uses the platform\'s WebSocket where there is one (Node 22, browsers), before the ws package', async () => {
    const { WebSocket: WS } = await import('ws');
    const made = [];
    globalThis.WebSocket = class extends WS {
      constructor(...args) {
        super(...args);
        made.push(args[0]);
      }
    };
    try {
      const d = await connect(srv.url, { codec });
      assert.equal(await d.call('add', [2]), 2);
      await d.close();
      assert.deepEqual(made, [srv.url]);
    } finally {
      delete globalThis.WebSocket;
    }
  });

  it('validates its options', () => {
    assert.throws(() => new Client(srv.url, { backoff: { base: 0, max: 1 } }), /backoff/);
    assert.throws(() => new Client(srv.url, { queueSize: -1 }), /queueSize/);
    assert.throws(() => new Client(), /URL/);
    // Every problem at once.
    assert.throws(() => new Client(srv.url, { codec: 'xml', heartbeat: { interval: 0 }, inBandAuth: 'login' }), (e) => /codec/.test(e.message) && /heartbeat/.test(e.message) && /inBandAuth/.test(e.message));
  });
});
