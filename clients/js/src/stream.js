// Streams (docs/PROTOCOL.md, section 14): a call whose callee sends many
// results under credit granted as the consumer reads them.

import { Codes, RPCError, rpcError } from './errors.js';

/** DEFAULT_WINDOW is the credit kept out for a stream (the Go caller's default). */
export const DEFAULT_WINDOW = 64;
export const MAX_WINDOW = 65536;

/**
 * STREAM_WINDOW_BYTES is what a window grows to hold when results are
 * small, as the Go caller's (rpc.StreamWindowBytes): as many results as 1 MiB
 * holds at their average size so far, never more than MAX_AUTO_WINDOW and
 * never less than the window asked for.
 */
export const STREAM_WINDOW_BYTES = 1 << 20;
const MAX_AUTO_WINDOW = 4096;

/**
 * Stream is an async iterator of a stream's results. The callee may send
 * `window` results ahead of those read (more when results are small, see
 * STREAM_WINDOW_BYTES): when what was granted and not yet read falls to
 * half the window, the stream grants enough to bring it back. `result` is the promise of the call's final value (its reply).
 * Leaving a for-await loop early (or cancel()) cancels the call on the
 * server.
 */
export class Stream {
  constructor(client, method, params, opts = {}) {
    const w = opts.window ?? DEFAULT_WINDOW;
    if (!Number.isInteger(w) || w < 1 || w > MAX_WINDOW) throw new RangeError(`wsrpc: stream window ${w}: must be an integer in [1, ${MAX_WINDOW}]`);
    this.client = client;
    this.method = method;
    this.window = w;
    this._queue = [];
    this._readers = [];
    this._granted = w;
    this._received = 0;
    this._consumed = 0;
    this._bytes = 0; // of the results read, about
    this._conn = null;
    this._id = 0;
    this._end = null; // {value} or {error} once the reply came
    this._cancelled = false;
    this._ac = new AbortController();
    this._signal = this._ac.signal;
    let unlink = null;
    if (opts.signal && typeof AbortSignal.any === 'function') {
      this._signal = AbortSignal.any([this._ac.signal, opts.signal]);
    } else if (opts.signal) {
      // Node < 20.3 has no AbortSignal.any: the caller's signal aborts ours,
      // already aborted or later, and lets go of it once the stream ends.
      const outer = opts.signal;
      const onAbort = () => this._ac.abort(outer.reason);
      if (outer.aborted) onAbort();
      else {
        outer.addEventListener('abort', onAbort, { once: true });
        unlink = () => outer.removeEventListener('abort', onAbort);
      }
    }
    this.result = this._run(params, opts);
    this.result.catch(() => {}).finally(() => unlink?.());
  }

  /** received is how many results have arrived so far. */
  get received() {
    return this._received;
  }

  async _run(params, opts) {
    const c = this.client;
    const scope = c._scope({ timeout: opts.timeout, signal: this._signal });
    scope.deadline = opts.timeout > 0 ? scope.deadline : 0; // the client's callTimeout does not bound a stream
    const a = { n: 0, avoid: null, pause: 0, admitted: false };
    for (;;) {
      let conn;
      try {
        conn = await c._next_(a, scope);
        this._conn = conn;
        const value = await conn.request(this.method, params, {
          deadline: scope.deadline,
          signal: this._signal,
          meta: opts.metadata,
          stream: this.window,
          onID: (id) => { this._id = id; },
          onItem: (v, size) => this._onItem(v, size),
        });
        this._finish({ value });
        return value;
      } catch (err) {
        if (conn && this._received === 0 && !this._cancelled) {
          try {
            c._retry(err, conn, a, scope, false); // only what was never started is sent again
            continue;
          } catch (final) {
            err = final;
          }
        }
        if (err instanceof RPCError && err.code === Codes.CONNECTION_LOST) {
          err = rpcError(Codes.CONNECTION_LOST, `the stream was cut before it ended, after ${this._received} results: ${err.message}`, err);
        }
        this._finish({ error: err });
        throw err;
      }
    }
  }

  _onItem(v, size = 1) {
    this._received++;
    if (this._received > this._granted) {
      // The callee broke the protocol: fail the call and cancel it.
      this._conn.cancel(this._id, rpcError(Codes.INTERNAL_ERROR, `the callee sent more results than the ${this._granted} granted`));
      return;
    }
    const r = this._readers.shift();
    if (r) {
      this._handOut(size);
      r.resolve({ value: v, done: false });
    } else {
      this._queue.push([v, size]);
    }
  }

  /**
   * _handOut counts one result of size bytes read, and grants credit when
   * what is out has fallen to half the window, the window being the one
   * asked for or, for small results, what STREAM_WINDOW_BYTES holds.
   */
  _handOut(size) {
    this._consumed++;
    this._bytes += size;
    if (this._end || this._cancelled) return;
    const avg = Math.max(1, Math.floor(this._bytes / this._consumed));
    const window = Math.max(this.window, Math.min(Math.floor(STREAM_WINDOW_BYTES / avg), MAX_AUTO_WINDOW));
    const out = this._granted - this._consumed;
    if (out <= window / 2) {
      const more = window - out;
      this._granted += more;
      this._conn.credit(this._id, more);
    }
  }

  _finish(end) {
    if (this._end) return;
    this._end = end;
    const readers = this._readers;
    this._readers = [];
    for (const r of readers) this._final().then(r.resolve, r.reject);
  }

  _final() {
    const e = this._end;
    if (e.error && !this._cancelled && !this._thrown) {
      this._thrown = true;
      return Promise.reject(e.error);
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  /** next resolves with the next result, done after the last; it throws the call's error. */
  next() {
    if (this._queue.length > 0) {
      const [v, size] = this._queue.shift();
      this._handOut(size);
      return Promise.resolve({ value: v, done: false });
    }
    if (this._end) return this._final();
    return new Promise((resolve, reject) => this._readers.push({ resolve, reject }));
  }

  /** return (a for-await loop left early) cancels a stream not yet ended. */
  async return() {
    this.cancel();
    return { value: undefined, done: true };
  }

  /** cancel cancels the call on the server (if it has not ended) and ends iteration. */
  cancel(reason) {
    if (this._end) return;
    this._cancelled = true;
    this._queue = [];
    this._ac.abort(reason ?? rpcError(Codes.CANCELED, 'the stream was cancelled'));
  }
}
