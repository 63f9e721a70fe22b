// Error codes and the error type of wsrpc calls (docs/PROTOCOL.md, section 6).

/**
 * The error codes of docs/PROTOCOL.md section 6: JSON-RPC 2.0's standard
 * codes and wsrpc's own (-32000 to -32006). Applications may use others.
 */
export const Codes = Object.freeze({
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  UNAVAILABLE: -32000,
  CANCELED: -32001,
  DEADLINE_EXCEEDED: -32002,
  BUSY: -32003,
  UNAUTHENTICATED: -32004,
  PERMISSION_DENIED: -32005,
  CONNECTION_LOST: -32006,
});

const names = new Map(Object.entries(Codes).map(([k, v]) => [v, k.toLowerCase().replaceAll('_', ' ')]));

/** codeName returns the name of a code of {@link Codes} ("deadline exceeded"), or "code N". */
export function codeName(code) {
  return names.get(code) ?? `code ${code}`;
}

/**
 * RPCError is the error of a call: the code, message and data of an error
 * reply, or of a failure decided locally (a call not sent, a lost
 * connection, a deadline). `closed` is true when the call ended because the
 * client was closed.
 */
export class RPCError extends Error {
  constructor(code, message, data, options) {
    super(message, options);
    this.name = 'RPCError';
    this.code = code;
    if (data !== undefined) this.data = data;
    this.closed = false;
  }

  /** notStarted: the server never started the call (-32000): it is safe to send again. */
  get notStarted() {
    return this.code === Codes.UNAVAILABLE;
  }

  toString() {
    return `RPCError ${this.code} (${codeName(this.code)}): ${this.message}`;
  }
}

/** rpcError makes an RPCError; cause, when given, is its cause. */
export function rpcError(code, message, cause, data) {
  return new RPCError(code, message, data, cause === undefined ? undefined : { cause });
}

/** notSent is the error of a call that was never sent: -32000. */
export function notSent(why) {
  return rpcError(Codes.UNAVAILABLE, `${why}; the request was not sent`);
}

/** closedError marks err as ended by the client's close. */
export function closedError(err) {
  err.closed = true;
  return err;
}
