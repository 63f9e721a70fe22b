// @wsrpc/client: the wsrpc client for browsers and Node (docs/PROTOCOL.md).
export { Client, connect, Status, StatusEvent, ShutdownEvent, DisconnectEvent, ClientErrorEvent, ConnectError, MAX_ATTEMPTS, DEFAULT_QUEUE_SIZE, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_SERVED, DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_PONG_TIMEOUT } from './client.js';
export { Codes, RPCError, codeName } from './errors.js';
export { Subscription, DEFAULT_BUFFER, UNSUBSCRIBED } from './subscription.js';
export { Stream, DEFAULT_WINDOW, MAX_WINDOW, STREAM_WINDOW_BYTES } from './stream.js';
export { jitter, DEFAULT_BACKOFF_BASE, DEFAULT_BACKOFF_MAX } from './backoff.js';
export { MAX_RETRY_HINT } from './conn.js';
export { AuthError, MAX_AUTH_REFRESH_LEAD, CLOSE_AUTH_EXPIRED } from './auth.js';
