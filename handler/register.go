package handler

import (
	"context"

	"github.com/wsrpc/wsrpc/rpc"
)

// Register registers f as the handler of the declared method m on mux,
// wrapped in mws, as mux.Handle(m.Name(), Func(f), mws...) does: the
// compiler checks that f takes m's params and returns its result, and
// discovery describes both. It panics where [Mux.Handle] does (a method
// declared twice, say).
func Register[In, Out any](mux *Mux, m rpc.Method[In, Out], f func(ctx context.Context, in In) (Out, error), mws ...Middleware) {
	mux.Handle(m.Name(), Func(f), mws...)
}

// RegisterNotification registers f as the handler of the declared
// notification n on mux, wrapped in mws. The handler is [NoResult]'s (a
// caller that calls it as a method gets null); discovery lists n with its
// params and no result, as OpenRPC describes a notification. It panics
// where [Mux.Handle] does.
func RegisterNotification[In any](mux *Mux, n rpc.Notification[In], f func(ctx context.Context, in In) error, mws ...Middleware) {
	mux.Handle(n.Name(), noResult(kindNotification, f), mws...)
}

// RegisterStream registers f as the handler of the declared streaming
// method m on mux, wrapped in mws, as mux.Handle(m.Name(), Stream(f),
// mws...) does. It panics where [Mux.Handle] does.
func RegisterStream[In, Item any](mux *Mux, m rpc.StreamMethod[In, Item], f func(ctx context.Context, in In, send func(Item) error) error, mws ...Middleware) {
	mux.Handle(m.Name(), Stream(f), mws...)
}
