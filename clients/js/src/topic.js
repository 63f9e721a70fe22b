// Topics and patterns of docs/PROTOCOL.md section 13.1, checked before a
// subscribe or a publish is sent.

/** Bounds of a topic or pattern: the Go hub's defaults. */
export const MAX_TOPIC_BYTES = 256;
export const MAX_TOPIC_TOKENS = 16;

const badByte = /[\x00-\x20\x7f]/;

/**
 * checkPattern returns why s is not a valid topic or pattern ('' when it
 * is). With exact, wildcards are refused too.
 */
export function checkPattern(s, exact = false) {
  if (typeof s !== 'string' || s === '') return 'a topic must be a non-empty string';
  if (new TextEncoder().encode(s).length > MAX_TOPIC_BYTES) return `topic ${JSON.stringify(s)} is longer than ${MAX_TOPIC_BYTES} bytes`;
  const tokens = s.split('.');
  if (tokens.length > MAX_TOPIC_TOKENS) return `topic ${JSON.stringify(s)} has more than ${MAX_TOPIC_TOKENS} tokens`;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t === '') return `topic ${JSON.stringify(s)}: empty token`;
    if (badByte.test(t)) return `topic ${JSON.stringify(s)}: a space or control character`;
    if (t === '*' || t === '>') {
      if (exact) return `${JSON.stringify(s)} is a pattern, not a topic`;
      if (t === '>' && i !== tokens.length - 1) return `pattern ${JSON.stringify(s)}: ">" must be the last token`;
    } else if (t.includes('*') || t.includes('>')) {
      return `topic ${JSON.stringify(s)}: "*" and ">" are wildcards only as whole tokens`;
    }
  }
  return '';
}

/** isPattern reports whether a valid s has a wildcard token. */
export function isPattern(s) {
  return s.split('.').some((t) => t === '*' || t === '>');
}
