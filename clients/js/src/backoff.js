// Reconnect backoff: the Go client's "full jitter" (client/reconnect.go).

export const DEFAULT_BACKOFF_BASE = 100; // ms: first delays are drawn from [0, base]
export const DEFAULT_BACKOFF_MAX = 10_000; // ms: delays never exceed it

/**
 * jitter returns a random delay in [0, min(max, base·2ⁿ)] ms: the ceiling
 * doubles with every attempt up to max, and the draw spreads clients that
 * lost the same server over the whole interval. random returns a number in
 * [0, 1).
 */
export function jitter(base, max, n, random = Math.random) {
  let ceil = base;
  for (let i = 0; i < n && ceil < max; i++) ceil *= 2;
  ceil = Math.min(ceil, max);
  if (!(ceil > 0)) return 0;
  return Math.floor(random() * (Math.floor(ceil) + 1));
}

/**
 * spreadHint is a server's retry hint h (ms) with jitter, as PROTOCOL.md
 * asks of clients and the Go client does (client/reconnect.go): a random
 * moment in [h, h + h/4], never sooner than the server asked, so that the
 * clients one server sent away do not all come back in the same instant.
 */
export function spreadHint(h, random = Math.random) {
  if (!(h > 0)) return 0;
  return h + Math.floor(random() * (Math.floor(h / 4) + 1));
}
