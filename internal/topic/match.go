package topic

// Match reports whether topic matches pattern: token by token, a "*" in
// pattern matches any one token, a last token ">" matches one or more
// remaining tokens, and any other token matches only itself. It does not
// allocate.
//
// Both are meant to be valid (see [Limits]); for other strings Match
// follows the same rule on the '.'-separated pieces (a ">" that is not
// last matches only ">"), and never panics.
func Match(pattern, topic string) bool {
	for {
		p, prest, pmore := next(pattern)
		t, trest, tmore := next(topic)
		if p == ">" && !pmore {
			return true // t is at least one more token
		}
		if p != "*" && p != t {
			return false
		}
		if !pmore || !tmore {
			return pmore == tmore
		}
		pattern, topic = prest, trest
	}
}

// Covers reports whether every topic that pattern inner matches is also
// matched by pattern outer: a permission rule for "chat.>" covers a
// subscription to "chat.*.x", and one for "chat.*" does not cover
// "chat.>". Token by token: a last ">" in outer covers the rest of inner
// (one or more tokens, wildcards included); a "*" in outer covers any one
// token of inner except a last ">"; any other token covers only the same
// token. A concrete topic t is covered by outer exactly when
// Match(outer, t). Covers does not allocate; invalid inputs are treated as
// in [Match].
func Covers(outer, inner string) bool {
	for {
		o, orest, omore := next(outer)
		i, irest, imore := next(inner)
		if o == ">" && !omore {
			return true
		}
		switch {
		case o == "*":
			if i == ">" && !imore {
				return false // "*" is one token; ">" may be several
			}
		case o != i:
			return false
		}
		if !omore || !imore {
			return omore == imore
		}
		outer, inner = orest, irest
	}
}
