package topic

// Nodes returns the number of trie nodes in ix, the root excluded, so that
// tests can see that Remove prunes.
func (ix *Index[V]) Nodes() int { return ix.root.count() }

func (n *node[V]) count() int {
	c := 0
	if n.star != nil {
		c += 1 + n.star.count()
	}
	for _, l := range n.literal {
		c += 1 + l.count()
	}
	return c
}
