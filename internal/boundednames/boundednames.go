// Package boundednames bounds the distinct names (method names, which come
// from the network) that a metrics adapter uses as label or attribute
// values: the first Max names are kept, every later one is replaced by
// Other, so that a peer sending random names cannot make the metrics grow
// without end. A Set is safe for concurrent use.
package boundednames

import "sync"

// Other replaces the names beyond a Set's bound.
const Other = "(other)"

// Set is the names seen, up to Max. The zero value keeps none: every name
// is Other.
type Set struct {
	Max int

	names sync.Map // name → struct{}
	mu    sync.Mutex
	n     int // names stored, guarded by mu
}

// Name returns name if it is one of the first Max names seen, else Other.
func (s *Set) Name(name string) string {
	if _, ok := s.names.Load(name); ok {
		return name
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.names.Load(name); ok {
		return name
	}
	if s.n >= s.Max {
		return Other
	}
	s.n++
	s.names.Store(name, struct{}{})
	return name
}
