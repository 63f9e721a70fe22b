// Authentication: in-band login on every connection, and its lifetime
// (docs/PROTOCOL.md, section 15): the server's $/auth.expiry, a refresh
// with $/auth.refresh ahead of it, and a new credential after 4401.

import { Codes, RPCError, rpcError, notSent } from './errors.js';
import { jitter } from './backoff.js';
import { later, cancel } from './timer.js';

/** Methods and the close code of section 15. */
export const AUTH_EXPIRY = '$/auth.expiry';
export const AUTH_REFRESH = '$/auth.refresh';
export const CLOSE_AUTH_EXPIRED = 4401;

/** MAX_AUTH_REFRESH_LEAD caps how long before the expiry a refresh starts (the Go client's). */
export const MAX_AUTH_REFRESH_LEAD = 60_000;

/**
 * AuthError reports a failure to authenticate: phase 'credentials' (the
 * application's credentials function failed), 'login' (the in-band
 * authentication was refused) or 'refresh' ($/auth.refresh failed). It
 * comes in the client's 'error' events; code is the RPC error's, if any.
 */
export class AuthError extends Error {
  constructor(phase, cause) {
    super(`wsrpc: ${phase}: ${cause?.message ?? cause}`, { cause });
    this.name = 'AuthError';
    this.phase = phase;
    if (cause instanceof RPCError) this.code = cause.code;
  }
}

/**
 * refreshAt returns when to refresh a lifetime of ms, from now: at a random
 * moment between ms − lead and ms − lead/2, where lead is ms/2 up to
 * MAX_AUTH_REFRESH_LEAD (section 15.5).
 */
export function refreshAt(ms, random = Math.random) {
  const lead = Math.min(ms / 2, MAX_AUTH_REFRESH_LEAD);
  return Math.max(0, Math.floor(ms - lead + (random() * lead) / 2));
}

/** lifetime reads a lifetime object: ms, null (no end), or undefined (not a lifetime). */
function lifetime(v) {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return undefined;
  if (!Object.hasOwn(v, 'expiresIn')) return null;
  return typeof v.expiresIn === 'number' ? v.expiresIn : undefined;
}

/**
 * Auth is the client's authentication state: the credential (fetched by
 * the application's credentials function, one call at a time, kept until
 * it is known to be refused), and each connection's refresh schedule.
 */
export class Auth {
  constructor(client, credentials, method) {
    this.client = client;
    this.credentials = credentials; // ({reason, url}) => params, or undefined
    this.method = method; // the in-band authentication method, or undefined
    this.credential = undefined;
    this.stale = true; // fetch a new credential before the next login
    this.reason = 'connect';
    this.pending = null; // the credentials call under way
    this.expiredCloses = 0; // connections closed with 4401 since the last good refresh
  }

  /** get returns a credential: the one kept, unless it is stale or a refresh needs a new one. */
  get(reason, url) {
    if (this.pending) return this.pending;
    if (reason !== 'refresh' && !this.stale && this.credential !== undefined) return Promise.resolve(this.credential);
    this.pending = Promise.resolve()
      .then(() => this.credentials({ reason: reason === 'refresh' ? reason : this.reason, url }))
      .then((c) => {
        this.credential = c;
        this.stale = false;
        this.reason = 'connect';
        return c;
      }, (err) => {
        throw new AuthError('credentials', err);
      })
      .finally(() => { this.pending = null; });
    return this.pending;
  }

  /** refuse marks the credential refused (why: 'expired' after 4401, 'refused' after a login). */
  refuse(why) {
    this.stale = true;
    this.reason = why;
  }

  /** login authenticates a new connection in-band, when a method is set. */
  async login(conn, deadline) {
    if (!this.method) return;
    // The credentials function may take its time (a login form, say): the
    // connection closing (client.close(), the server) ends the wait.
    const closed = conn.closed.then(() => { throw notSent('the connection closed while its credentials were being fetched'); });
    closed.catch(() => {});
    const params = await Promise.race([this.get('connect', conn.url), closed]);
    try {
      await conn.request(this.method, params, { deadline });
    } catch (err) {
      if (err instanceof RPCError && (err.code === Codes.UNAUTHENTICATED || err.code === Codes.PERMISSION_DENIED)) this.refuse('refused');
      throw new AuthError('login', err);
    }
  }

  /** onExpiry takes a $/auth.expiry on conn. */
  onExpiry(conn, params) {
    const ms = lifetime(params);
    if (ms === undefined || ms === null) return; // not a lifetime (always with expiresIn, section 15.2)
    this.schedule(conn, ms);
  }

  /** schedule sets conn's expiry to ms from now and its refresh ahead of it. */
  schedule(conn, ms) {
    cancel(conn.refreshTimer);
    conn.refreshFailures = 0;
    conn.authExpiresAt = Date.now() + Math.max(0, ms);
    if (!this.credentials || conn.refreshOff) return;
    conn.refreshTimer = later(() => this.refresh(conn), ms > 0 ? refreshAt(ms, this.client._o.random) : 0);
  }

  /** refresh presents a new credential on conn ($/auth.refresh); it retries a failure after a backoff, until the expiry. */
  async refresh(conn) {
    const c = this.client;
    if (conn.state === 'closed' || c._closing) return;
    try {
      const params = await this.get('refresh', conn.url);
      if (conn.state === 'closed') return; // void: the credential may serve for the next login
      const res = await conn.request(AUTH_REFRESH, params, { deadline: conn.authExpiresAt });
      const ms = lifetime(res);
      if (ms === undefined) throw rpcError(Codes.INTERNAL_ERROR, `${AUTH_REFRESH}: the result is not a lifetime: ${JSON.stringify(res)}`);
      if (ms !== null && !(ms > 0)) throw rpcError(Codes.UNAUTHENTICATED, `${AUTH_REFRESH}: a lifetime that is not positive (${ms})`);
      this.expiredCloses = 0;
      if (ms === null) {
        cancel(conn.refreshTimer);
        conn.authExpiresAt = null; // no end
      } else {
        this.schedule(conn, ms);
      }
    } catch (err) {
      if (conn.state === 'closed' || c._closing) return;
      const e = err instanceof AuthError ? err : new AuthError('refresh', err);
      c.report(e);
      if (e.code === Codes.METHOD_NOT_FOUND) {
        conn.refreshOff = true; // this server does not refresh: not asked again on this connection
        return;
      }
      if (e.code === Codes.UNAUTHENTICATED || e.code === Codes.PERMISSION_DENIED) this.refuse('refused');
      const wait = jitter(c._o.backoffBase, c._o.backoffMax, conn.refreshFailures++, c._o.random) + c._o.backoffBase;
      if (conn.authExpiresAt !== null && Date.now() + wait < conn.authExpiresAt) {
        conn.refreshTimer = later(() => this.refresh(conn), wait);
      }
    }
  }

  /** onClose ends conn's schedule; 4401 makes the next connection fetch a new credential. */
  onClose(conn, code) {
    cancel(conn.refreshTimer);
    if (code === CLOSE_AUTH_EXPIRED) {
      this.refuse('expired');
      this.expiredCloses++;
    }
  }
}
