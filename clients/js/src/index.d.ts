// Types of @wsrpc/client, written by hand beside the JavaScript and checked
// by tsc (tsconfig.json, test/types.ts).

/** The error codes of docs/PROTOCOL.md section 6. */
export declare const Codes: {
  readonly PARSE_ERROR: -32700;
  readonly INVALID_REQUEST: -32600;
  readonly METHOD_NOT_FOUND: -32601;
  readonly INVALID_PARAMS: -32602;
  readonly INTERNAL_ERROR: -32603;
  readonly UNAVAILABLE: -32000;
  readonly CANCELED: -32001;
  readonly DEADLINE_EXCEEDED: -32002;
  readonly BUSY: -32003;
  readonly UNAUTHENTICATED: -32004;
  readonly PERMISSION_DENIED: -32005;
  readonly CONNECTION_LOST: -32006;
};

/** codeName returns the name of a code of {@link Codes} ("deadline exceeded"), or "code N". */
export declare function codeName(code: number): string;

/** The error of a call: an error reply's code, message and data, or a failure decided locally. */
export declare class RPCError extends Error {
  constructor(code: number, message: string, data?: unknown, options?: { cause?: unknown });
  readonly name: 'RPCError';
  code: number;
  data?: unknown;
  /** The call ended because the client was closed. */
  closed: boolean;
  /** The server never started the call (-32000): safe to send again. */
  readonly notStarted: boolean;
}

/** A connection attempt failed before the socket opened. */
export declare class ConnectError extends Error {
  readonly name: 'ConnectError';
  url: string;
  /** The close code the socket reported, if any. */
  code?: number;
  /** The HTTP status of a refused handshake, where the socket shows it (the ws package's; a browser's does not). */
  status?: number;
  /** Its Retry-After in ms, if it had one: the client waits that long (at most 60 s) before the next attempt, for 429, 502, 503 and 504. */
  retryAfterMs?: number;
}

export type StatusName = 'connecting' | 'connected' | 'reconnecting' | 'closed';

export declare const Status: {
  readonly CONNECTING: 'connecting';
  readonly CONNECTED: 'connected';
  readonly RECONNECTING: 'reconnecting';
  readonly CLOSED: 'closed';
};

export declare class StatusEvent extends Event {
  readonly type: 'status';
  status: StatusName;
  error?: unknown;
}

export declare class ShutdownEvent extends Event {
  readonly type: 'shutdown';
  retryAfterMs: number;
  reason: string;
  url: string;
}

export declare class DisconnectEvent extends Event {
  readonly type: 'disconnect';
  code: number;
  reason: string;
  url: string;
}

export declare class ClientErrorEvent extends Event {
  readonly type: 'error';
  error: unknown;
}

/** The position of a publication on its topic. */
export interface Position {
  offset: number;
  epoch: string;
}

export interface Publication<T = unknown> extends Position {
  topic: string;
  data: T;
  /** Others were lost before this one (the history did not reach back, the stream started again). */
  gap: boolean;
}

/** The constructor of a WebSocket (the platform's, the ws package's). */
export interface WebSocketConstructor {
  new (url: string, protocols?: string | string[], options?: unknown): any;
}

/** A failure to authenticate, in the client's 'error' events. */
export declare class AuthError extends Error {
  readonly name: 'AuthError';
  phase: 'credentials' | 'login' | 'refresh';
  /** The RPC error's code, when the server refused. */
  code?: number;
}

export interface ClientOptions {
  /** Other URLs of the same service, tried in turn. */
  endpoints?: string[];
  /** The WebSocket class (default: globalThis.WebSocket, else the ws package). */
  WebSocket?: WebSocketConstructor;
  /**
   * The wire codec offered (section 1.2): "json" (JSON-RPC 2.0, the default),
   * "binary" (wsrpc.v1; the value codec is JSON) or "auto" (wsrpc.v1 first,
   * then JSON-RPC). The server's choice decides; none means JSON-RPC.
   */
  codec?: 'json' | 'binary' | 'auto';
  /** Reconnect when the connection is lost (default true). */
  reconnect?: boolean;
  /** Keep trying the first connection (with backoff) instead of failing at once. */
  waitForServer?: boolean;
  /** Full-jitter reconnect backoff in ms (default {base: 100, max: 10000}). */
  backoff?: { base?: number; max?: number };
  /** Calls allowed to wait for a connection (default 1024). */
  queueSize?: number;
  /** Timeout in ms of calls without their own (default: none). */
  callTimeout?: number;
  /** How long close() waits for each socket's closing handshake, in ms, before dropping it (default 5000). */
  closeTimeout?: number;
  /** Bound of one opening handshake in ms (default 10000). */
  handshakeTimeout?: number;
  /** Largest message the client sends, in bytes (default 1 MiB, the server's read limit). */
  maxMessageSize?: number;
  /**
   * Ping every interval ms, and drop a connection whose pong does not come
   * within timeout ms (default {interval: 30000, timeout: 20000}; false: off).
   * Only where the socket can ping (the ws package); browsers cannot.
   */
  heartbeat?: false | { interval?: number; timeout?: number };
  /** The server's calls and notifications handled at once (default 1000): beyond it calls get -32003 and notifications are dropped. */
  maxServed?: number;
  /**
   * The source of credentials (docs/PROTOCOL.md section 15): returns the
   * params of the in-band authentication (inBandAuth) and of $/auth.refresh,
   * e.g. {token}. Called before the first login, ahead of each expiry the
   * server announces (reason 'refresh'), and before a login once the
   * credential kept is known to be refused (reason 'expired' after 4401,
   * 'refused' after a refused login); one call at a time.
   */
  credentials?: (info: { reason: 'connect' | 'refresh' | 'expired' | 'refused'; url: string }) => unknown[] | Record<string, unknown> | Promise<unknown[] | Record<string, unknown>>;
  /** Authenticate every new connection in-band by calling this method with the credential, before anything else goes out on it (Go: server.WithInBandAuth). */
  inBandAuth?: string;
  /** Receives publications of subscriptions the client did not make (the server's own). */
  onPublication?: (p: Publication) => void;
  /** Called on every change of status. */
  onStatus?: (status: StatusName, error?: unknown) => void;
  /** The random source of the backoff's jitter, in [0, 1) (default Math.random). */
  random?: () => number;
}

export type Params = unknown[] | Record<string, unknown> | undefined;
export type Metadata = Record<string, string>;

export interface CallOptions {
  /** Cancels the call: a $/cancelRequest goes to the server. */
  signal?: AbortSignal;
  /** Deadline in ms from now, sent with the call ($timeout). */
  timeout?: number;
  /** Metadata sent with the call ($meta). */
  metadata?: Metadata;
  /** Safe to run twice: sent again after a lost connection instead of failing with -32006. */
  idempotent?: boolean;
}

export interface NotifyOptions {
  signal?: AbortSignal;
  timeout?: number;
  metadata?: Metadata;
}

export interface HandlerContext {
  /** Aborted when the server cancels the call, its deadline passes or the connection ends. */
  signal: AbortSignal;
  /** The call's deadline (ms since the epoch), if it has one. */
  deadline?: number;
  metadata: Metadata;
  method: string;
  /** The server's request id: on wsrpc.v1 a number, or a BigInt beyond 2^53. */
  id: string | number | bigint | null;
  connection: number;
}

export type Handler = (params: any, ctx: HandlerContext) => unknown | Promise<unknown>;

export interface SubscribeOptions {
  /** Recover the publications after this position (exact topics only). */
  since?: Position;
  /** Receive this client's own publications too. */
  echo?: boolean;
  /** Publications held for a reader that lags (default 1024). */
  buffer?: number;
  /** Bounds the first subscribe only. */
  signal?: AbortSignal;
  timeout?: number;
}

export declare class Subscription<T = unknown> implements AsyncIterableIterator<Publication<T>> {
  readonly topic: string;
  readonly exact: boolean;
  readonly buffer: number;
  /** Why it ended (null while active, or when the client closed). */
  error: unknown;
  readonly ended: boolean;
  /** The position of the last publication handed over (exact topics), or null. */
  readonly position: Position | null;
  next(): Promise<IteratorResult<Publication<T>, undefined>>;
  return(): Promise<IteratorResult<Publication<T>, undefined>>;
  unsubscribe(): Promise<void>;
  [Symbol.asyncIterator](): Subscription<T>;
}

export interface StreamOptions {
  signal?: AbortSignal;
  /** Bounds the whole stream, in ms. */
  timeout?: number;
  metadata?: Metadata;
  /** Results the server may send ahead of those read (default 64, at most 65536); more for small results, up to what STREAM_WINDOW_BYTES holds. */
  window?: number;
}

export declare class Stream<T = unknown, R = unknown> implements AsyncIterableIterator<T> {
  readonly method: string;
  readonly window: number;
  /** How many results have arrived. */
  readonly received: number;
  /** The call's final value (its reply). */
  readonly result: Promise<R>;
  next(): Promise<IteratorResult<T, undefined>>;
  return(): Promise<IteratorResult<T, undefined>>;
  cancel(reason?: unknown): void;
  [Symbol.asyncIterator](): Stream<T, R>;
}

export interface ClientEventMap {
  status: StatusEvent;
  shutdown: ShutdownEvent;
  disconnect: DisconnectEvent;
  error: ClientErrorEvent;
}

/**
 * A listener of the client's events. Declared here rather than taken from
 * the DOM library's names (EventListenerOrEventListenerObject,
 * AddEventListenerOptions), which a Node project typed with @types/node and
 * without "DOM" in its lib does not have.
 */
export type Listener = ((ev: Event) => void) | { handleEvent(ev: Event): void };

/** The options of addEventListener, as the platform's. */
export interface ListenerOptions {
  capture?: boolean;
  once?: boolean;
  passive?: boolean;
  signal?: AbortSignal;
}

export declare class Client extends EventTarget {
  constructor(url: string | URL | Array<string | URL>, options?: ClientOptions);
  readonly status: StatusName;
  /** When the current connection's authentication ends (ms since the epoch), or null. */
  readonly authExpiry: number | null;
  /** The endpoint of the current connection ('' while none is up). */
  readonly url: string;
  ready(): Promise<void>;
  call<R = any>(method: string, params?: Params, opts?: CallOptions): Promise<R>;
  notify(method: string, params?: Params, opts?: NotifyOptions): Promise<void>;
  handle(method: string, fn: Handler): () => void;
  subscribe<T = unknown>(topic: string, opts?: SubscribeOptions): Promise<Subscription<T>>;
  publish(topic: string, data: unknown, opts?: CallOptions): Promise<Position & { dropped?: true }>;
  stream<T = unknown, R = unknown>(method: string, params?: Params, opts?: StreamOptions): Stream<T, R>;
  close(): Promise<void>;
  addEventListener<K extends keyof ClientEventMap>(type: K, listener: (ev: ClientEventMap[K]) => void, options?: boolean | ListenerOptions): void;
  addEventListener(type: string, listener: Listener | null, options?: boolean | ListenerOptions): void;
  removeEventListener<K extends keyof ClientEventMap>(type: K, listener: (ev: ClientEventMap[K]) => void, options?: boolean | { capture?: boolean }): void;
  removeEventListener(type: string, listener: Listener | null, options?: boolean | { capture?: boolean }): void;
}

/** connect makes a Client and resolves once its first connection is up. */
export declare function connect(url: string | URL | Array<string | URL>, options?: ClientOptions): Promise<Client>;

/** A random delay in [0, min(max, base·2ⁿ)] ms. */
export declare function jitter(base: number, max: number, n: number, random?: () => number): number;

export declare const MAX_ATTEMPTS: 10;
export declare const MAX_RETRY_HINT: 60000;
export declare const DEFAULT_QUEUE_SIZE: 1024;
export declare const DEFAULT_HANDSHAKE_TIMEOUT: 10000;
export declare const DEFAULT_MAX_MESSAGE_SIZE: 1048576;
export declare const DEFAULT_MAX_SERVED: 1000;
export declare const DEFAULT_HEARTBEAT_INTERVAL: 30000;
export declare const DEFAULT_PONG_TIMEOUT: 20000;
export declare const DEFAULT_BACKOFF_BASE: 100;
export declare const DEFAULT_BACKOFF_MAX: 10000;
export declare const DEFAULT_BUFFER: 1024;
export declare const DEFAULT_WINDOW: 64;
export declare const MAX_WINDOW: 65536;
/** A stream's window grows to hold this many bytes of small results (at most 4096 results). */
export declare const STREAM_WINDOW_BYTES: 1048576;
/** The error of a subscription ended by unsubscribe. */
export declare const UNSUBSCRIBED: Error;
/** A refresh starts at most this long before the expiry (ms). */
export declare const MAX_AUTH_REFRESH_LEAD: 60000;
/** The close code of a connection whose authentication expired. */
export declare const CLOSE_AUTH_EXPIRED: 4401;
