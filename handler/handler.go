package handler

import "github.com/wsrpc/wsrpc/rpc"

// Handler serves one call: it returns the encoded result or an error. It is
// [rpc.Handler], so any Handler can be given to [rpc.WithHandler]. It must be
// safe for concurrent use.
type Handler = rpc.Handler

// HandlerFunc adapts a function to [Handler]. It is [rpc.HandlerFunc].
type HandlerFunc = rpc.HandlerFunc

// Middleware wraps a [Handler] in another that adds a per-call concern
// (recovery, deadlines, logging, limits, authorization, ...). It is
// [rpc.Middleware]: the same value can wrap the calls a peer serves (a
// handler chain) and the calls it makes ([rpc.WithOutgoingMiddleware]). The
// Handler it returns must be safe for concurrent use.
//
// A Middleware may be applied more than once (a [Mux] applies its global
// middleware again after each [Mux.Use]), so state shared by every call, such
// as a limit's slots, belongs in the constructor that returns the Middleware,
// not in the Middleware itself. Those of this package are built that way:
// every Handler one Middleware value wraps shares its state.
type Middleware = rpc.Middleware

// Chain composes middleware into one. mws[0] is outermost: it runs first on
// the way in and last on the way out, so Chain(a, b, c)(h) is a(b(c(h))).
// nil entries are skipped, and Chain() returns the handler unchanged.
func Chain(mws ...Middleware) Middleware {
	mws = compact(mws)
	return func(h Handler) Handler {
		for i := len(mws) - 1; i >= 0; i-- {
			h = mws[i](h)
		}
		return h
	}
}

// compact returns a copy of mws without the nil entries, so that the caller
// may reuse its slice.
func compact(mws []Middleware) []Middleware {
	out := make([]Middleware, 0, len(mws))
	for _, mw := range mws {
		if mw != nil {
			out = append(out, mw)
		}
	}
	return out
}
