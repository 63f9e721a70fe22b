// Package boundednames bounds the distinct names (method names, which come
// from the network) that a metrics adapter uses as label or attribute
// values: the first Max names are kept, every later one is replaced by
// Other, and a name longer than logtext.MaxField bytes is cut as the logs
// cut it (logtext.Clip), so that a peer sending random or huge names cannot
// make the metrics grow without end, in count or in bytes. A Set is safe for concurrent use.
package boundednames

import (
	"sync"

	"github.com/wsrpc/wsrpc/internal/logtext"
)

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

// Name returns name, cut by logtext.Clip, if it is one of the first Max
// names seen, else Other.
func (s *Set) Name(name string) string {
	name = logtext.Clip(name)
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
