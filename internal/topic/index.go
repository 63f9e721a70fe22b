package topic

// Index is a set of (pattern, value) pairs that finds the pairs whose
// pattern matches a topic, for delivering a publication to the
// subscriptions of the patterns it matches. Patterns without a wildcard
// are kept in a map; patterns with one in a trie of tokens, so that the
// cost of [Index.Match] depends on the patterns that could match the topic,
// not on how many there are.
//
// The zero Index is empty and ready to use. An Index is not safe for
// concurrent use: its owner serializes calls (concurrent calls of Match
// alone are safe, as Match only reads). Patterns are not validated: the
// owner validates them with [Limits.Pattern] first; an invalid one is
// matched as [Match] would.
type Index[V comparable] struct {
	exact map[string][]V
	root  node[V]
	n     int
}

// node is the trie node reached by a sequence of pattern tokens.
type node[V comparable] struct {
	literal map[string]*node[V] // next token literal (">" not last is a literal)
	star    *node[V]            // next token "*"
	rest    []V                 // values of the patterns whose next, last, token is ">"
	end     []V                 // values of the patterns that end here
}

func (n *node[V]) empty() bool {
	return len(n.literal) == 0 && n.star == nil && len(n.rest) == 0 && len(n.end) == 0
}

// Add adds the pair (pattern, v). Adding a pair that is already there does
// nothing. Add and [Index.Remove] take time linear in the number of values
// already added for pattern.
func (ix *Index[V]) Add(pattern string, v V) {
	var vs *[]V
	if !IsPattern(pattern) {
		if ix.exact == nil {
			ix.exact = make(map[string][]V)
		}
		s := ix.exact[pattern]
		if add(&s, v) {
			ix.exact[pattern] = s
			ix.n++
		}
		return
	}
	n := &ix.root
	for {
		tok, rest, more := next(pattern)
		if tok == ">" && !more {
			vs = &n.rest
			break
		}
		n = n.child(tok)
		if !more {
			vs = &n.end
			break
		}
		pattern = rest
	}
	if add(vs, v) {
		ix.n++
	}
}

// child returns the child of n for the pattern token tok, making it if
// needed.
func (n *node[V]) child(tok string) *node[V] {
	if tok == "*" {
		if n.star == nil {
			n.star = new(node[V])
		}
		return n.star
	}
	c := n.literal[tok]
	if c == nil {
		if n.literal == nil {
			n.literal = make(map[string]*node[V])
		}
		c = new(node[V])
		n.literal[tok] = c
	}
	return c
}

// Remove removes the pair (pattern, v) and reports whether it was there.
// Trie nodes left with nothing below them are freed.
func (ix *Index[V]) Remove(pattern string, v V) bool {
	if !IsPattern(pattern) {
		s, ok := ix.exact[pattern]
		if !ok || !remove(&s, v) {
			return false
		}
		if len(s) == 0 {
			delete(ix.exact, pattern)
		} else {
			ix.exact[pattern] = s
		}
		ix.n--
		return true
	}
	if !ix.root.remove(pattern, v) {
		return false
	}
	ix.n--
	return true
}

// remove removes v from the pattern (the rest of one, below n), pruning
// the children it leaves empty.
func (n *node[V]) remove(pattern string, v V) bool {
	tok, rest, more := next(pattern)
	if tok == ">" && !more {
		return remove(&n.rest, v)
	}
	var c *node[V]
	if tok == "*" {
		c = n.star
	} else {
		c = n.literal[tok]
	}
	if c == nil {
		return false
	}
	var ok bool
	if more {
		ok = c.remove(rest, v)
	} else {
		ok = remove(&c.end, v)
	}
	if ok && c.empty() {
		if tok == "*" {
			n.star = nil
		} else if delete(n.literal, tok); len(n.literal) == 0 {
			n.literal = nil
		}
	}
	return ok
}

// Match calls fn once for each pair whose pattern matches topic, in no
// particular order. fn must not call Add or Remove. Match does not
// allocate.
func (ix *Index[V]) Match(topic string, fn func(V)) {
	for _, v := range ix.exact[topic] {
		fn(v)
	}
	ix.root.match(topic, fn)
}

// match calls fn for the patterns below n that match topic, the rest of a
// topic (at least one token, maybe empty).
func (n *node[V]) match(topic string, fn func(V)) {
	for _, v := range n.rest {
		fn(v)
	}
	tok, rest, more := next(topic)
	if n.star != nil {
		n.star.matchNext(rest, more, fn)
	}
	if c := n.literal[tok]; c != nil {
		c.matchNext(rest, more, fn)
	}
}

// matchNext continues match at n, after a token that was the topic's last
// unless more.
func (n *node[V]) matchNext(rest string, more bool, fn func(V)) {
	if !more {
		for _, v := range n.end {
			fn(v)
		}
		return
	}
	n.match(rest, fn)
}

// Len returns the number of pairs in the index.
func (ix *Index[V]) Len() int { return ix.n }

// add adds v to the set *s and reports whether it was not there.
func add[V comparable](s *[]V, v V) bool {
	for _, x := range *s {
		if x == v {
			return false
		}
	}
	*s = append(*s, v)
	return true
}

// remove removes v from the set *s (moving the last value into its place)
// and reports whether it was there. An emptied set is set to nil.
func remove[V comparable](s *[]V, v V) bool {
	for i, x := range *s {
		if x == v {
			last := len(*s) - 1
			(*s)[i] = (*s)[last]
			var zero V
			(*s)[last] = zero
			*s = (*s)[:last]
			if last == 0 {
				*s = nil
			}
			return true
		}
	}
	return false
}
