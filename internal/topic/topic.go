package topic

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits bounds the size of a topic or pattern. A field that is zero or
// negative takes its value from [DefaultLimits].
type Limits struct {
	MaxLen    int // bytes
	MaxTokens int // '.'-separated tokens
}

// DefaultLimits are the limits used for zero fields of a [Limits].
var DefaultLimits = Limits{MaxLen: 256, MaxTokens: 16}

// maxShown bounds how much of an invalid topic an error message quotes.
const maxShown = 64

// Topic reports why s is not a valid concrete topic within l, or nil.
// A concrete topic has no wildcard token.
func (l Limits) Topic(s string) error { return l.check(s, false) }

// Pattern reports why s is not a valid pattern within l, or nil. Every
// valid concrete topic is a valid pattern.
func (l Limits) Pattern(s string) error { return l.check(s, true) }

func (l Limits) check(s string, pattern bool) error {
	kind := "topic"
	if pattern {
		kind = "pattern"
	}
	maxLen, maxTokens := l.MaxLen, l.MaxTokens
	if maxLen <= 0 {
		maxLen = DefaultLimits.MaxLen
	}
	if maxTokens <= 0 {
		maxTokens = DefaultLimits.MaxTokens
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s %s: %s", kind, quote(s), fmt.Sprintf(format, args...))
	}
	if s == "" {
		return fail("empty")
	}
	if len(s) > maxLen {
		return fail("%d bytes, over the limit of %d", len(s), maxLen)
	}
	if n := strings.Count(s, ".") + 1; n > maxTokens {
		return fail("%d tokens, over the limit of %d", n, maxTokens)
	}
	start := 0 // of the current token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '.':
			if i == start {
				return fail("empty token at byte %d", i)
			}
			start = i + 1
			i++
		case c <= ' ' || c == 0x7f:
			return fail("invalid character %q at byte %d (no spaces or control characters)", rune(c), i)
		case c == '*' || c == '>':
			end := len(s)
			if j := strings.IndexByte(s[start:], '.'); j >= 0 {
				end = start + j
			}
			switch {
			case !pattern && end-start == 1:
				return fail("wildcard %q at byte %d (a topic has no wildcards; a pattern may)", rune(c), i)
			case !pattern:
				return fail("invalid character %q at byte %d (* and > are wildcards, for patterns only)", rune(c), i)
			case end-start != 1:
				return fail("%q at byte %d inside the token %s (a wildcard must be a whole token)",
					rune(c), i, quote(s[start:end]))
			case c == '>' && end != len(s):
				return fail("\">\" at byte %d is not the last token", i)
			}
			i++
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				return fail("invalid UTF-8 at byte %d", i)
			}
			i += size
		}
	}
	if start == len(s) {
		return fail("empty token at byte %d", start)
	}
	return nil
}

// quote returns s quoted for an error message; if that is longer than
// about maxShown bytes, it quotes a prefix of s (cut at a rune boundary)
// followed by "...".
func quote(s string) string {
	q := strconv.Quote(s)
	if len(q) <= maxShown+2 {
		return q
	}
	n := min(len(s), maxShown)
	for {
		for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
			n--
		}
		if q = strconv.Quote(s[:n]); len(q) <= maxShown+2 || n == 0 {
			return q + "..."
		}
		n--
	}
}

// IsPattern reports whether s has a wildcard token: a token that is "*"
// or ">". It does not validate s.
func IsPattern(s string) bool {
	for {
		tok, rest, more := next(s)
		if tok == "*" || tok == ">" {
			return true
		}
		if !more {
			return false
		}
		s = rest
	}
}

// next splits the first token off s: tok is s up to its first '.', rest
// what follows that '.', and more whether there was one (a rest of "" with
// more set is one empty token).
func next(s string) (tok, rest string, more bool) {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}
