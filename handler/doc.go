// Package handler builds the server side of a wsrpc connection out of small
// parts: a method router ([Mux]), typed handlers that decode params and
// encode results ([Func], [NoParams], [NoResult]), and middleware stages
// for the per-call concerns every service has: [Recover], [Timeout],
// [Logging], [Limit], [LimitPerMethod], [Authorize], [Instrument] and the
// auditing hooks [Before], [AfterSuccess] and [AfterError].
//
// A method declared with [rpc.NewMethod] (or [rpc.NewNotification],
// [rpc.NewStreamMethod]) is served with [Register] ([RegisterNotification],
// [RegisterStream]), which the compiler holds to the declared types. A Mux
// knows the Go types of the typed handlers it routes, and with
// [Mux.EnableDiscovery] answers rpc.discover with an OpenRPC document
// describing them (off by default). [Mux.Handle] panics on a programmer
// error, as net/http's does; [Mux.TryHandle] returns it.
//
// A [Handler] is an [rpc.Handler], so a Mux or any handler built here plugs
// straight into [rpc.WithHandler]. Who is calling is on the request:
// req.Peer() is the connection (its ID, RemoteAddr, Header, Subprotocol and
// Session, with the principal), and a typed handler that has only its ctx
// gets the request with [rpc.RequestFromContext].
//
// A [Middleware] is an [rpc.Middleware], so the same stage ([Logging],
// [Instrument], a tracing one of your own) can also wrap the calls a peer
// makes, given to [rpc.WithOutgoingMiddleware]; [rpc.Request.Outgoing] tells
// it which way a call goes. [Logging] marks the records of calls made with
// direction=outgoing; one [Instrument] counts both directions together.
//
// # Order of middleware
//
// A [Middleware] wraps a Handler in another. [Chain] composes several:
// Chain(a, b, c)(h) is a(b(c(h))), so a runs first on the way in and last on
// the way out, as in net/http and go-kit. On a Mux, the middleware given to
// [Mux.Use] wraps the routing itself (so it also sees calls to unknown
// methods), and the middleware given to [Mux.Handle] wraps that route only,
// inside the global ones:
//
//	Use(a, b); Handle("m", h, c, d)  →  a → b → route → c → d → h
//
// Order matters. A usual arrangement puts [Recover] outermost (so that a
// panic in any stage is caught), then [Logging] and [Instrument] (so that
// they see every outcome, refusals included), then [Limit], [Timeout] and
// [Authorize], with the auditing hooks innermost.
//
// # Concurrency and ownership
//
// The rpc layer calls a handler on its own goroutine for each call, so every
// Handler and every Middleware must be safe for concurrent use; all of those
// in this package are. Every stage is a plain synchronous wrapper: it runs on
// the caller's goroutine, gets the call's context and returns its error.
// This package starts no goroutines and owns none; waiting (in [Limit]) uses
// a timer and the call's context.
//
// A Mux is safe for concurrent use: routes and middleware may be added while
// it serves, and [Mux.ServeRPC] takes no lock.
package handler
