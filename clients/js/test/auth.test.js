// Authentication against a real Go server (test/authserver):
// server.WithInBandAuth, whose tokens may expire (server.AuthExpirer), and
// server.WithAuthRefresh. The client logs in on every connection with the
// credential of its credentials function, refreshes it ahead of each
// expiry the server announces ($/auth.expiry, $/auth.refresh), and fetches
// a new one after 4401 (docs/PROTOCOL.md, section 15).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, Codes, AuthError, CLOSE_AUTH_EXPIRED } from '../src/index.js';
import { Server, Proxy, noGo, goBinary, waitFor } from './helpers.js';

const fast = { backoff: { base: 20, max: 200 } };

/** watch records a client's disconnects and authentication errors. */
function watch(c) {
  const w = { closes: [], errors: [] };
  c.addEventListener('disconnect', (e) => w.closes.push(e.code));
  c.addEventListener('error', (e) => { if (e.error instanceof AuthError) w.errors.push([e.error.phase, e.error.code]); });
  return w;
}

for (const codec of ['json', 'binary']) describe(`auth (${codec})`, { skip: noGo }, () => {
  let srv;
  let noRefresh;
  before(async () => {
    srv = await Server.start({ bin: goBinary('./clients/js/test/authserver') });
    noRefresh = await Server.start({ bin: goBinary('./clients/js/test/authserver'), args: ['-refresh=false'] });
  });
  after(async () => {
    await srv?.stop();
    await noRefresh?.stop();
  });

  it('logs in on every connection, reusing its credential across reconnects', async () => {
    const px = await Proxy.start(srv.port);
    const reasons = [];
    const c = await connect(px.url, { ...fast, codec, inBandAuth: 'auth.login', credentials: ({ reason }) => { reasons.push(reason); return { token: 'good-ann' }; } });
    const w = watch(c);
    try {
      assert.deepEqual(await c.call('whoami'), { name: 'ann', token: 'good-ann' });
      px.cut();
      await waitFor(() => w.closes.length === 1, 5000);
      assert.deepEqual(await c.call('whoami'), { name: 'ann', token: 'good-ann' }); // waited for the new connection's login
      assert.deepEqual(reasons, ['connect']);
      assert.equal(c.authExpiry, null);
    } finally {
      await c.close();
      await px.close();
    }
  });

  it('refuses calls without a login; a refused login fails the first connection', async () => {
    const c = await connect(srv.url, { codec });
    await assert.rejects(c.call('whoami'), (e) => e.code === Codes.UNAUTHENTICATED && /auth\.login/.test(e.message));
    await c.close();
    await assert.rejects(connect(srv.url, { codec, inBandAuth: 'auth.login', credentials: () => ({ token: 'stolen' }) }),
      (e) => e instanceof AuthError && e.phase === 'login' && e.code === Codes.UNAUTHENTICATED && /bad token/.test(e.message));
  });

  it('refreshes ahead of each expiry: the connection and a call in flight carry on', async () => {
    let refreshes = 0;
    const c = await connect(srv.url, { ...fast, codec, inBandAuth: 'auth.login', credentials: ({ reason }) => {
      if (reason === 'refresh') refreshes++;
      return { token: 'good-bea@600' }; // 600 ms each
    } });
    const w = watch(c);
    try {
      assert.ok(c.authExpiry > Date.now() && c.authExpiry <= Date.now() + 600, `expiry in ${c.authExpiry - Date.now()} ms`);
      assert.equal(await c.call('sleep', { ms: 2000 }), 2000); // outlives three lifetimes
      assert.ok(refreshes >= 3, `${refreshes} refreshes`);
      assert.deepEqual(w.closes, []);
      assert.deepEqual(w.errors, []);
      assert.equal((await c.call('whoami')).name, 'bea');
    } finally {
      await c.close();
    }
  });

  it('retries a refused refresh with a backoff, keeping the expiry', async () => {
    let n = 0;
    const c = await connect(srv.url, { ...fast, codec, inBandAuth: 'auth.login', credentials: ({ reason }) => {
      if (reason !== 'refresh') return { token: 'good-cy@800' };
      n++;
      if (n === 1) return { token: 'good-cy@-5' }; // already expired: -32004
      if (n === 2) return { token: 'good-dan@60000' }; // another user: -32005
      return { token: 'good-cy@60000' };
    } });
    const w = watch(c);
    try {
      await waitFor(() => n >= 3 && c.authExpiry > Date.now() + 30_000, 5000);
      assert.deepEqual(w.errors, [['refresh', Codes.UNAUTHENTICATED], ['refresh', Codes.PERMISSION_DENIED]]);
      assert.deepEqual(w.closes, []);
      assert.equal((await c.call('whoami')).token, 'good-cy@60000');
    } finally {
      await c.close();
    }
  });

  it('without refresh on the server: closed with 4401 at the expiry, it logs in again with a new credential', async () => {
    const reasons = [];
    const c = await connect(noRefresh.url, { ...fast, codec, inBandAuth: 'auth.login', credentials: ({ reason }) => {
      reasons.push(reason);
      return { token: `good-eli@${reasons.length === 1 ? 300 : 60000}` };
    } });
    const w = watch(c);
    try {
      await waitFor(() => w.closes.length === 1, 5000);
      assert.deepEqual(w.closes, [CLOSE_AUTH_EXPIRED]);
      assert.deepEqual(w.errors[0], ['refresh', Codes.METHOD_NOT_FOUND]); // asked once, then not again on that connection
      assert.equal((await c.call('whoami')).token, 'good-eli@60000');
      assert.deepEqual(reasons.filter((r) => r !== 'refresh'), ['connect', 'expired']);
      assert.equal(reasons.filter((r) => r === 'refresh').length, 1);
    } finally {
      await c.close();
    }
  });
});
