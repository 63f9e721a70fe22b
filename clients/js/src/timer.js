// Timers for deadlines of any length. setTimeout holds at most 2^31 - 1 ms
// (about 24.8 days): a longer delay fires at once (Node: after 1 ms, with a
// TimeoutOverflowWarning; browsers alike). A deadline of a month, or the
// refresh of a credential that lives that long, waits in steps instead.

/** MAX_DELAY is the longest delay setTimeout holds, in ms. */
export const MAX_DELAY = 2 ** 31 - 1;

/**
 * later calls fn once ms have passed, however long that is, and returns a
 * handle for {@link cancel}. ms below 0 counts as 0.
 */
export function later(fn, ms) {
  const h = { id: undefined };
  const at = Date.now() + Math.max(0, ms);
  const arm = (wait) => {
    h.id = setTimeout(() => {
      const left = at - Date.now();
      if (wait === MAX_DELAY && left > 0) arm(Math.min(left, MAX_DELAY));
      else fn();
    }, wait);
  };
  arm(Math.min(Math.max(0, ms), MAX_DELAY));
  return h;
}

/** cancel stops a timer of {@link later} (undefined: nothing). */
export function cancel(h) {
  if (h !== undefined) clearTimeout(h.id);
}
