package handler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/wsrpc/wsrpc/openrpc"
	"github.com/wsrpc/wsrpc/rpc"
)

// Errors from [Mux.TryHandle] (and the values [Mux.Handle] panics with),
// for errors.Is.
var (
	ErrInvalidPattern   = errors.New("wsrpc: invalid pattern")
	ErrDuplicatePattern = errors.New("wsrpc: pattern already registered")
)

// Mux routes each call to a handler by its method name.
//
// A pattern is either an exact method name ("math.add") or a prefix ending
// in one '*' ("math.*"), which matches every method that begins with the
// text before the '*'; "*" alone matches every method. An exact pattern
// beats any prefix, and among prefixes the longest wins. A call that matches
// nothing goes to the not-found handler, which by default answers with
// [rpc.CodeMethodNotFound] naming the method (see [Mux.NotFound]).
//
// Middleware given to [Mux.Use] wraps the routing, so it sees every call,
// unknown methods included; middleware given to [Mux.Handle] wraps one route,
// inside the global middleware. See the package documentation for the order.
//
// With [Mux.EnableDiscovery], the Mux also answers the reserved method
// rpc.discover with an OpenRPC document listing its routes; it does not
// by default.
//
// Routes, middleware and the not-found handler may be changed at any time,
// also while the Mux serves: a change applies to calls that start after it
// returns. [Mux.ServeRPC] reads an immutable routing table without locking;
// the first call after a change rebuilds that table. A Mux is safe for
// concurrent use. The zero Mux is ready to use; [NewMux] returns a new one.
type Mux struct {
	mu       sync.Mutex
	exact    map[string]Handler
	prefixes map[string]Handler // by the text before the '*'
	notFound Handler
	mws      []Middleware
	sigs     map[string]*signature // by pattern: nil for an untyped route
	discover *discovery            // nil: rpc.discover is not answered

	table atomic.Pointer[table]   // nil: build it from the fields above
	chain atomic.Pointer[Handler] // the global middleware around m.route; nil: build it
}

var _ Handler = (*Mux)(nil)

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{} }

// Handle registers h for pattern, wrapped in mws (mws[0] outermost), as
// [Mux.TryHandle] does, and panics where TryHandle returns an error: for an
// empty pattern, one with a '*' anywhere but at its end, one in a reserved
// namespace ("$/", "rpc."), a nil h, or a pattern already registered. Those
// are programmer errors, as net/http's ServeMux.Handle treats them; a
// program that builds routes from input at run time uses TryHandle.
func (m *Mux) Handle(pattern string, h Handler, mws ...Middleware) {
	if err := m.TryHandle(pattern, h, mws...); err != nil {
		panic(err)
	}
}

// TryHandle registers h for pattern, wrapped in mws (mws[0] outermost). It
// returns an error wrapping [ErrInvalidPattern] for an empty pattern, one
// with a '*' anywhere but at its end, or one that starts with a reserved
// prefix ([rpc.ReservedMethod]: "$/" and "rpc." are the protocol's), one
// for a nil h, and one wrapping [ErrDuplicatePattern] if pattern is
// already registered: a route is never silently replaced.
//
// A handler built by [Func], [NoParams], [NoResult] or [Stream] (or
// registered by [Register], [RegisterNotification] or [RegisterStream])
// knows its Go types: discovery describes its params and result
// ([Mux.EnableDiscovery]). Others are listed by pattern alone.
func (m *Mux) TryHandle(pattern string, h Handler, mws ...Middleware) error {
	prefix, isPrefix, err := parsePattern(pattern)
	if err != nil {
		return fmt.Errorf("handle %q: %w", pattern, err)
	}
	if f, ok := h.(HandlerFunc); h == nil || ok && f == nil {
		return fmt.Errorf("handle %q: nil handler", pattern)
	}
	var sig *signature
	if t, ok := h.(*typed); ok {
		sig = &t.sig
	}
	h = Chain(mws...)(h)
	m.mu.Lock()
	defer m.mu.Unlock()
	routes := &m.exact
	key := pattern
	if isPrefix {
		routes, key = &m.prefixes, prefix
	}
	if _, ok := (*routes)[key]; ok {
		return fmt.Errorf("handle %q: %w", pattern, ErrDuplicatePattern)
	}
	if *routes == nil {
		*routes = make(map[string]Handler)
	}
	(*routes)[key] = h
	if m.sigs == nil {
		m.sigs = make(map[string]*signature)
	}
	m.sigs[pattern] = sig
	m.table.Store(nil)
	return nil
}

// HandleFunc is [Mux.Handle] for a function: it panics where Handle does.
func (m *Mux) HandleFunc(pattern string, f func(ctx context.Context, req *rpc.Request) ([]byte, error), mws ...Middleware) {
	m.Handle(pattern, HandlerFunc(f), mws...)
}

// NotFound sets the handler for calls that match no pattern. nil restores
// the default, which answers with [rpc.CodeMethodNotFound].
func (m *Mux) NotFound(h Handler) {
	m.mu.Lock()
	m.notFound = h
	m.table.Store(nil)
	m.mu.Unlock()
}

// Use appends global middleware: it wraps the routing, so it runs for every
// call, unknown methods included, outside any route's own middleware. The
// first middleware given to the first Use is outermost. Use may be called at
// any time; every global middleware is applied again to build the new chain,
// under the Mux's lock, so applying a middleware must not call the Mux.
func (m *Mux) Use(mws ...Middleware) {
	m.mu.Lock()
	m.mws = append(m.mws, compact(mws)...)
	m.chain.Store(nil)
	m.mu.Unlock()
}

// ServeRPC runs the global middleware and routes the call.
func (m *Mux) ServeRPC(ctx context.Context, req *rpc.Request) ([]byte, error) {
	c := m.chain.Load()
	if c == nil {
		c = m.buildChain()
	}
	return (*c).ServeRPC(ctx, req)
}

// route calls the handler that req.Method resolves to.
func (m *Mux) route(ctx context.Context, req *rpc.Request) ([]byte, error) {
	t := m.table.Load()
	if t == nil {
		t = m.buildTable()
	}
	return t.lookup(req.Method).ServeRPC(ctx, req)
}

func (m *Mux) buildChain() *Handler {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.chain.Load(); c != nil {
		return c // built by another call meanwhile
	}
	h := Chain(m.mws...)(HandlerFunc(m.route))
	m.chain.Store(&h)
	return &h
}

func (m *Mux) buildTable() *table {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t := m.table.Load(); t != nil {
		return t
	}
	t := &table{
		exact:    make(map[string]Handler, len(m.exact)),
		prefixes: make(map[string]Handler, len(m.prefixes)),
		notFound: m.notFound,
	}
	if t.notFound == nil {
		t.notFound = methodNotFound
	}
	for k, h := range m.exact {
		t.exact[k] = h
	}
	if m.discover != nil {
		t.exact[openrpc.MethodDiscover] = m.discover.handler(m.routesLocked())
	}
	for p, h := range m.prefixes {
		t.prefixes[p] = h
		if !slices.Contains(t.lengths, len(p)) {
			t.lengths = append(t.lengths, len(p))
		}
	}
	slices.Sort(t.lengths)
	slices.Reverse(t.lengths) // longest first
	m.table.Store(t)
	return t
}

// table is an immutable snapshot of the routes.
type table struct {
	exact    map[string]Handler
	prefixes map[string]Handler
	lengths  []int // the distinct prefix lengths, longest first
	notFound Handler
}

// lookup returns the handler for method: the exact route, else the longest
// matching prefix, else the not-found handler. It costs one map lookup per
// distinct prefix length at most, and never allocates.
func (t *table) lookup(method string) Handler {
	if h, ok := t.exact[method]; ok {
		return h
	}
	for _, n := range t.lengths {
		if n > len(method) {
			continue
		}
		if h, ok := t.prefixes[method[:n]]; ok {
			return h
		}
	}
	return t.notFound
}

var methodNotFound = HandlerFunc(func(_ context.Context, req *rpc.Request) ([]byte, error) {
	return nil, rpc.Errorf(rpc.CodeMethodNotFound, "method %q not found", req.Method)
})

// parsePattern splits a pattern into its prefix when it ends in '*'.
func parsePattern(pattern string) (prefix string, isPrefix bool, err error) {
	if pattern == "" {
		return "", false, fmt.Errorf("%w: empty", ErrInvalidPattern)
	}
	i := strings.IndexByte(pattern, '*')
	switch {
	case rpc.ReservedMethod(pattern):
		return "", false, fmt.Errorf("%w: %q and %q start the protocol's reserved methods", ErrInvalidPattern, "$/", "rpc.")
	case i < 0:
		return "", false, nil
	case i != len(pattern)-1:
		return "", false, fmt.Errorf("%w: '*' may only end a pattern", ErrInvalidPattern)
	}
	return pattern[:i], true, nil
}
