// The client in real headless Chromium: the browser example
// (examples/browser), served by `wsrpc serve --static`, calls, cancels,
// streams and subscribes; the test cuts its connection (a TCP proxy between
// the browser and the server) and then restarts the server, and reads what
// the page did through the DevTools protocol (Runtime.evaluate of
// window.wsrpcReport). Assertions are on what the browser did.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { connect } from '../src/index.js';
import { Server, Proxy, noGo, need, waitFor, jsRoot } from './helpers.js';

function findChromium() {
  for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
    try {
      return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
    } catch {
      // next
    }
  }
  return '';
}

const chromium = findChromium();
const noChromium = noGo || need('chromium', chromium !== '', 'apt-get install -y chromium');

/** Browser is a headless Chromium and a DevTools connection to its page. */
class Browser {
  static async start(url) {
    const b = new Browser();
    b.profile = mkdtempSync(join(tmpdir(), 'wsrpc-js-chromium-'));
    b.stderr = '';
    b.proc = spawn(chromium, [
      '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic', '--disable-extensions',
      `--user-data-dir=${b.profile}`, '--remote-debugging-port=0', url,
    ], { stdio: ['ignore', 'ignore', 'pipe'], detached: true }); // its own process group: it starts helpers
    b.exited = new Promise((r) => b.proc.once('exit', r));
    b.proc.stderr.setEncoding('utf8');
    b.proc.stderr.on('data', (d) => { b.stderr += d; });
    const endpoint = await waitFor(() => /DevTools listening on (ws:\/\/\S+)/.exec(b.stderr)?.[1], 30_000, () => `chromium did not start:\n${b.stderr}`, b.proc);
    const port = new URL(endpoint).port;
    const page = await waitFor(async () => {
      const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
      return list.find((t) => t.type === 'page' && t.url.startsWith(url.split('?')[0]));
    }, 30_000, () => `no page target:\n${b.stderr}`);
    b.cdp = new WebSocket((await page).webSocketDebuggerUrl);
    await new Promise((resolve, reject) => { b.cdp.once('open', resolve); b.cdp.once('error', reject); });
    b.nextID = 1;
    b.waiting = new Map();
    b.cdp.on('message', (m) => {
      const r = JSON.parse(m);
      const w = b.waiting.get(r.id);
      if (w) {
        b.waiting.delete(r.id);
        w(r);
      }
    });
    return b;
  }

  /** eval evaluates expr in the page and returns its value. */
  async eval(expr) {
    const id = this.nextID++;
    const r = await new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.cdp.send(JSON.stringify({ id, method: 'Runtime.evaluate', params: { expression: expr, returnByValue: true } }));
    });
    if (r.error || r.result.exceptionDetails) throw new Error(`page: ${JSON.stringify(r.error ?? r.result.exceptionDetails)}`);
    return r.result.result.value;
  }

  report() {
    return this.eval('JSON.parse(JSON.stringify(window.wsrpcReport ?? null))');
  }

  /** until polls the page's report until check(report) is truthy. */
  async until(check, what, ms = 20_000) {
    let last;
    try {
      return await waitFor(async () => {
        last = await this.report();
        return last && check(last) ? last : false;
      }, ms);
    } catch {
      throw new Error(`the page never got to ${what}; its report: ${JSON.stringify(last)}\nchromium said:\n${this.stderr.slice(-2000)}`);
    }
  }

  signal(name) {
    return this.eval(`window.wsrpcSignals[${JSON.stringify(name)}] = true`);
  }

  async stop() {
    this.cdp?.close();
    try {
      process.kill(-this.proc.pid, 'SIGKILL');
    } catch {
      // gone already
    }
    await this.exited;
    rmSync(this.profile, { recursive: true, force: true });
  }
}

describe('browser', { skip: noChromium }, () => {
  const cleanup = [];
  after(async () => {
    for (const f of cleanup.reverse()) await f();
  });

  for (const codec of ['json', 'binary']) it(`calls, cancels, streams, subscribes, recovers after a lost connection and a server restart (${codec})`, async () => {
    let srv = await Server.start({ args: ['--static', jsRoot] });
    cleanup.push(() => srv.stop());
    const px = await Proxy.start(srv.port);
    cleanup.push(() => px.close());
    const b = await Browser.start(`http://127.0.0.1:${px.port}/examples/browser/index.html?test&codec=${codec}`);
    cleanup.push(() => b.stop());

    let r = await b.until((r) => r.steps.subscribed || r.steps.failed, 'its subscription');
    assert.deepEqual(r.errors, []);
    assert.equal(r.steps.add, 6);
    assert.deepEqual([r.steps.whoami.subprotocol, r.steps.whoami.metadata], [codec === 'json' ? 'jsonrpc2.0' : 'wsrpc.v1', { page: 'example' }]);
    assert.equal(r.steps.cancel.code, -32001);
    assert.ok(r.steps.cancel.afterMs < 4000, `cancelled after ${r.steps.cancel.afterMs} ms`);
    assert.equal(r.steps.deadline.code, -32002);
    assert.deepEqual(r.steps.unknown, { code: -32601, isMethodNotFound: true });
    assert.deepEqual(r.steps.callback, { confirmed: 'yes', by: 'browser', deadlineCarried: true });
    assert.deepEqual(r.steps.stream, { items: [5, 4, 3, 2, 1], result: 'liftoff' });
    assert.deepEqual(r.steps.streamCancel, { seen: 3 });
    // The server saw the cancel, the deadline and the stream's cancel.
    await srv.waitLog(/method=sleep .*code=-32001/);
    await srv.waitLog(/method=countdown .*code=-32001/);

    // A publication reaches the page.
    let pub = await connect(srv.url);
    cleanup.push(() => pub.close());
    await pub.publish('chat.browser', 'one');
    r = await b.until((r) => r.publications.length === 1, 'the first publication');

    // The connection is cut; publications made meanwhile are recovered.
    px.refuse = true;
    px.cut();
    await b.until((r) => r.statuses.includes('reconnecting'), 'reconnecting');
    await pub.publish('chat.browser', 'two');
    await pub.publish('chat.browser', 'three');
    px.refuse = false;
    r = await b.until((r) => r.publications.length === 3, 'the recovered publications');
    assert.deepEqual(r.publications.map((p) => [p.data, p.offset, p.gap]), [['one', 1, false], ['two', 2, false], ['three', 3, false]]);
    const epoch = r.publications[0].epoch;

    // The server restarts (SIGTERM: a graceful drain) with a call in flight.
    await b.signal('restart');
    await b.until((r) => r.steps.sleeping, 'its call in flight');
    await waitFor(() => srv.logs.length > 0); // (the call is in the server's hands)
    const restarted = srv.restart('SIGTERM');
    r = await b.until((r) => r.notices.length === 1, 'the shutdown notice');
    srv = await restarted;
    r = await b.until((r) => r.steps.reconnected || r.steps.failed, 'the new connection');
    assert.deepEqual(r.steps.inFlight, { slept_ms: 500 });
    assert.equal(r.steps.queued, 42);
    assert.deepEqual(r.steps.reconnected, { newConnection: true });
    assert.ok(r.statuses.filter((s) => s === 'connected').length >= 2, `statuses ${r.statuses}`);

    // The subscription came back on the new server: a new epoch, flagged as a gap.
    await pub.close();
    pub = await connect(srv.url);
    cleanup.push(() => pub.close());
    await waitFor(async () => (await pub.call('echo', [1])) && true);
    // The page resubscribes on its own schedule: publish until it sees one.
    let n = 0;
    r = await waitFor(async () => {
      await pub.publish('chat.browser', `after ${++n}`);
      const rep = await b.report();
      return rep.publications.length > 3 ? rep : false;
    }, 20_000);
    const after = r.publications[3];
    assert.match(after.data, /^after \d+$/);
    assert.notEqual(after.epoch, epoch);
    assert.equal(after.gap, true);
    await b.signal('finish');
    r = await b.until((r) => r.done, 'the end');
    if (process.env.WSRPC_JS_VERBOSE) console.log(JSON.stringify(r, null, 1));
    assert.deepEqual(r.errors, []);
  });
});
