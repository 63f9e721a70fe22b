// One WebSocket connection speaking JSON-RPC 2.0 with wsrpc's extensions:
// the table of pending calls, the handlers serving the server's calls, the
// streams and the shutdown notice. The Client (client.js) owns every Conn
// and decides what happens around it (reconnects, retries, subscriptions).

import { Codes, RPCError, rpcError, notSent } from './errors.js';
import { jsonCodec, checkMetadata, isParams } from './jsonrpc.js';
import { binaryCodec } from './binary.js';
import { later, cancel } from './timer.js';

const OPEN = 1;

/** ENVELOPE is about what a $/stream.item adds to its result, in bytes. */
const ENVELOPE = 64;

/** Methods of the protocol (sections 4.7, 13 and 14). */
export const M = Object.freeze({
  cancel: '$/cancelRequest',
  shutdown: '$/shutdown',
  subscribe: '$/subscribe',
  unsubscribe: '$/unsubscribe',
  publish: '$/publish',
  publication: '$/publication',
  streamItem: '$/stream.item',
  streamCredit: '$/stream.credit',
  authExpiry: '$/auth.expiry',
});

/** Close codes (section 9) the client acts on. */
export const CLOSE = Object.freeze({ NORMAL: 1000, GOING_AWAY: 1001, RESTART: 1012 });

/** MaxRetryHint caps the reconnect delay a server may ask for (ms), as the Go client does. */
export const MAX_RETRY_HINT = 60_000;

let connSeq = 0;

export class Conn {
  /**
   * @param {object} host the client: handler(method), onNotice(conn),
   *   onClose(conn), onPublication(conn, params), limits
   * @param {WebSocket} ws an open socket
   */
  constructor(host, ws, url) {
    this.host = host;
    this.ws = ws;
    this.url = url;
    this.seq = ++connSeq;
    this.protocol = ws.protocol || '';
    // Section 1.2: the server's choice decides; none means JSON-RPC.
    this.codec = this.protocol.toLowerCase() === 'wsrpc.v1' ? binaryCodec : jsonCodec;
    if (this.codec.binary) ws.binaryType = 'arraybuffer';
    this.state = 'open'; // 'open' | 'going' (notice received) | 'closed'
    this.notice = null; // {retryAfterMs, reason} once the server sent it
    this.nextID = 1;
    this.pending = new Map(); // id → {resolve, reject, onItem, onReply, cleanup}
    this.served = new Map(); // key of the server's request id → AbortController
    this.notified = new Set(); // AbortControllers of the server's notifications being handled
    this.routes = new Map(); // subscription id → Subscription
    this.closeInfo = null; // {code, reason, wasClean}
    this.authExpiresAt = null; // when its authentication ends (auth.js), null: never
    this.refreshTimer = undefined;
    this.refreshFailures = 0;
    this.refreshOff = false; // the server does not refresh (-32601)
    this.stats = { unknownReplies: 0, badMessages: 0, droppedItems: 0, droppedNotifications: 0 };
    this.closed = new Promise((resolve) => { this._closed = resolve; });
    this.idle = null; // resolves when nothing is in flight, for a drain
    ws.onmessage = (ev) => this._onMessage(ev.data);
    ws.onclose = (ev) => this._onClose(ev.code, ev.reason, ev.wasClean);
    ws.onerror = () => {}; // the close event follows and says what happened
    this._heartbeat(host.heartbeat);
  }

  /**
   * _heartbeat pings the server every interval and drops the connection
   * when the pong does not come within timeout (section 1.5), where the
   * socket can ping: the ws package's can, a browser's cannot (there the
   * server's heartbeat finds a dead connection).
   */
  _heartbeat(hb) {
    const ws = this.ws;
    if (!hb || typeof ws.ping !== 'function' || typeof ws.on !== 'function') return;
    this.stats.pongs = 0;
    const ping = () => {
      this._hbTimer = setTimeout(() => {
        ws.terminate?.();
      }, hb.timeout);
      try {
        ws.ping();
      } catch {
        // closing: the close event follows
      }
    };
    ws.on('pong', () => {
      this.stats.pongs++;
      clearTimeout(this._hbTimer);
      this._hbTimer = setTimeout(ping, hb.interval);
    });
    this._hbTimer = setTimeout(ping, hb.interval);
  }

  /** usable: new calls may go out on this connection. */
  get usable() {
    return this.state === 'open' && this.ws.readyState === OPEN;
  }

  /** send writes one text message; false if the socket is not open. */
  _send(text) {
    if (this.ws.readyState !== OPEN) return false;
    try {
      this.ws.send(text);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * request sends a call and returns the promise of its result. opts:
   * deadline (ms since the epoch, 0: none), signal, meta, onReply (called
   * synchronously with the reply, before any later message is handled),
   * stream (a credit: the call is a stream whose items go to onItem).
   * It throws (synchronously) an RPCError when the call was not sent.
   */
  request(method, params, opts = {}) {
    const { deadline = 0, signal, meta, stream = 0, onItem, onReply, onID } = opts;
    if (this.state !== 'open') throw notSent(this.state === 'going' ? 'the server is shutting down' : 'the connection is closed');
    if (params !== undefined && !this.codec.binary && !isParams(params)) throw rpcError(Codes.INVALID_REQUEST, 'params must be an array or an object (JSON-RPC 2.0)');
    const why = checkMetadata(meta, this.host.limits.maxMetadata, this.host.limits.maxMetadataBytes);
    if (why) throw rpcError(Codes.INVALID_REQUEST, why);
    let timeoutMs = 0;
    if (deadline > 0) {
      timeoutMs = deadline - Date.now();
      if (timeoutMs <= 0) throw rpcError(Codes.DEADLINE_EXCEEDED, 'deadline exceeded; the request was not sent');
    }
    if (signal?.aborted) throw abortError(signal);
    const id = this.nextID++;
    onID?.(id);
    const text = this.codec.request({ id, method, params, timeoutMs, meta, stream });
    this._checkSize(text);
    return new Promise((resolve, reject) => {
      let timer;
      const cleanup = () => {
        cancel(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const giveUp = (err) => {
        if (!this.pending.has(id)) return;
        this.pending.delete(id);
        cleanup();
        this._send(this.codec.cancel(id));
        reject(err);
        this.host.onSettled(this);
      };
      const onAbort = () => giveUp(abortError(signal));
      this.pending.set(id, { resolve, reject, onItem, onReply, cleanup, giveUp });
      if (!this._send(text)) {
        this.pending.delete(id);
        reject(notSent('the connection is closed'));
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      if (timeoutMs > 0) timer = later(() => giveUp(rpcError(Codes.DEADLINE_EXCEEDED, 'deadline exceeded')), timeoutMs);
    });
  }

  /** notify sends a notification; it throws an RPCError when it was not sent. */
  notify(method, params, meta) {
    if (this.state !== 'open') throw notSent(this.state === 'going' ? 'the server is shutting down' : 'the connection is closed');
    if (params !== undefined && !this.codec.binary && !isParams(params)) throw rpcError(Codes.INVALID_REQUEST, 'params must be an array or an object (JSON-RPC 2.0)');
    const why = checkMetadata(meta, this.host.limits.maxMetadata, this.host.limits.maxMetadataBytes);
    if (why) throw rpcError(Codes.INVALID_REQUEST, why);
    const text = this.codec.notification({ method, params, meta });
    this._checkSize(text);
    if (!this._send(text)) throw notSent('the connection is closed');
  }

  /** credit grants n more items to the stream of request id. */
  credit(id, n) {
    this._send(this.codec.credit(id, n));
  }

  /** cancel gives up on request id, as its deadline or signal would. */
  cancel(id, err) {
    this.pending.get(id)?.giveUp(err);
  }

  _checkSize(m) {
    const max = this.host.limits.maxMessageSize;
    if (m.length > max / 3 && this.codec.size(m) > max) {
      throw rpcError(Codes.INVALID_REQUEST, `message of ${this.codec.size(m)} bytes is over the limit of ${max}; the request was not sent`);
    }
    if (this.ws.bufferedAmount > this.host.limits.maxBuffered) {
      throw rpcError(Codes.BUSY, `${this.ws.bufferedAmount} bytes wait to be written on the socket; the request was not sent`);
    }
  }

  _onMessage(data) {
    if (data instanceof ArrayBuffer) data = new Uint8Array(data);
    if ((typeof data === 'string') === this.codec.binary) {
      // A message of the other type: 1003 (section 1.3).
      this.stats.badMessages++;
      this.close(1003, this.codec.binary ? 'text message on a wsrpc.v1 (binary) connection' : 'binary message on a JSON-RPC (text) connection');
      return;
    }
    const d = this.codec.decode(data);
    if (d.close) {
      // A malformed wsrpc.v1 message: 1002, no answer (section 3.4).
      this.stats.badMessages++;
      this.close(d.close.code, d.close.reason);
      return;
    }
    const { batch, entries } = d;
    // What one entry weighs, about: a stream's window grows for small results.
    this._entrySize = Math.max(1, Math.floor(data.length / entries.length) - ENVELOPE);
    const replies = batch ? [] : null;
    const waits = [];
    for (const e of entries) {
      try {
        this._dispatch(e, replies, waits);
      } catch (err) {
        // A handler of ours (onReply, onItem, an event listener) threw:
        // it is a bug of the application, not of the peer; keep reading.
        this.host.report(err);
      }
    }
    if (batch && waits.length > 0) {
      Promise.all(waits).then(() => {
        if (replies.length > 0) for (const m of this.codec.batch(replies)) this._send(m);
      });
    } else if (batch && replies.length > 0) {
      for (const m of this.codec.batch(replies)) this._send(m);
    }
  }

  _reply(text, replies) {
    if (replies) replies.push(text);
    else this._send(text);
  }

  _dispatch(e, replies, waits) {
    switch (e.kind) {
      case 'result':
      case 'error': {
        const p = typeof e.id === 'number' ? this.pending.get(e.id) : undefined;
        if (!p) {
          this.stats.unknownReplies++;
          return;
        }
        this.pending.delete(e.id);
        p.cleanup();
        try {
          if (e.kind === 'result') {
            p.onReply?.(e.result);
            p.resolve(e.result);
          } else {
            p.reject(new RPCError(e.code, e.message, e.data));
          }
        } finally {
          this.host.onSettled(this);
        }
        return;
      }
      case 'badReply': {
        this.stats.badMessages++;
        const p = typeof e.id === 'number' ? this.pending.get(e.id) : undefined;
        if (p) {
          this.pending.delete(e.id);
          p.cleanup();
          p.reject(rpcError(Codes.INTERNAL_ERROR, `invalid reply from peer: ${e.why}`));
          this.host.onSettled(this);
        }
        return;
      }
      case 'dropped':
        this.stats.badMessages++;
        return;
      case 'invalid':
        this.stats.badMessages++;
        this._reply(this.codec.error(e.id, e.code, e.why), replies);
        return;
      case 'notification':
        this._notification(e);
        return;
      case 'request': {
        const w = this._serve(e, replies);
        if (w) waits.push(w);
        return;
      }
    }
  }

  _notification(e) {
    const p = e.params;
    switch (e.method) {
      case M.streamItem: {
        const s = p && typeof p.id === 'number' && Object.hasOwn(p, 'item') ? this.pending.get(p.id) : undefined;
        if (!s?.onItem) {
          this.stats.droppedItems++;
          return;
        }
        s.onItem(p.item, this._entrySize);
        return;
      }
      case M.publication:
        this.host.onPublication(this, p);
        return;
      case M.authExpiry:
        this.host.onAuthExpiry(this, p);
        return;
      case M.cancel: {
        if (!p || typeof p !== 'object' || !Object.hasOwn(p, 'id') || !(p.id === null || ['string', 'number', 'bigint'].includes(typeof p.id))) {
          this._send(this.codec.error(null, Codes.INVALID_REQUEST, '$/cancelRequest needs params {"id": <id>}'));
          return;
        }
        const ac = this.served.get(idKey(p.id));
        if (ac) {
          ac.cancelled = true;
          ac.abort(rpcError(Codes.CANCELED, 'the caller cancelled the call'));
        }
        return;
      }
      case M.shutdown: {
        let retryAfterMs = 0;
        let reason = '';
        if (p !== undefined) {
          if (!p || typeof p !== 'object' || Array.isArray(p)
            || (Object.hasOwn(p, 'retryAfterMs') && !(typeof p.retryAfterMs === 'number' && p.retryAfterMs >= 0))
            || (Object.hasOwn(p, 'reason') && typeof p.reason !== 'string')) {
            this._send(this.codec.error(null, Codes.INVALID_REQUEST, '$/shutdown params must be {"retryAfterMs": number, "reason": string}'));
            return;
          }
          retryAfterMs = p.retryAfterMs ?? 0;
          reason = p.reason ?? '';
        }
        this._onNotice(Math.min(Math.ceil(retryAfterMs), MAX_RETRY_HINT), reason);
        return;
      }
      default: {
        const fn = this.host.handler(e.method);
        if (!fn) return; // notifications of methods we do not have are ignored (section 12)
        if (this._busy()) {
          this.stats.droppedNotifications++;
          return;
        }
        const ac = new AbortController();
        this.notified.add(ac);
        this._run(fn, e, ac).catch((err) => this.host.report(err)).finally(() => this.notified.delete(ac));
      }
    }
  }

  /** _serve runs the handler of a request from the server and sends its reply. */
  _serve(e, replies) {
    if (this.state === 'closed') return undefined;
    const fn = this.host.handler(e.method);
    if (!fn) {
      this._reply(this.codec.error(e.id, Codes.METHOD_NOT_FOUND, `method ${JSON.stringify(e.method)} not found`), replies);
      return undefined;
    }
    if (this._busy()) {
      this._reply(this.codec.error(e.id, Codes.BUSY, `too many calls in flight (limit ${this.host.limits.maxServed}); the request was not started`), replies);
      return undefined;
    }
    const key = idKey(e.id);
    if (this.served.has(key)) {
      this._reply(this.codec.error(e.id, Codes.INVALID_REQUEST, 'duplicate request id: a request with this id is still in flight'), replies);
      return undefined;
    }
    const ac = new AbortController();
    this.served.set(key, ac);
    let timer;
    if (e.timeoutMs > 0) {
      timer = later(() => ac.abort(rpcError(Codes.DEADLINE_EXCEEDED, 'deadline exceeded')), e.timeoutMs);
    }
    return this._run(fn, e, ac).then(
      (result) => {
        let text;
        try {
          text = this.codec.result(e.id, result);
        } catch (err) {
          text = this.codec.error(e.id, Codes.INTERNAL_ERROR, `the result could not be encoded: ${err.message}`);
        }
        return text;
      },
      (err) => errorReply(this.codec, e.id, err),
    ).then((text) => {
      cancel(timer);
      this.served.delete(key);
      if (!ac.cancelled) this._reply(text, replies);
      this.host.onServed(this);
    });
  }

  async _run(fn, e, ac) {
    const ctx = { signal: ac.signal, metadata: e.meta ?? {}, method: e.method, id: e.id, connection: this.seq };
    if (e.timeoutMs > 0) ctx.deadline = Date.now() + e.timeoutMs;
    return await fn(e.params, ctx);
  }

  /** _busy: the handlers running for the server (calls and notifications) are at their bound. */
  _busy() {
    return this.served.size + this.notified.size >= this.host.limits.maxServed;
  }

  _onNotice(retryAfterMs, reason) {
    if (this.state !== 'open') return;
    this.state = 'going';
    this.notice = { retryAfterMs, reason };
    this.host.onNotice(this);
  }

  /** inFlight: calls either way not yet answered (a drain waits for them). */
  get inFlight() {
    return this.pending.size + this.served.size;
  }

  /**
   * close closes the socket (idempotent). Pending calls fail when the
   * close event comes.
   */
  close(code = CLOSE.NORMAL, reason = '') {
    if (this.ws.readyState === 0 || this.ws.readyState === OPEN) {
      try {
        this.ws.close(code, reason);
      } catch {
        this.ws.close(); // browsers send only 1000 and 3000-4999 (1003 is refused)
      }
    }
  }

  /**
   * abandon drops a socket whose closing handshake did not end: the ws
   * package's is terminated (its close event follows); a browser's cannot
   * be, so the connection counts as closed (1006) at once.
   */
  abandon() {
    if (typeof this.ws.terminate === 'function') this.ws.terminate();
    else this._onClose(1006, 'the closing handshake timed out', false);
  }

  _onClose(code, reason, wasClean) {
    clearTimeout(this._hbTimer);
    if (this.state === 'closed') return;
    const noticed = this.notice !== null;
    this.state = 'closed';
    this.closeInfo = { code, reason, wasClean };
    // Section 8: after a notice, a close with 1012 or 1001 means every
    // request without a reply was never started.
    const started = !(noticed && (code === CLOSE.RESTART || code === CLOSE.GOING_AWAY));
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.cleanup();
      p.reject(started
        ? rpcError(Codes.CONNECTION_LOST, `connection lost (${code}${reason ? ' ' + reason : ''}) after the request was sent; the outcome is unknown`)
        : notSent(`the server closed the connection (${code}) after its shutdown notice before it started the call`));
    }
    for (const ac of [...this.served.values(), ...this.notified]) ac.abort(rpcError(Codes.CONNECTION_LOST, 'connection lost'));
    this.served.clear();
    this.host.onClose(this);
    this._closed(this.closeInfo);
  }
}

/** idKey is the key of a request id of the server's: ids are compared as JSON text. */
function idKey(id) {
  return typeof id === 'bigint' ? `n${id}` : JSON.stringify(id);
}

/** abortError is the error of a call whose signal aborted. */
export function abortError(signal) {
  const r = signal.reason;
  if (r instanceof RPCError) return r;
  if (r && r.name === 'TimeoutError') return rpcError(Codes.DEADLINE_EXCEEDED, 'deadline exceeded', r);
  return rpcError(Codes.CANCELED, 'canceled', r);
}

/** errorReply is the error reply for what a handler threw. */
function errorReply(codec, id, err) {
  if (err instanceof RPCError && Number.isInteger(err.code)) {
    // Never started, or a lost connection: not what a handler that ran may
    // answer (section 6); the Go runtime sends -32603 instead.
    const code = err.code === Codes.UNAVAILABLE || err.code === Codes.CONNECTION_LOST ? Codes.INTERNAL_ERROR : err.code;
    try {
      return codec.error(id, code, err.message, err.data);
    } catch {
      return codec.error(id, code, err.message);
    }
  }
  let text;
  try {
    text = err instanceof Error ? String(err.message) : String(err);
  } catch {
    // Thrown values without text (Object.create(null), a Symbol's
    // wrapper...): answered all the same, so the call and its slot end.
    text = 'the handler failed with a value that has no text';
  }
  return codec.error(id, Codes.INTERNAL_ERROR, text);
}
