// In-band authentication against a real Go server with
// server.WithInBandAuth (test/authserver): the client's auth option logs
// in on every connection, before anything else goes out on it.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, Codes } from '../src/index.js';
import { Server, Proxy, noGo, goBinary, waitFor } from './helpers.js';

describe('in-band auth', { skip: noGo }, () => {
  let srv;
  before(async () => {
    srv = await Server.start({ bin: goBinary('./clients/js/test/authserver') });
  });
  after(() => srv?.stop());

  it('logs in on every connection, the first and each after a reconnect', async () => {
    const px = await Proxy.start(srv.port);
    let n = 0;
    const c = await connect(px.url, { backoff: { base: 20, max: 200 }, auth: () => ({ method: 'auth.login', params: { token: `good-${++n}` } }) });
    try {
      assert.equal(await c.call('whoami'), 'good-1');
      px.cut();
      await waitFor(() => n === 2, 5000);
      assert.equal(await c.call('whoami'), 'good-2'); // waited for the new connection's login
    } finally {
      await c.close();
      await px.close();
    }
  });

  it('without logging in, calls are refused; a refused login fails the first connection', async () => {
    const c = await connect(srv.url);
    await assert.rejects(c.call('whoami'), (e) => e.code === Codes.UNAUTHENTICATED && /auth\.login/.test(e.message));
    await c.close();
    await assert.rejects(connect(srv.url, { auth: () => ({ method: 'auth.login', params: { token: 'stolen' } }) }), (e) => e.code === Codes.UNAUTHENTICATED && /bad token/.test(e.message));
  });
});
