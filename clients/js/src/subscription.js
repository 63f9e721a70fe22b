// Subscriptions to the server's pub/sub hub (docs/PROTOCOL.md, section 13),
// with the Go client's recovery rules (client/subscribe.go): a subscription
// outlives its connection, subscribes again from the last position
// delivered, and fills gaps in offsets from the topic's history.

import { Codes, rpcError } from './errors.js';
import { M } from './conn.js';
import { isPattern } from './topic.js';

/** DEFAULT_BUFFER is how many publications a subscription holds for a reader that lags. */
export const DEFAULT_BUFFER = 1024;

/** UNSUBSCRIBED is the error of a subscription ended by unsubscribe (it ends iteration quietly). */
export const UNSUBSCRIBED = Object.freeze(new Error('wsrpc: unsubscribed'));

function position(p) {
  if (!p || typeof p !== 'object' || !Number.isSafeInteger(p.offset) || p.offset < 0 || typeof p.epoch !== 'string') return null;
  return { offset: p.offset, epoch: p.epoch };
}

function isTransient(err) {
  return err?.code === Codes.CONNECTION_LOST || err?.code === Codes.UNAVAILABLE;
}

/**
 * Subscription is an async iterator of the publications of one topic or
 * pattern: {topic, offset, epoch, data, gap}. gap is true on the first
 * publication after others were lost (the history did not reach back, the
 * topic's stream started again, or the reader lagged more than the buffer
 * and the history could not fill in).
 *
 * A reader that lags does not make memory grow: past `buffer` publications
 * held, later ones are dropped, and once the reader has caught up the
 * subscription recovers them from the history (exact topics), as after a
 * reconnect.
 */
export class Subscription {
  constructor(client, topic, opts = {}) {
    this.client = client;
    this.topic = topic;
    this.exact = !isPattern(topic);
    this.echo = opts.echo === true;
    this.buffer = opts.buffer > 0 ? opts.buffer : DEFAULT_BUFFER;
    this._queue = [];
    this._readers = []; // resolvers of next() calls waiting for a publication
    this._conn = null; // the connection it is subscribed on
    this._id = 0; // its subscription id there
    this._on = null; // the connection a subscribe was last sent on
    this._onP = null; // that subscribe's promise
    this._pos = null; // the last position delivered, or the position subscribed at
    this._gap = false; // the next publication delivered had others lost before it
    this._recovering = false; // a subscribe again to fill a gap is under way
    this._live = false; // the server keeps no stream for the topic: no positions
    this._stalled = false; // the reader lags: publications are dropped until it catches up
    this._ended = false;
    this.error = null;
    const since = opts.since === undefined ? null : position(opts.since);
    if (opts.since !== undefined && !since) throw rpcError(Codes.INVALID_PARAMS, 'since must be {offset, epoch}');
    this._pos = since;
  }

  /** position is that of the last publication handed over (exact topics), or null. */
  get position() {
    return this._pos ? { ...this._pos } : null;
  }

  /** ended: the subscription has ended (unsubscribed, refused, or the client closed). */
  get ended() {
    return this._ended;
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  /** next resolves with the next publication, or done once the subscription ended. */
  next() {
    if (this._queue.length > 0) {
      const v = this._queue.shift();
      if (this._queue.length === 0) this._caughtUp();
      return Promise.resolve({ value: v, done: false });
    }
    if (this._ended) return this._final();
    return new Promise((resolve, reject) => this._readers.push({ resolve, reject }));
  }

  /**
   * return (a for-await loop left early) unsubscribes. The loop is left at
   * once: the $/unsubscribe goes out, but its reply is not waited for (a
   * browser's connection that died unnoticed would hold the loop until the
   * server's close); a failure comes as an 'error' event of the client.
   */
  async return() {
    this.unsubscribe().catch((err) => this.client.report(err));
    return { value: undefined, done: true };
  }

  _final() {
    const err = this.error;
    if (err && err !== UNSUBSCRIBED && !this._thrown) {
      this._thrown = true;
      return Promise.reject(err);
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  /** unsubscribe ends the subscription, telling the server if the connection is up. */
  async unsubscribe() {
    if (this._ended) return;
    const conn = this._conn;
    const id = this._id;
    this._end(UNSUBSCRIBED);
    if (!conn || !conn.usable) return;
    try {
      await conn.request(M.unsubscribe, { sub: id });
    } catch (err) {
      if (!isTransient(err)) throw err;
    }
  }

  /** _first makes the first subscribe, on the current connection or the next one. */
  async _first(scope) {
    const a = { n: 0, avoid: null, pause: 0, admitted: false };
    for (;;) {
      const conn = await this.client._next_(a, scope);
      try {
        await this._subscribeOn(conn, scope);
        return;
      } catch (err) {
        if (isTransient(err) && !this.client._closing && !scope.signal?.aborted && !conn.usable) {
          a.avoid = conn; // the connection is going: the next one subscribes
          continue;
        }
        throw err;
      }
    }
  }

  /**
   * _subscribeOn sends the subscribe on conn. Its reply is handled
   * synchronously, on the message that carries it, so that no publication
   * of the new subscription is handled before its id is known.
   */
  _subscribeOn(conn, scope = {}) {
    if (this._on === conn && !this._recovering && this._onP) return this._onP;
    this._on = conn;
    const params = { topic: this.topic };
    if (this.exact && this._pos) params.since = { ...this._pos };
    if (this.echo) params.echo = true;
    const recovering = params.since !== undefined;
    let failed = null;
    let p;
    try {
      p = conn.request(M.subscribe, params, {
        deadline: scope.deadline ?? 0,
        signal: scope.signal,
        onReply: (r) => { failed = this._onSubscribed(conn, r, recovering); },
      });
    } catch (err) {
      p = Promise.reject(err);
    }
    p = p.then(() => {
      if (failed) throw failed;
    }).catch((err) => {
      if (this._on === conn) {
        this._on = null;
        this._onP = null;
      }
      throw err;
    });
    this._onP = p;
    return p;
  }

  /** _onSubscribed takes the subscribe's result on conn; it returns an error, or null. */
  _onSubscribed(conn, res, recovering) {
    if (!res || typeof res !== 'object' || typeof res.sub !== 'number') {
      return rpcError(Codes.INTERNAL_ERROR, `$/subscribe: bad result ${JSON.stringify(res)}`);
    }
    if (this._ended) {
      // Unsubscribed while the subscribe was under way: undo it on the server.
      if (conn.usable) conn.request(M.unsubscribe, { sub: res.sub }).catch(() => {});
      return null;
    }
    if (this._conn && this._conn.routes.get(this._id) === this) this._conn.routes.delete(this._id);
    this._conn = conn;
    this._id = res.sub;
    this._recovering = false;
    conn.routes.set(res.sub, this);
    const pubs = Array.isArray(res.publications) ? res.publications : [];
    if (recovering && res.recovered !== true) {
      this._gap = true;
      const first = pubs[0];
      if (first && Number.isSafeInteger(first.offset) && typeof first.epoch === 'string') {
        // The replay starts after a hole: it is not a live gap.
        this._pos = { offset: first.offset - 1, epoch: first.epoch };
      }
    }
    const top = position(res.position);
    if (top && this._live) {
      // Live until now (another server kept no stream): what was published meanwhile is lost.
      this._live = false;
      this._gap = true;
    }
    if (top && !this._pos) this._pos = top;
    if (this.exact && !top) {
      // A live-only topic: no positions, nothing to recover.
      if (this._live) this._gap = true;
      this._live = true;
      this._pos = null;
    }
    for (const p of pubs) this._deliver(conn, p);
    this._jumpTo(top);
    return null;
  }

  /** _jumpTo moves the position to top when what it missed before top is lost. */
  _jumpTo(top) {
    if (!top || !this.exact || this._recovering || this._stalled) return;
    const pos = this._pos;
    if (!pos || pos.epoch !== top.epoch || pos.offset < top.offset) this._pos = top;
  }

  /**
   * _deliver hands a publication (the params of a $/publication) that
   * arrived on conn to the reader, unless it is stale, a duplicate, or
   * after a gap (which starts a recovery).
   */
  _deliver(conn, p) {
    if (this._ended || this._conn !== conn || this._recovering || !p || typeof p !== 'object') return;
    const pub = {
      topic: typeof p.topic === 'string' ? p.topic : this.topic,
      offset: Number.isSafeInteger(p.offset) && p.offset >= 0 ? p.offset : 0,
      epoch: typeof p.epoch === 'string' ? p.epoch : '',
      data: p.data === undefined ? null : p.data,
      gap: false,
    };
    if (this._stalled) {
      // The reader lags: dropped, and recovered from the history once it
      // has caught up (or, where there is no history, flagged as a gap).
      if (!this._recoverable()) this._gap = true;
      return;
    }
    const pos = this._pos;
    if (this.exact && pos && pos.epoch !== '' && pub.epoch !== '') {
      if (pub.epoch === pos.epoch && pub.offset <= pos.offset) return; // already delivered
      if (pub.epoch !== pos.epoch && pub.offset === 1) {
        // The topic's stream started again: nothing of the new one is missing.
        this._gap = true;
      } else if (pub.epoch !== pos.epoch || pub.offset !== pos.offset + 1) {
        if (pub.epoch !== pos.epoch) {
          // A new stream, already under way: recover it from its start.
          this._pos = { offset: 0, epoch: pub.epoch };
          this._gap = true;
        }
        this._recover(conn);
        return;
      }
    }
    if (p.skipped === true) {
      if (this.exact && pub.epoch !== '') this._pos = { offset: pub.offset, epoch: pub.epoch };
      return; // this client's own publication: its position only
    }
    if (this._readers.length === 0 && this._queue.length >= this.buffer) {
      this._stalled = true;
      if (!this._recoverable()) this._gap = true;
      return;
    }
    pub.gap = this._gap;
    this._gap = false;
    if (this.exact && pub.epoch !== '') this._pos = { offset: pub.offset, epoch: pub.epoch };
    const r = this._readers.shift();
    if (r) r.resolve({ value: pub, done: false });
    else this._queue.push(pub);
  }

  _recoverable() {
    return this.exact && !this._live && this._pos !== null && this._pos.epoch !== '';
  }

  /** _caughtUp runs when the reader has emptied the queue: a stalled subscription recovers. */
  _caughtUp() {
    if (!this._stalled) return;
    this._stalled = false;
    if (this._recoverable() && this._conn?.usable) this._recover(this._conn);
  }

  /** _recover fills a gap: it subscribes again on conn from the last position delivered. */
  _recover(conn) {
    if (this._recovering) return; // one subscribe again at a time
    this._recovering = true;
    // Subscribing again replaces the subscription on the server (section 13.3).
    this._subscribeOn(conn).catch((err) => {
      this._recovering = false;
      if (!isTransient(err) && !this.client._closing) this._end(rpcError(err.code ?? Codes.INTERNAL_ERROR, `resubscribe to ${JSON.stringify(this.topic)}: ${err.message}`, err));
    });
  }

  /** _resubscribe subscribes again on a new connection. */
  _resubscribe(conn) {
    if (this._ended) return;
    if (this._on !== conn || this._recovering) {
      this._subscribeOn(conn).catch((err) => {
        if (!isTransient(err) && !this.client._closing) this._end(rpcError(err.code ?? Codes.INTERNAL_ERROR, `resubscribe to ${JSON.stringify(this.topic)}: ${err.message}`, err));
      });
    }
  }

  /**
   * _end ends the subscription with err (null: the client closed). What is
   * queued can still be read; then iteration ends, or throws err.
   */
  _end(err, silent = false) {
    if (this._ended) return;
    this._ended = true;
    this.error = err;
    if (silent) this._thrown = true;
    this.client._forget(this);
    if (this._conn && this._conn.routes.get(this._id) === this) this._conn.routes.delete(this._id);
    const readers = this._readers;
    this._readers = [];
    for (const r of readers) {
      this._final().then(r.resolve, r.reject);
    }
  }
}
