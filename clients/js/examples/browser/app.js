// The browser example: calls, a cancelled call, a deadline, a server → client
// call, a stream, a subscription that survives reconnects and restarts.
//
// What happens is written to the page and kept in window.wsrpcReport, which
// the browser test (test/browser.test.js) reads through the DevTools
// protocol. With ?test in the URL the page also waits at each phase for the
// test's signal (window.wsrpcSignals), so that the test can cut the
// connection or restart the server in between.
import { connect, Codes, RPCError } from '../../src/index.js';

const query = new URLSearchParams(location.search);
const testing = query.has('test');
const codec = query.get('codec') ?? 'json'; // ?codec=binary: wsrpc.v1
const report = { steps: {}, statuses: [], publications: [], notices: [], errors: [], done: false };
window.wsrpcReport = report;
window.wsrpcSignals = {};

const logEl = document.getElementById('log');
function log(...parts) {
  const line = parts.map((p) => (typeof p === 'string' ? p : JSON.stringify(p))).join(' ');
  logEl.textContent += line + '\n';
}
function step(name, value) {
  report.steps[name] = value;
  document.title = `wsrpc: ${name}`;
  log(`${name}:`, value === undefined ? 'ok' : value);
}
function errorOf(e) {
  return e instanceof RPCError ? { code: e.code, message: e.message } : { message: String(e) };
}
/** signal waits for the test's go-ahead (with ?test only). */
function signal(name) {
  if (!testing) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setInterval(() => {
      if (window.wsrpcSignals[name]) {
        clearInterval(t);
        resolve();
      }
    }, 20);
  });
}
window.addEventListener('error', (e) => report.errors.push(String(e.message)));
window.addEventListener('unhandledrejection', (e) => report.errors.push(String(e.reason?.message ?? e.reason)));

async function main() {
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/rpc`;
  const client = await connect(url, { codec, backoff: { base: 50, max: 500 } });
  const statusEl = document.getElementById('status');
  statusEl.textContent = client.status;
  client.addEventListener('status', (e) => {
    report.statuses.push(e.status);
    statusEl.textContent = e.status;
    log('status →', e.status);
  });
  client.addEventListener('shutdown', (e) => {
    report.notices.push({ retryAfterMs: e.retryAfterMs, reason: e.reason });
    log('the server is shutting down:', e.reason, `(reconnect in ${e.retryAfterMs} ms)`);
  });

  // Calls, metadata.
  step('add', await client.call('add', [1, 2, 3]));
  const who = await client.call('whoami', undefined, { metadata: { page: 'example' } });
  step('whoami', { subprotocol: who.subprotocol, metadata: who.metadata, conn: who.conn_id });

  // Cancel with an AbortSignal: the server's handler stops too.
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 100);
  const t0 = performance.now();
  try {
    await client.call('sleep', { ms: 5000 }, { signal: ac.signal });
    step('cancel', 'not cancelled');
  } catch (e) {
    step('cancel', { ...errorOf(e), afterMs: Math.round(performance.now() - t0) });
  }

  // A deadline, sent to the server with the call.
  try {
    await client.call('sleep', { ms: 5000 }, { timeout: 150 });
    step('deadline', 'no deadline');
  } catch (e) {
    step('deadline', errorOf(e));
  }

  // Errors carry their code.
  try {
    await client.call('nope');
  } catch (e) {
    step('unknown', { code: e.code, isMethodNotFound: e.code === Codes.METHOD_NOT_FOUND });
  }

  // The server calls the page back.
  // Its deadline came with the page's call and went on with the server's.
  client.handle('page.confirm', (params, ctx) => ({ confirmed: params[0], by: 'browser', deadlineCarried: ctx.deadline > Date.now() }));
  step('callback', await client.call('callback', { method: 'page.confirm', params: ['yes'] }, { timeout: 5000 }));

  // A stream under credit, then one cancelled mid-way.
  const items = [];
  const s = client.stream('countdown', { from: 5, interval_ms: 10 }, { window: 2 });
  for await (const x of s) items.push(x);
  step('stream', { items, result: await s.result });
  const long = client.stream('countdown', { from: 1000, interval_ms: 5 });
  let seen = 0;
  for await (const x of long) if (++seen === 3) break; // leaving the loop cancels it
  step('streamCancel', { seen });

  // A subscription that outlives connections.
  const sub = await client.subscribe('chat.browser');
  (async () => {
    for await (const p of sub) {
      report.publications.push({ data: p.data, offset: p.offset, epoch: p.epoch, gap: p.gap });
      log('publication', p.topic, p.offset, p.data, p.gap ? '(after a gap)' : '');
    }
  })().catch((e) => report.errors.push('subscription: ' + e.message));
  step('subscribed', sub.position);

  // Phase 2 (test): the connection is cut and publications are made meanwhile.
  await signal('restart');
  // Phase 3 (test): a call in flight while the server restarts, and one made
  // while it is down.
  const inFlight = client.call('sleep', { ms: 500 });
  step('sleeping', true);
  await new Promise((resolve) => client.addEventListener('shutdown', resolve, { once: true }));
  const queued = client.call('add', [20, 22]);
  step('inFlight', await inFlight);
  step('queued', await queued);
  const who2 = await client.call('whoami');
  step('reconnected', { newConnection: who2.conn_id !== who.conn_id });
  await signal('finish');
  report.done = true;
  step('done', true);
}

main().catch((e) => {
  report.errors.push(e.message);
  step('failed', errorOf(e));
});
