// The JSON-RPC 2.0 codec with wsrpc's extensions (docs/PROTOCOL.md,
// section 4): encoding what the client sends, and classifying what it
// receives. Nothing here throws on bad input from the network: decode
// returns "invalid" entries that say what is wrong.

import { Codes } from './errors.js';

/** Bounds a receiver applies to one call's metadata (section 2.5). */
export const MAX_METADATA = 64;
export const MAX_METADATA_BYTES = 8192;

const utf8 = new TextEncoder();

/** byteLength is the length of s in UTF-8. */
export function byteLength(s) {
  return /^[\x00-\x7f]*$/.test(s) ? s.length : utf8.encode(s).length;
}

/**
 * checkMetadata returns why meta cannot be sent (a string), or '' when it
 * can: an object of string values, no empty key, within the bounds.
 */
export function checkMetadata(meta, maxEntries = MAX_METADATA, maxBytes = MAX_METADATA_BYTES) {
  if (meta === undefined || meta === null) return '';
  if (typeof meta !== 'object' || Array.isArray(meta)) return 'metadata must be an object of strings';
  const keys = Object.keys(meta);
  if (keys.length > maxEntries) return `metadata has more than ${maxEntries} entries`;
  let bytes = 0;
  for (const k of keys) {
    if (k === '') return 'metadata key is empty';
    const v = meta[k];
    if (typeof v !== 'string') return `metadata value of ${JSON.stringify(k)} is not a string`;
    if (!isWellFormed(k) || !isWellFormed(v)) return `metadata of ${JSON.stringify(k)} is not valid UTF-8 (a lone surrogate)`;
    bytes += byteLength(k) + byteLength(v);
  }
  if (bytes > maxBytes) return `metadata has more than ${maxBytes} bytes`;
  return '';
}

function isWellFormed(s) {
  if (typeof s.isWellFormed === 'function') return s.isWellFormed();
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
}

/** sortedMeta returns meta with its keys in ascending order, or undefined when empty. */
function sortedMeta(meta) {
  if (!meta) return undefined;
  const keys = Object.keys(meta);
  if (keys.length === 0) return undefined;
  // Byte order of UTF-8 is code point order; compare code points, not UTF-16 units.
  keys.sort((a, b) => {
    const x = [...a], y = [...b];
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      const d = x[i].codePointAt(0) - y[i].codePointAt(0);
      if (d !== 0) return d;
    }
    return x.length - y.length;
  });
  const out = {};
  for (const k of keys) out[k] = meta[k];
  return out;
}

/**
 * encodeRequest writes a request (id given) or a notification (id
 * undefined) as the Go peer does: jsonrpc, id, method, params, $timeout,
 * $meta, $stream. timeoutMs is rounded up to a whole millisecond.
 */
export function encodeRequest({ id, method, params, timeoutMs, meta, stream }) {
  const m = { jsonrpc: '2.0' };
  if (id !== undefined) m.id = id;
  m.method = method;
  if (params !== undefined) m.params = params;
  if (id !== undefined && timeoutMs > 0) m.$timeout = Math.ceil(timeoutMs);
  const md = sortedMeta(meta);
  if (md) m.$meta = md;
  if (id !== undefined && stream > 0) m.$stream = stream;
  return JSON.stringify(m);
}

/** encodeResult writes the result reply to the request with id. */
export function encodeResult(id, result) {
  return `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":${result === undefined ? 'null' : JSON.stringify(result)}}`;
}

/** encodeError writes an error reply to the request with id (null: an unreadable one). */
export function encodeError(id, code, message, data) {
  const e = { code, message };
  if (data !== undefined) e.data = data;
  return JSON.stringify({ jsonrpc: '2.0', id: id === undefined ? null : id, error: e });
}

/** encodeNotification writes a notification of one of the reserved methods. */
export function encodeNotification(method, params) {
  return JSON.stringify({ jsonrpc: '2.0', method, params });
}

/** isParams reports whether v may be sent as JSON-RPC params: an array or an object. */
export function isParams(v) {
  return v !== null && typeof v === 'object';
}

function isID(v) {
  return v === null || typeof v === 'string' || typeof v === 'number';
}

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * decode parses one text message into a list of entries, each one of
 *
 *   {kind: 'request', id, method, params, timeoutMs, meta}
 *   {kind: 'notification', method, params, meta}
 *   {kind: 'result', id, result}
 *   {kind: 'error', id, code, message, data}
 *   {kind: 'badReply', id, why}              a response that breaks the rules
 *   {kind: 'invalid', id, why, code}          an object to answer with an error (id null if unreadable)
 *
 * and whether it was a batch. A message that is not JSON is one invalid
 * entry with code -32700.
 */
export function decode(text) {
  let v;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return { batch: false, entries: [{ kind: 'invalid', id: null, code: Codes.PARSE_ERROR, why: `parse error: ${e.message}` }] };
  }
  if (Array.isArray(v)) {
    if (v.length === 0) return { batch: false, entries: [{ kind: 'invalid', id: null, code: Codes.INVALID_REQUEST, why: 'empty batch' }] };
    return { batch: true, entries: v.map(classify) };
  }
  if (!isObject(v)) {
    return { batch: false, entries: [{ kind: 'invalid', id: null, code: Codes.INVALID_REQUEST, why: 'message is neither an object nor an array' }] };
  }
  return { batch: false, entries: [classify(v)] };
}

function invalid(id, why) {
  return { kind: 'invalid', id, code: Codes.INVALID_REQUEST, why };
}

/** classify sorts one decoded JSON value, following section 4. */
export function classify(o) {
  if (!isObject(o)) return invalid(null, 'batch element is not an object');
  const hasID = Object.hasOwn(o, 'id');
  const id = hasID && isID(o.id) ? o.id : null;
  if (hasID && !isID(o.id)) return invalid(null, '"id" must be a string, a number or null');
  if (o.jsonrpc !== '2.0') return invalid(id, '"jsonrpc" must be "2.0"');
  if (Object.hasOwn(o, 'method')) {
    if (typeof o.method !== 'string') return invalid(id, '"method" must be a string');
    if (Object.hasOwn(o, 'params') && !isParams(o.params)) return invalid(id, '"params" must be an array or an object');
    let meta;
    if (Object.hasOwn(o, '$meta')) {
      const m = o.$meta;
      if (!isObject(m) || Object.values(m).some((x) => typeof x !== 'string')) return invalid(id, '"$meta" must be an object of strings');
      const why = checkMetadata(m);
      if (why) return invalid(id, why);
      meta = m;
    }
    if (!hasID) return { kind: 'notification', method: o.method, params: o.params, meta };
    let timeoutMs = 0;
    if (Object.hasOwn(o, '$timeout')) {
      const t = o.$timeout;
      if (typeof t !== 'number' || !(t >= 0)) return invalid(id, '"$timeout" must be a non-negative number');
      timeoutMs = t;
    }
    return { kind: 'request', id, method: o.method, params: o.params, timeoutMs, meta };
  }
  const hasResult = Object.hasOwn(o, 'result');
  const hasError = Object.hasOwn(o, 'error');
  if (!hasResult && !hasError) return invalid(id, 'neither "method" nor "result" nor "error"');
  if (!hasID) return { kind: 'badReply', id: undefined, why: 'a response without "id"' };
  if (hasResult && hasError) return { kind: 'badReply', id, why: 'both "result" and "error"' };
  if (hasResult) return { kind: 'result', id, result: o.result };
  const e = o.error;
  if (!isObject(e) || !Number.isInteger(e.code) || e.code < -2147483648 || e.code > 2147483647 || typeof e.message !== 'string') {
    return { kind: 'badReply', id, why: '"error" must have an integer "code" and a string "message"' };
  }
  return { kind: 'error', id, code: e.code, message: e.message, data: e.data };
}

/** The JSON-RPC 2.0 codec, with the same shape as the binary one (binary.js). */
export const jsonCodec = Object.freeze({
  name: 'jsonrpc2.0',
  binary: false,
  request: encodeRequest,
  notification: ({ method, params, meta }) => encodeRequest({ method, params, meta }),
  result: encodeResult,
  error: encodeError,
  cancel: (id) => encodeNotification('$/cancelRequest', { id }),
  credit: (id, n) => encodeNotification('$/stream.credit', { id, credit: n }),
  shutdown: (retryAfterMs, reason) => encodeNotification('$/shutdown', { retryAfterMs: Math.ceil(retryAfterMs), reason }),
  /** batch: the replies to a batch go back as one array. */
  batch: (replies) => [`[${replies.join(',')}]`],
  size: byteLength,
  decode,
});
