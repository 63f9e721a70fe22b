// The Client: one logical connection to a wsrpc service that survives the
// loss of its WebSocket. It reconnects with full-jitter backoff (honouring
// the server's shutdown notice and retry hint), waits with calls while no
// connection is up, and retries what the Go client retries (client/call.go).

import { Codes, RPCError, rpcError, notSent, closedError } from './errors.js';
import { Conn, CLOSE, MAX_RETRY_HINT, M, abortError } from './conn.js';
import { jitter, spreadHint, DEFAULT_BACKOFF_BASE, DEFAULT_BACKOFF_MAX } from './backoff.js';
import { MAX_METADATA, MAX_METADATA_BYTES } from './jsonrpc.js';
import { Subscription } from './subscription.js';
import { Stream } from './stream.js';
import { checkPattern } from './topic.js';
import { Auth, CLOSE_AUTH_EXPIRED } from './auth.js';
import { later, cancel, MAX_DELAY } from './timer.js';

/** MAX_ATTEMPTS bounds how many times one call is sent, the first included (as in Go). */
export const MAX_ATTEMPTS = 10;

export const DEFAULT_QUEUE_SIZE = 1024;
export const DEFAULT_HANDSHAKE_TIMEOUT = 10_000;
export const DEFAULT_MAX_MESSAGE_SIZE = 1 << 20;
const DEFAULT_MAX_BUFFERED = 16 << 20;
/** DEFAULT_MAX_SERVED bounds the server's calls (and notifications) handled at once: beyond it, -32003. */
export const DEFAULT_MAX_SERVED = 1000;
/** The heartbeat of the Go peers (section 1.5): a ping every 30 s, the peer dead after 20 s without its pong. */
export const DEFAULT_HEARTBEAT_INTERVAL = 30_000;
export const DEFAULT_PONG_TIMEOUT = 20_000;
/** DEFAULT_CLOSE_TIMEOUT bounds close()'s wait for a socket's closing handshake (ms). */
const DEFAULT_CLOSE_TIMEOUT = 5_000;

/** The client's statuses, as the Go client's. */
export const Status = Object.freeze({
  CONNECTING: 'connecting',
  CONNECTED: 'connected',
  RECONNECTING: 'reconnecting',
  CLOSED: 'closed',
});

/** ClientEvent is an Event carrying the fields given. */
class ClientEvent extends Event {
  constructor(type, fields) {
    super(type);
    Object.assign(this, fields);
  }
}

/** StatusEvent ('status') reports a change of {@link Client#status}. */
export class StatusEvent extends ClientEvent {
  constructor(status, error) {
    super('status', { status, error });
  }
}

/** ShutdownEvent ('shutdown'): the server announced its shutdown (section 8). */
export class ShutdownEvent extends ClientEvent {
  constructor(retryAfterMs, reason, url) {
    super('shutdown', { retryAfterMs, reason, url });
  }
}

/** DisconnectEvent ('disconnect'): a connection closed, with its close code and reason. */
export class DisconnectEvent extends ClientEvent {
  constructor(code, reason, url) {
    super('disconnect', { code, reason, url });
  }
}

/** ClientErrorEvent ('error'): a connection attempt failed, or a handler of the application threw. */
export class ClientErrorEvent extends ClientEvent {
  constructor(error) {
    super('error', { error });
  }
}

/**
 * ConnectError: a connection attempt failed (the socket closed before it
 * opened). Where the socket lets the client see the server's HTTP refusal
 * (the ws package's does, a browser's does not), status is its status and
 * retryAfterMs its Retry-After.
 */
export class ConnectError extends Error {
  constructor(url, message, code, refusal) {
    super(`wsrpc: connect ${url}: ${message}`);
    this.name = 'ConnectError';
    this.url = url;
    this.code = code;
    if (refusal) {
      this.status = refusal.status;
      if (refusal.retryAfterMs !== undefined) this.retryAfterMs = refusal.retryAfterMs;
    }
  }
}

/** The HTTP refusals of a handshake whose Retry-After is a wait before the next attempt (as the Go client's). */
const RETRY_STATUSES = new Set([429, 502, 503, 504]);

/**
 * retryAfter reads a Retry-After header (seconds, or an HTTP date) as ms
 * from now, or undefined when there is none or it is not one.
 */
export function retryAfter(v, now = Date.now()) {
  if (typeof v !== 'string') return undefined;
  v = v.trim();
  if (/^\d+$/.test(v)) return Math.min(Number(v) * 1000, MAX_DELAY);
  const at = Date.parse(v);
  return Number.isNaN(at) || !/[a-z]/i.test(v) ? undefined : Math.max(0, at - now);
}

/** hintOf is the wait a failed attempt's refusal asks for (capped at MAX_RETRY_HINT), or 0 for none. */
function hintOf(err) {
  if (!(err instanceof ConnectError) || !RETRY_STATUSES.has(err.status) || err.retryAfterMs === undefined) return 0;
  return Math.min(err.retryAfterMs, MAX_RETRY_HINT);
}

let wsPackage; // the ws package's WebSocket, loaded once when the platform has none

async function webSocketClass(given) {
  if (given) return { WS: given, pkg: false };
  if (typeof globalThis.WebSocket === 'function') return { WS: globalThis.WebSocket, pkg: false };
  if (!wsPackage) {
    try {
      const m = await import(/* webpackIgnore: true */ /* @vite-ignore */ 'ws'); // Node only: never reached where the platform has a WebSocket
      wsPackage = m.WebSocket ?? m.default;
    } catch (e) {
      throw new Error('wsrpc: this platform has no WebSocket: install the ws package (npm install ws) or pass options.WebSocket', { cause: e });
    }
  }
  return { WS: wsPackage, pkg: true };
}

/**
 * Client is a connection to a wsrpc service (docs/PROTOCOL.md) that
 * reconnects by itself. Make one with {@link connect}, or with `new
 * Client(url, options)` and wait for {@link Client#ready}.
 */
export class Client extends EventTarget {
  constructor(url, options = {}) {
    super();
    const urls = Array.isArray(url) ? [...url] : [url, ...(options.endpoints ?? [])];
    if (urls.length === 0 || urls.some((u) => typeof u !== 'string' && !(u instanceof URL))) {
      throw new TypeError('wsrpc: Client needs a URL (a string), or an array of them');
    }
    this._urls = urls.map((u) => httpToWs(String(u)));
    const o = options;
    const base = o.backoff?.base ?? DEFAULT_BACKOFF_BASE;
    const max = o.backoff?.max ?? DEFAULT_BACKOFF_MAX;
    const problems = [];
    if (!(base > 0) || !(max >= base) || !(max <= MAX_DELAY)) problems.push(`backoff {base: ${base}, max: ${max}}: base must be positive and max at least base, at most ${MAX_DELAY} ms`);
    if (o.queueSize !== undefined && !(Number.isInteger(o.queueSize) && o.queueSize >= 0)) problems.push(`queueSize ${o.queueSize}: must be a non-negative integer`);
    if (o.callTimeout !== undefined && !(o.callTimeout >= 0)) problems.push(`callTimeout ${o.callTimeout}: must not be negative`);
    if (o.credentials !== undefined && typeof o.credentials !== 'function') problems.push('credentials must be a function returning the credential (the params of the in-band authentication and of $/auth.refresh)');
    if (o.inBandAuth !== undefined && (typeof o.inBandAuth !== 'string' || o.inBandAuth === '' || typeof o.credentials !== 'function')) problems.push('inBandAuth must be a method name, and needs credentials');
    if (o.codec !== undefined && !['json', 'binary', 'auto'].includes(o.codec)) problems.push(`codec ${JSON.stringify(o.codec)}: must be "json", "binary" or "auto"`);
    if (o.maxServed !== undefined && !(Number.isInteger(o.maxServed) && o.maxServed >= 1)) problems.push(`maxServed ${o.maxServed}: must be a positive integer`);
    if (o.closeTimeout !== undefined && !(o.closeTimeout > 0 && o.closeTimeout <= MAX_DELAY)) problems.push(`closeTimeout ${o.closeTimeout}: must be positive, at most ${MAX_DELAY} ms`);
    if (o.handshakeTimeout !== undefined && !(o.handshakeTimeout > 0 && o.handshakeTimeout <= MAX_DELAY)) problems.push(`handshakeTimeout ${o.handshakeTimeout}: must be positive, at most ${MAX_DELAY} ms`);
    if (o.maxMessageSize !== undefined && !(Number.isInteger(o.maxMessageSize) && o.maxMessageSize > 0)) problems.push(`maxMessageSize ${o.maxMessageSize}: must be a positive integer`);
    const hb = o.heartbeat === false ? null : { interval: o.heartbeat?.interval ?? DEFAULT_HEARTBEAT_INTERVAL, timeout: o.heartbeat?.timeout ?? DEFAULT_PONG_TIMEOUT };
    if (hb && !(hb.interval > 0 && hb.timeout > 0 && hb.interval <= MAX_DELAY && hb.timeout <= MAX_DELAY)) problems.push(`heartbeat {interval: ${hb.interval}, timeout: ${hb.timeout}}: both must be positive, at most ${MAX_DELAY} ms`);
    if (problems.length > 0) throw new TypeError('wsrpc: ' + problems.join('; '));
    this._o = {
      WebSocket: o.WebSocket,
      protocols: { json: ['jsonrpc2.0'], binary: ['wsrpc.v1'], auto: ['wsrpc.v1', 'jsonrpc2.0'] }[o.codec ?? 'json'],
      reconnect: o.reconnect ?? true,
      waitForServer: o.waitForServer ?? false,
      backoffBase: base,
      backoffMax: max,
      queueSize: o.queueSize ?? DEFAULT_QUEUE_SIZE,
      callTimeout: o.callTimeout ?? 0,
      handshakeTimeout: o.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT,
      closeTimeout: o.closeTimeout ?? DEFAULT_CLOSE_TIMEOUT,
      onPublication: o.onPublication,
      random: o.random ?? Math.random,
    };
    this.limits = {
      maxMetadata: MAX_METADATA,
      maxMetadataBytes: MAX_METADATA_BYTES,
      maxMessageSize: o.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
      maxBuffered: DEFAULT_MAX_BUFFERED,
      maxServed: o.maxServed ?? DEFAULT_MAX_SERVED,
    };
    this.heartbeat = hb;
    this._auth = new Auth(this, o.credentials, o.inBandAuth);
    this._next = 0; // index in _urls of the next connection attempt
    this._status = Status.CONNECTING;
    this._conn = null; // the current connection, null while none is up
    this._conns = new Set(); // every open connection, those being retired included
    this._waiters = new Set(); // calls waiting for a connection: their wake-up functions
    this._pauses = new Set(); // calls pausing before a retry: their wake-up functions (close ends the pause)
    this._waiting = 0;
    this._closing = false;
    this._dead = null; // with reconnect off: why calls fail once the connection is gone
    this._handlers = new Map();
    this._subs = new Map(); // topic or pattern → Subscription
    this._sleeper = null; // {timer, resolve} of the manager's backoff sleep
    if (typeof o.onStatus === 'function') this.addEventListener('status', (e) => o.onStatus(e.status, e.error));
    this._ready = new Promise((resolve, reject) => { this._readyResolve = resolve; this._readyReject = reject; });
    this._ready.catch(() => {});
    this._managed = this._manage().catch((err) => this.report(err));
  }

  /** status is where the client is: connecting, connected, reconnecting or closed. */
  get status() {
    return this._status;
  }

  /** authExpiry is when the current connection's authentication ends (ms since the epoch), or null (none, or no connection). */
  get authExpiry() {
    return this._conn?.authExpiresAt ?? null;
  }

  /** url is the endpoint of the current connection ('' while none is up). */
  get url() {
    return this._conn?.url ?? '';
  }

  /**
   * ready resolves once the first connection is up; it rejects if that
   * fails (every endpoint refused it, and waitForServer is off) or the
   * client is closed first.
   */
  ready() {
    return this._ready;
  }

  /**
   * call calls method with params (an array, an object, or undefined for
   * none) and resolves with its result. See the README for the options
   * (signal, timeout, metadata, idempotent) and the retry table.
   */
  call(method, params, opts = {}) {
    return this._attempts(opts, opts.idempotent === true, (conn, scope) =>
      conn.request(method, params, { deadline: scope.deadline, signal: scope.signal, meta: opts.metadata }));
  }

  /**
   * notify sends a notification (no reply, ever). It resolves once sent,
   * waiting for a connection as a call does; it is sent again only if it
   * was not sent.
   */
  async notify(method, params, opts = {}) {
    await this._attempts(opts, false, (conn) => conn.notify(method, params, opts.metadata));
  }

  /**
   * _attempts makes one call's attempts: each on the connection _next_
   * gives, by send(conn, scope), until one succeeds or _retry says the
   * error is final.
   */
  async _attempts(opts, idempotent, send) {
    const scope = this._scope(opts);
    const a = { n: 0, avoid: null, pause: 0, admitted: false };
    for (;;) {
      const conn = await this._next_(a, scope);
      try {
        return await send(conn, scope);
      } catch (err) {
        this._retry(err, conn, a, scope, idempotent);
      }
    }
  }

  /**
   * handle serves method for the server's calls to this client:
   * fn(params, ctx) returns the result (or a promise of it); ctx has
   * signal (aborted when the server cancels, the deadline passes or the
   * connection ends), deadline, metadata and method. Throwing an RPCError
   * sends its code; any other error is sent as -32603. It returns a
   * function that removes the handler.
   */
  handle(method, fn) {
    if (typeof method !== 'string' || method.startsWith('$/')) throw new TypeError(`wsrpc: handle: ${JSON.stringify(method)}: method names starting with "$/" belong to the protocol`);
    if (typeof fn !== 'function') throw new TypeError('wsrpc: handle needs a function');
    this._handlers.set(method, fn);
    return () => {
      if (this._handlers.get(method) === fn) this._handlers.delete(method);
    };
  }

  /**
   * subscribe subscribes to a topic or pattern and resolves with the
   * Subscription (an async iterator of publications) once the server has
   * accepted it. It survives reconnects: the client subscribes again, and
   * recovers what it missed on exact topics.
   */
  async subscribe(topic, opts = {}) {
    const why = checkPattern(topic);
    if (why) throw rpcError(Codes.INVALID_PARAMS, why);
    const s = new Subscription(this, topic, opts);
    if (opts.since && !s.exact) throw rpcError(Codes.INVALID_PARAMS, `${JSON.stringify(topic)} is a pattern: since needs an exact topic`);
    if (this._subs.has(topic)) throw rpcError(Codes.INVALID_PARAMS, `already subscribed to ${JSON.stringify(topic)}`);
    this._subs.set(topic, s);
    try {
      await s._first(this._scope(opts));
    } catch (err) {
      this._forget(s);
      s._end(err, true);
      throw err;
    }
    return s;
  }

  /**
   * publish publishes data (any JSON value) on topic, where the server
   * lets clients publish, and resolves with its position {offset, epoch}
   * ({offset: 0, epoch: '', dropped: true} when a server hook dropped it).
   */
  async publish(topic, data, opts = {}) {
    const why = checkPattern(topic, true);
    if (why) throw rpcError(Codes.INVALID_PARAMS, why);
    const r = await this.call(M.publish, { topic, data: data === undefined ? null : data }, opts);
    if (r && r.dropped === true) return { offset: 0, epoch: '', dropped: true };
    if (!r || typeof r.offset !== 'number' || typeof r.epoch !== 'string') throw rpcError(Codes.INTERNAL_ERROR, `$/publish: bad result ${JSON.stringify(r)}`);
    return { offset: r.offset, epoch: r.epoch };
  }

  /**
   * stream calls method as a stream (section 14): the returned Stream is
   * an async iterator of the results, read under credit-based flow
   * control; stream.result is the promise of the final value.
   */
  stream(method, params, opts = {}) {
    return new Stream(this, method, params, opts);
  }

  /**
   * close stops reconnecting, fails the calls waiting for a connection,
   * closes every connection with 1000 (which fails the calls in flight:
   * their errors have `closed` set) and ends every subscription. It
   * resolves once the sockets have closed. Idempotent.
   */
  async close() {
    if (!this._closing) {
      this._closing = true;
      this._conn = null;
      this._setStatus(Status.CLOSED);
      this._readyReject(closedError(notSent('the client was closed before it connected')));
      this._wakeSleeper();
      this._wake();
      for (const w of [...this._pauses]) w();
      for (const s of [...this._subs.values()]) s._end(null);
      this._subs.clear();
      for (const c of this._conns) c.close(CLOSE.NORMAL, 'client closed');
      if (this._opening) {
        const ws = this._opening;
        if (ws.terminate) ws.terminate();
        else ws.close();
      }
    }
    // A socket whose peer does not answer the close (a server that hangs)
    // is dropped after closeTimeout: before the manager is awaited, which
    // returns only once its connection has closed.
    const drop = (c) => bounded(c.closed, this._o.closeTimeout, () => c.abandon());
    await Promise.all([...this._conns].map(drop));
    await this._managed;
    await Promise.all([...this._conns].map(drop));
  }

  // ---- internals: connections -------------------------------------------------

  report(err) {
    this.dispatchEvent(new ClientErrorEvent(err));
  }

  handler(method) {
    return this._handlers.get(method);
  }

  _setStatus(s, error) {
    if (this._status === s) return;
    this._status = s;
    this.dispatchEvent(new StatusEvent(s, error));
  }

  _delay(n) {
    return jitter(this._o.backoffBase, this._o.backoffMax, n, this._o.random);
  }

  /** _sleep waits ms (the manager's backoff), or less if the client closes. */
  _sleep(ms) {
    if (ms <= 0 || this._closing) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this._sleeper = null; resolve(); }, ms);
      this._sleeper = { timer, resolve };
    });
  }

  _wakeSleeper() {
    const s = this._sleeper;
    if (s) {
      this._sleeper = null;
      clearTimeout(s.timer);
      s.resolve();
    }
  }

  /** _open opens one WebSocket to url, bounded by the handshake timeout. */
  async _open(url) {
    const { WS, pkg } = await webSocketClass(this._o.WebSocket);
    return await new Promise((resolve, reject) => {
      let ws;
      try {
        ws = pkg ? new WS(url, this._o.protocols, { maxPayload: 64 << 20 }) : new WS(url, this._o.protocols);
      } catch (e) {
        reject(new ConnectError(url, e.message));
        return;
      }
      ws.binaryType = 'arraybuffer'; // wsrpc.v1 messages, if the server chooses it
      let why = '';
      let refusal = null;
      if (typeof ws.on === 'function') {
        // The ws package shows the server's HTTP answer to a handshake it
        // refused: its status and Retry-After say when to try again.
        ws.on('unexpected-response', (req, res) => {
          refusal = { status: res.statusCode, retryAfterMs: retryAfter(res.headers?.['retry-after']) };
          why = `the server refused the handshake: HTTP ${res.statusCode}`;
          res.resume?.();
          ws.terminate();
        });
      }
      this._opening = ws; // close() aborts it
      const timer = setTimeout(() => {
        why = `no handshake within ${this._o.handshakeTimeout} ms`;
        if (ws.terminate) ws.terminate();
        else ws.close();
      }, this._o.handshakeTimeout);
      ws.onerror = (ev) => { why ||= ev?.message || ev?.error?.message || ''; };
      ws.onclose = (ev) => {
        clearTimeout(timer);
        if (this._opening === ws) this._opening = null;
        reject(new ConnectError(url, why || `closed before it opened (${ev.code}${ev.reason ? ' ' + ev.reason : ''})`, ev.code, refusal));
      };
      ws.onopen = () => {
        clearTimeout(timer);
        if (this._opening === ws) this._opening = null;
        if (ws.protocol && !this._o.protocols.includes(ws.protocol.toLowerCase())) {
          // Section 1.2: only what was offered may be chosen.
          ws.onclose = () => reject(new ConnectError(url, `the server chose the subprotocol ${JSON.stringify(ws.protocol)}, which was not offered`));
          try {
            ws.close(1002, 'unsupported subprotocol');
          } catch {
            ws.close(); // browsers send only 1000 and 3000-4999
          }
          return;
        }
        resolve(ws);
      };
    });
  }

  /** _connect makes one connection to the next endpoint, authenticated in-band if asked. */
  async _connect() {
    const url = this._urls[this._next % this._urls.length];
    this._next++;
    const ws = await this._open(url);
    const conn = new Conn(this, ws, url);
    this._conns.add(conn);
    if (this._closing) {
      conn.close(CLOSE.NORMAL, 'client closed');
      throw closedError(notSent('the client is closed'));
    }
    if (this._auth.method) {
      try {
        await this._auth.login(conn, Date.now() + this._o.handshakeTimeout);
      } catch (err) {
        conn.close(CLOSE.NORMAL, 'authentication failed');
        throw err;
      }
      if (!conn.usable) throw new ConnectError(url, 'the connection ended during authentication');
    }
    return conn;
  }

  /**
   * _manage is the client's one loop: it makes the first connection, then
   * watches the current one and makes the next when it ends or the server
   * announces its shutdown.
   */
  async _manage() {
    // The first connection: each endpoint once, or, with waitForServer,
    // until it is made (a first pass without pause, then with backoff).
    let conn = null;
    for (let attempt = 1; !conn; attempt++) {
      try {
        conn = await this._connect();
      } catch (err) {
        const hint = hintOf(err);
        if (this._closing) return;
        this.report(err);
        if (!this._o.waitForServer && attempt >= this._urls.length) {
          this._readyReject(err);
          this._dead = notSent(`the first connection failed (${err.message})`);
          this._setStatus(Status.CLOSED, err);
          this._closing = true;
          this._wake();
          for (const s of [...this._subs.values()]) s._end(err);
          return;
        }
        const n = attempt - this._urls.length;
        await this._sleep(n < 0 ? 0 : hint > 0 ? spreadHint(hint, this._o.random) : this._delay(n));
        if (this._closing) return;
      }
    }
    for (;;) {
      this._setConn(conn);
      this._readyResolve();
      const why = await new Promise((resolve) => {
        conn._watch = resolve;
        // A notice or a close that came before the watch was set (while
        // authenticating, say) is not missed.
        if (conn.state === 'closed') resolve('closed');
        else if (conn.notice) resolve('notice');
      });
      if (this._closing) return;
      if (!this._o.reconnect) {
        this._conn = null;
        this._dead = notSent(why === 'notice' ? 'reconnect is off and the server is shutting down' : 'reconnect is off and the connection is gone');
        this._setStatus(Status.CLOSED);
        this._wake();
        for (const s of [...this._subs.values()]) s._end(this._dead);
        if (why === 'notice') this._retire(conn);
        return;
      }
      this._conn = null;
      this._setStatus(Status.RECONNECTING);
      // After a notice, the first attempt waits for the server's hint; a
      // close with 1012 or 1001 without one counts as a notice with hint 0
      // (section 8). Otherwise: the backoff.
      const notice = why === 'notice';
      if (notice) this._retire(conn);
      const hinted = notice || why === 'restart';
      const hint = notice ? conn.notice.retryAfterMs : 0;
      // Connections that keep closing with 4401 (lifetimes too short to
      // refresh) back off further (section 15.4).
      const extra = conn.closeInfo?.code === CLOSE_AUTH_EXPIRED ? this._auth.expiredCloses : 0;
      conn = null;
      // A handshake refused with a Retry-After (503 while the server
      // drains, 429 or 503 under a handshake rate) waits that long instead
      // of the backoff. Either hint is spread over [h, h + h/4].
      let refused = 0;
      for (let attempt = 0; !conn; attempt++) {
        let wait = this._delay(attempt + extra);
        if (attempt === 0 && hinted) wait = spreadHint(Math.min(hint, MAX_RETRY_HINT), this._o.random);
        else if (refused > 0) wait = spreadHint(refused, this._o.random);
        await this._sleep(wait);
        if (this._closing) return;
        try {
          conn = await this._connect();
        } catch (err) {
          if (this._closing) return;
          refused = hintOf(err);
          this.report(err);
        }
      }
    }
  }

  /** _setConn makes conn the current connection and wakes the calls waiting for one. */
  _setConn(conn) {
    this._conn = conn;
    this._setStatus(Status.CONNECTED);
    this._wake();
    for (const s of [...this._subs.values()]) s._resubscribe(conn);
  }

  /**
   * _retire drains a connection after its shutdown notice: new calls go to
   * the next one; once its calls in flight (both ways) are answered it is
   * closed with 1000. The server is told too, so it makes no new calls.
   */
  _retire(conn) {
    conn._send(conn.codec.shutdown(0, 'client moved to a new connection'));
    conn._retiring = true;
    this._maybeRetired(conn);
  }

  _maybeRetired(conn) {
    if (conn._retiring && conn.inFlight === 0) conn.close(CLOSE.NORMAL, 'client moved to a new connection');
  }

  // Conn host callbacks.
  onNotice(conn) {
    this.dispatchEvent(new ShutdownEvent(conn.notice.retryAfterMs, conn.notice.reason, conn.url));
    if (conn._watch) conn._watch('notice');
  }

  onClose(conn) {
    this._conns.delete(conn);
    const { code, reason } = conn.closeInfo;
    this._auth.onClose(conn, code);
    this.dispatchEvent(new DisconnectEvent(code, reason, conn.url));
    if (conn._watch) conn._watch(conn.notice || code === CLOSE.RESTART || code === CLOSE.GOING_AWAY ? 'restart' : 'closed');
  }

  onAuthExpiry(conn, params) {
    this._auth.onExpiry(conn, params);
  }

  onServed(conn) {
    this._maybeRetired(conn);
  }

  onSettled(conn) {
    this._maybeRetired(conn);
  }

  onPublication(conn, p) {
    if (!p || typeof p !== 'object' || typeof p.sub !== 'number' || typeof p.topic !== 'string') {
      conn.stats.badMessages++;
      return;
    }
    const s = conn.routes.get(p.sub);
    if (s) {
      s._deliver(conn, p);
      return;
    }
    if (this._o.onPublication && !p.skipped) {
      this._o.onPublication({ topic: p.topic, offset: p.offset ?? 0, epoch: p.epoch ?? '', data: p.data ?? null, gap: false });
    }
  }

  _forget(s) {
    if (this._subs.get(s.topic) === s) this._subs.delete(s.topic);
  }

  // ---- internals: calls -------------------------------------------------------

  /**
   * _scope is one call's deadline and signal: opts.timeout (or the
   * client's callTimeout) in ms from now, and opts.signal.
   */
  _scope(opts) {
    // Infinity, like 0 or none, is no deadline.
    const timeout = opts.timeout > 0 && Number.isFinite(opts.timeout) ? opts.timeout : this._o.callTimeout;
    return { deadline: timeout > 0 && Number.isFinite(timeout) ? Date.now() + timeout : 0, signal: opts.signal };
  }

  /** _next_ returns the connection for a call's next attempt, waiting for one if needed. */
  async _next_(a, scope) {
    if (a.pause > 0) await this._pause(a.pause, scope);
    for (;;) {
      if (this._closing) throw closedError(this._dead ?? notSent('the client is closed'));
      const c = this._conn;
      if (c && c !== a.avoid && c.usable) return c;
      if (this._dead) throw this._dead;
      if (!a.admitted && this._waiting >= this._o.queueSize) {
        throw notSent(`queue full: ${this._o.queueSize} calls already waiting for a connection`);
      }
      a.admitted = true;
      await this._await(scope);
    }
  }

  /** _await waits until the connection changes, the call's scope ends or the client closes. */
  _await(scope) {
    return new Promise((resolve, reject) => {
      this._waiting++;
      let timer;
      const { signal, deadline } = scope;
      const end = (err) => {
        if (!this._waiters.delete(wake)) return;
        this._waiting--;
        cancel(timer);
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const wake = () => end(null);
      const onAbort = () => end(waitError(abortError(signal)));
      this._waiters.add(wake);
      if (signal?.aborted) {
        onAbort();
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      if (deadline > 0) {
        timer = later(() => end(rpcError(Codes.DEADLINE_EXCEEDED, 'waiting for a connection: deadline exceeded; the request was not sent')), deadline - Date.now());
      }
    });
  }

  _wake() {
    for (const w of [...this._waiters]) w();
  }

  /**
   * _pause waits ms before a call's retry on the same connection, or less
   * if the client closes (then _next_ fails the call).
   */
  _pause(ms, scope) {
    return new Promise((resolve, reject) => {
      const { signal, deadline } = scope;
      if (deadline > 0 && Date.now() + ms >= deadline) {
        reject(rpcError(Codes.DEADLINE_EXCEEDED, 'deadline exceeded before the call could be sent again'));
        return;
      }
      if (this._closing) {
        resolve();
        return;
      }
      const end = (err) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this._pauses.delete(wake);
        if (err) reject(err);
        else resolve();
      };
      const onAbort = () => end(abortError(signal));
      const wake = () => end(null);
      const timer = setTimeout(wake, ms);
      this._pauses.add(wake);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * _retry decides what follows an attempt on conn that failed with err:
   * it returns (another attempt, state in a) or throws the error to report.
   * -32000 (never started) is retried; -32006 (outcome unknown) only for
   * an idempotent call; anything else is final. A retry goes to another
   * connection when conn is gone or going away, to the same one after a
   * backoff pause when it is healthy.
   */
  _retry(err, conn, a, scope, idempotent) {
    if (!(err instanceof RPCError) || (err.code !== Codes.UNAVAILABLE && err.code !== Codes.CONNECTION_LOST)) throw err;
    if (this._closing) throw closedError(err);
    if (err.code === Codes.CONNECTION_LOST && !idempotent) throw err;
    if (scope.signal?.aborted || (scope.deadline > 0 && Date.now() >= scope.deadline)) throw err;
    a.n++;
    if (a.n >= MAX_ATTEMPTS) throw rpcError(err.code, `gave up after ${a.n} attempts: ${err.message}`, err);
    a.avoid = null;
    a.pause = 0;
    if (!conn.usable) {
      if (!this._o.reconnect) throw err;
      a.avoid = conn;
    } else {
      a.pause = this._delay(a.n - 1);
    }
  }
}

/**
 * connect makes a Client and resolves with it once its first connection is
 * up; it rejects (and the client is closed) if that fails.
 */
export async function connect(url, options = {}) {
  const c = new Client(url, options);
  try {
    await c.ready();
  } catch (err) {
    await c.close();
    throw err;
  }
  return c;
}

function httpToWs(u) {
  if (u.startsWith('http://')) return 'ws://' + u.slice(7);
  if (u.startsWith('https://')) return 'wss://' + u.slice(8);
  return u;
}

function waitError(err) {
  return rpcError(err.code, `waiting for a connection: ${err.message}; the request was not sent`, err.cause ?? err);
}

/** bounded waits for p at most ms, calling onTimeout then. */
function bounded(p, ms, onTimeout) {
  let timer;
  return Promise.race([
    p,
    new Promise((resolve) => { timer = setTimeout(() => { onTimeout(); resolve(); }, ms); }),
  ]).finally(() => clearTimeout(timer));
}
