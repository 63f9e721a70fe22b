// The binary codec wsrpc.v1 (docs/PROTOCOL.md, section 3): every message a
// kind byte, an extension block and the kind's fields; params, results and
// error data are JSON bytes (the default value codec). decode never throws
// on bad input: a malformed message comes back as {close: {code: 1002,
// reason}}, what the receiver must do with it (section 3.4).

import { Codes } from './errors.js';
import { checkMetadata } from './jsonrpc.js';

const K = Object.freeze({ request: 1, notification: 2, result: 3, error: 4, cancel: 5, shutdown: 6, packed: 7, streamResult: 8, streamCredit: 9 });
const TAG_METADATA = 1;
const TAG_STREAM = 2;
const MAX_PACKED = 64;
const HUNDRED_YEARS_US = 3_153_600_000_000_000;

const enc = new TextEncoder();
const strict = new TextDecoder('utf-8', { fatal: true });

class Malformed extends Error {}

/** Writer appends the fields of one message. */
class Writer {
  constructor(size = 64) {
    this.buf = new Uint8Array(size);
    this.n = 0;
  }

  room(k) {
    if (this.n + k <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.n + k) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.buf.subarray(0, this.n));
    this.buf = b;
  }

  byte(b) {
    this.room(1);
    this.buf[this.n++] = b;
  }

  /** uvarint writes a non-negative integer (a Number up to 2^53, or a BigInt up to 2^64-1). */
  uvarint(v) {
    if (typeof v === 'bigint') {
      while (v >= 0x80n) {
        this.byte(Number(v & 0x7fn) | 0x80);
        v >>= 7n;
      }
      this.byte(Number(v));
      return;
    }
    while (v >= 0x80) {
      this.byte((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    this.byte(v);
  }

  /** varint writes a signed 32-bit integer, zigzag-mapped. */
  varint(v) {
    this.uvarint(v >= 0 ? 2 * v : -2 * v - 1);
  }

  bytes(b) {
    this.room(b.length);
    this.buf.set(b, this.n);
    this.n += b.length;
  }

  text(s) {
    if (s.length * 3 < 0x80) {
      // The length fits in one byte whatever the text: encode in place.
      this.room(1 + s.length * 3);
      const { written } = enc.encodeInto(s, this.buf.subarray(this.n + 1));
      this.buf[this.n] = written;
      this.n += 1 + written;
      return;
    }
    const b = enc.encode(s);
    this.uvarint(b.length);
    this.bytes(b);
  }

  /** json writes v as JSON, to the end. */
  json(v) {
    const t = JSON.stringify(v);
    this.room(t.length * 3);
    this.n += enc.encodeInto(t, this.buf.subarray(this.n)).written;
  }

  /** done returns a copy of what was written: the scratch writer is used again. */
  done() {
    return this.buf.slice(0, this.n);
  }
}

/** ext returns the extension block's bytes: metadata entries in key order, then the stream credit. */
const NONE = new Uint8Array(0);

function ext(meta, stream) {
  if (!(stream > 0) && (!meta || Object.keys(meta).length === 0)) return NONE;
  const w = new Writer();
  if (meta) {
    for (const k of Object.keys(meta).sort(byBytes)) {
      const kb = enc.encode(k);
      const vb = enc.encode(meta[k]);
      const e = new Writer();
      e.uvarint(kb.length);
      e.bytes(kb);
      e.bytes(vb);
      const eb = e.done();
      w.uvarint(TAG_METADATA);
      w.uvarint(eb.length);
      w.bytes(eb);
    }
  }
  if (stream > 0) {
    const e = new Writer();
    e.uvarint(stream);
    const eb = e.done();
    w.uvarint(TAG_STREAM);
    w.uvarint(eb.length);
    w.bytes(eb);
  }
  return w.done();
}

function byBytes(a, b) {
  const x = enc.encode(a);
  const y = enc.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

// One scratch writer for every message: encoding is synchronous, and done()
// copies the message out, so that each costs one allocation of its size.
const scratch = new Writer(4096);

function head(kind, block = null) {
  const w = scratch;
  w.n = 0;
  if (w.buf.length > 1 << 20) w.buf = new Uint8Array(4096); // do not keep a large one
  w.byte(kind);
  if (block && block.length > 0) {
    w.uvarint(block.length);
    w.bytes(block);
  } else {
    w.byte(0);
  }
  return w;
}

/** Reader reads the fields of one message, throwing Malformed past its end. */
class Reader {
  constructor(b, i = 0, end = b.length) {
    this.b = b;
    this.i = i;
    this.end = end;
  }

  left() {
    return this.end - this.i;
  }

  byte(what) {
    if (this.i >= this.end) throw new Malformed(`message ends in ${what}`);
    return this.b[this.i++];
  }

  /** uvarint reads an unsigned 64-bit integer: a Number when it is safe, else a BigInt. */
  uvarint(what) {
    let v = 0;
    let big = null;
    for (let k = 0; k < 10; k++) {
      if (this.i >= this.end) throw new Malformed(`bad varint in ${what}`);
      const c = this.b[this.i++];
      if (k === 9 && c > 1) throw new Malformed(`bad varint in ${what}`);
      const part = c & 0x7f;
      if (big === null && k >= 7) big = BigInt(v);
      if (big !== null) big |= BigInt(part) << BigInt(7 * k);
      else v += part * 2 ** (7 * k);
      if (c < 0x80) {
        if (big !== null) return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
        return v;
      }
    }
    throw new Malformed(`bad varint in ${what}`);
  }

  varint(what) {
    const u = this.uvarint(what);
    if (typeof u === 'bigint') throw new Malformed(`${what} out of the signed 32-bit range`);
    const v = u % 2 === 0 ? u / 2 : -(u + 1) / 2;
    if (v < -2147483648 || v > 2147483647) throw new Malformed(`${what} out of the signed 32-bit range`);
    return v;
  }

  take(n, what) {
    if (typeof n !== 'number' || n > this.left()) throw new Malformed(`${what} longer than the message`);
    const s = this.b.subarray(this.i, this.i + n);
    this.i += n;
    return s;
  }

  text(what) {
    return utf8(this.take(this.uvarint(`${what} length`), what), what);
  }

  rest() {
    return this.take(this.left(), 'rest');
  }
}

function utf8(b, what) {
  try {
    return strict.decode(b);
  } catch {
    throw new Malformed(`${what} is not valid UTF-8`);
  }
}

/** value parses JSON bytes; absent (none) is undefined. It returns {ok, v}. */
function value(b) {
  if (b.length === 0) return { ok: true, v: undefined };
  try {
    return { ok: true, v: JSON.parse(utf8(b, 'value')) };
  } catch {
    return { ok: false };
  }
}

/** The wsrpc.v1 codec, with the same shape as the JSON-RPC one (jsonrpc.js). */
export const binaryCodec = Object.freeze({
  name: 'wsrpc.v1',
  binary: true,

  request({ id, method, params, timeoutMs, meta, stream }) {
    const w = head(K.request, ext(meta, stream));
    w.uvarint(id);
    w.uvarint(timeoutMs > 0 ? Math.min(Math.ceil(timeoutMs * 1000), HUNDRED_YEARS_US) : 0);
    w.text(method);
    if (params !== undefined) w.json(params);
    return w.done();
  },

  notification({ method, params, meta }) {
    const w = head(K.notification, ext(meta, 0));
    w.text(method);
    if (params !== undefined) w.json(params);
    return w.done();
  },

  result(id, v) {
    const w = head(K.result);
    w.uvarint(id);
    w.json(v === undefined ? null : v);
    return w.done();
  },

  error(id, code, message, data) {
    const w = head(K.error);
    w.uvarint(typeof id === 'number' || typeof id === 'bigint' ? id : 0);
    w.varint(code);
    w.text(message);
    if (data !== undefined) w.json(data);
    return w.done();
  },

  cancel(id) {
    const w = head(K.cancel);
    w.uvarint(id);
    return w.done();
  },

  credit(id, n) {
    const w = head(K.streamCredit);
    w.uvarint(id);
    w.uvarint(n);
    return w.done();
  },

  shutdown(retryAfterMs, reason) {
    const w = head(K.shutdown);
    w.uvarint(Math.ceil(retryAfterMs));
    w.bytes(enc.encode(reason));
    return w.done();
  },

  /** batch: wsrpc.v1 has no batches; each reply goes alone. */
  batch(replies) {
    return replies;
  },

  size(m) {
    return m.length;
  },

  /**
   * decode reads one binary message into the entries of jsonrpc.decode;
   * cancels, shutdown notices and stream results come as the JSON-RPC
   * notifications they stand for. A malformed message is {close}.
   */
  decode(b) {
    try {
      const entries = [];
      decodeOne(new Reader(b), entries, false);
      return { batch: false, entries };
    } catch (e) {
      if (e instanceof Malformed) return { close: { code: 1002, reason: `malformed wsrpc.v1 message: ${e.message}`.slice(0, 123) } };
      throw e;
    }
  },
});

/** block reads the extension block; for requests and notifications, it returns their metadata and stream credit. */
function block(r, entriesMatter) {
  const n = r.uvarint('extension length');
  if (n > r.left()) throw new Malformed('extension block longer than the frame');
  const out = { meta: undefined, stream: 0, metaWhy: '' };
  if (!entriesMatter) {
    r.i += n;
    return out;
  }
  const br = new Reader(r.b, r.i, r.i + n);
  r.i += n;
  while (br.left() > 0) {
    const tag = br.uvarint('extension tag');
    const len = br.uvarint('extension entry length');
    if (typeof len !== 'number' || len > br.left()) throw new Malformed('extension entry longer than the block');
    const e = new Reader(br.b, br.i, br.i + len);
    br.i += len;
    if (tag === TAG_METADATA) {
      const kl = e.uvarint('metadata key length');
      if (kl > e.left()) throw new Malformed('metadata key longer than the entry');
      const k = utf8(e.take(kl, 'metadata key'), 'metadata key');
      const v = utf8(e.rest(), 'metadata value');
      out.meta ??= {};
      out.meta[k] = v;
    } else if (tag === TAG_STREAM) {
      try {
        const c = e.uvarint('stream credit');
        if (e.left() === 0 && typeof c === 'number' && c >= 1) out.stream = c;
      } catch {
        // not such a uvarint: skipped like an unknown tag
      }
    }
  }
  if (out.meta) out.metaWhy = checkMetadata(out.meta);
  return out;
}

function decodeOne(r, entries, inPacked) {
  const kind = r.byte('kind');
  switch (kind) {
    case K.request: {
      const x = block(r, true);
      const id = r.uvarint('id');
      const us = r.uvarint('timeout');
      const method = r.text('method');
      const p = value(r.rest());
      if (x.metaWhy) entries.push({ kind: 'invalid', id, code: Codes.INVALID_REQUEST, why: x.metaWhy });
      else if (!p.ok) entries.push({ kind: 'invalid', id, code: Codes.INVALID_PARAMS, why: 'params are not valid JSON' });
      else entries.push({ kind: 'request', id, method, params: p.v, timeoutMs: typeof us === 'number' ? Math.min(us, HUNDRED_YEARS_US) / 1000 : HUNDRED_YEARS_US / 1000, meta: x.meta });
      return;
    }
    case K.notification: {
      const x = block(r, true);
      const method = r.text('method');
      const p = value(r.rest());
      if (!x.metaWhy && p.ok) entries.push({ kind: 'notification', method, params: p.v, meta: x.meta });
      else entries.push({ kind: 'dropped' });
      return;
    }
    case K.result: {
      block(r, false);
      const id = r.uvarint('id');
      const p = value(r.rest());
      entries.push(p.ok ? { kind: 'result', id, result: p.v ?? null } : { kind: 'badReply', id, why: 'the result is not valid JSON' });
      return;
    }
    case K.error: {
      block(r, false);
      const id = r.uvarint('id');
      const code = r.varint('error code');
      const message = r.text('error message');
      const p = value(r.rest());
      entries.push({ kind: 'error', id, code, message, data: p.ok ? p.v : undefined });
      return;
    }
    case K.cancel: {
      block(r, false);
      const id = r.uvarint('id');
      if (r.left() > 0) throw new Malformed('bytes after the id of a cancel');
      entries.push({ kind: 'notification', method: '$/cancelRequest', params: { id } });
      return;
    }
    case K.shutdown: {
      block(r, false);
      const ms = r.uvarint('retry-after');
      const reason = utf8(r.rest(), 'shutdown reason');
      entries.push({ kind: 'notification', method: '$/shutdown', params: { retryAfterMs: typeof ms === 'number' ? ms : Number.MAX_SAFE_INTEGER, reason } });
      return;
    }
    case K.packed: {
      if (inPacked) throw new Malformed('a packed message inside a packed message');
      block(r, false);
      let n = 0;
      while (r.left() > 0) {
        const len = r.uvarint('packed length');
        if (len === 0 || typeof len !== 'number' || len > r.left()) throw new Malformed('bad packed length');
        if (++n > MAX_PACKED) throw new Malformed(`more than ${MAX_PACKED} packed messages`);
        const k = r.b[r.i];
        if (k !== K.notification && k !== K.streamResult) throw new Malformed(`packed message of kind ${k}`);
        decodeOne(new Reader(r.b, r.i, r.i + len), entries, true);
        r.i += len;
      }
      if (n === 0) throw new Malformed('an empty packed message');
      return;
    }
    case K.streamResult: {
      block(r, false);
      const id = r.uvarint('id');
      const p = value(r.rest());
      if (p.ok) entries.push({ kind: 'notification', method: '$/stream.item', params: { id, item: p.v ?? null } });
      else entries.push({ kind: 'dropped' });
      return;
    }
    case K.streamCredit: {
      block(r, false);
      const id = r.uvarint('id');
      const c = r.uvarint('credit');
      if (c === 0) throw new Malformed('a stream credit of 0');
      if (r.left() > 0) throw new Malformed('bytes after a stream credit');
      entries.push({ kind: 'dropped', id }); // this client serves no streams
      return;
    }
    default:
      if (kind >= 0x40) {
        block(r, false); // ignorable: only the ext length is read
        entries.push({ kind: 'dropped' });
        return;
      }
      throw new Malformed(`unknown message kind ${kind}`);
  }
}
