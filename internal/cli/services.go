package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"time"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/openrpc"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
)

// maxSleep bounds the sleep service, so that a typo cannot pin a handler for
// days.
const maxSleep = 10 * time.Minute

// broadcastTimeout bounds a broadcast.
const broadcastTimeout = 5 * time.Second

// serviceNames lists the demo services with broadcast, for the
// documentation and the demo.
var serviceNames = []string{"add", "broadcast", "callback", "countdown", "echo", "sleep", "tail", "time", "whoami"}

// services returns the demo services behind Recover and Logging (with a nil
// logger, nothing is logged). With withBroadcast false there is no broadcast
// service: it lets any client make the server send a message to every
// connection, so `wsrpc serve` offers it only with --demo-broadcast; the demo
// offers it on its own loopback server. The services reach the server they
// run in with server.FromContext. st serves the streaming services
// countdown and tail (nil: countdown only ends with its call, and tail is
// unavailable).
func services(withBroadcast bool, logger *slog.Logger, st *streaming) *handler.Mux {
	m := handler.NewMux()
	m.Use(handler.Recover(logger), handler.Logging(logger))
	m.Handle("echo", handler.Func(echo))
	m.Handle("add", handler.Func(add))
	m.Handle("sleep", handler.Func(sleep))
	m.Handle("time", handler.NoParams(now))
	m.Handle("whoami", handler.NoParams(whoami))
	m.Handle("callback", handler.Func(callback))
	m.Handle("countdown", handler.Func(st.countdown))
	m.Handle("tail", handler.Stream(st.tail))
	if withBroadcast {
		m.Handle("broadcast", handler.Func(broadcast))
	}
	m.EnableDiscovery(openrpc.Info{Title: "wsrpc serve", Version: version,
		Description: "The demo services of the wsrpc command."})
	return m
}

// echo returns its params unchanged.
func echo(_ context.Context, params json.RawMessage) (json.RawMessage, error) {
	return params, nil
}

// add returns the sum of an array of numbers.
func add(_ context.Context, nums []float64) (float64, error) {
	var sum float64
	for _, n := range nums {
		sum += n
	}
	return sum, nil
}

type sleepParams struct {
	MS int64 `json:"ms"`
}

type sleepResult struct {
	SleptMS int64 `json:"slept_ms"`
}

// sleep waits params.ms milliseconds, or until the call is cancelled.
func sleep(ctx context.Context, p sleepParams) (sleepResult, error) {
	d := time.Duration(p.MS) * time.Millisecond
	if p.MS < 0 || d > maxSleep {
		return sleepResult{}, rpc.Errorf(rpc.CodeInvalidParams, "ms must be between 0 and %d", maxSleep.Milliseconds())
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return sleepResult{SleptMS: p.MS}, nil
	case <-ctx.Done():
		return sleepResult{}, ctx.Err()
	}
}

// now returns the server's time in RFC 3339.
func now(context.Context) (string, error) {
	return time.Now().Format(time.RFC3339Nano), nil
}

type identity struct {
	ConnID      string       `json:"conn_id"`
	RemoteAddr  string       `json:"remote_addr"`
	Subprotocol string       `json:"subprotocol"`
	Principal   any          `json:"principal"`
	Metadata    rpc.Metadata `json:"metadata,omitempty"`
}

// whoami says which connection the call came on, who is on it, and the
// metadata the call carries (none: no member).
func whoami(ctx context.Context) (identity, error) {
	var id identity
	req := rpc.RequestFromContext(ctx)
	if req == nil {
		return id, rpc.NewError(rpc.CodeInternalError, "whoami runs only as a handler")
	}
	if p := req.Peer(); p != nil {
		id.ConnID = p.ID()
		if a := p.RemoteAddr(); a != nil {
			id.RemoteAddr = a.String()
		}
		id.Subprotocol = p.Subprotocol()
		id.Principal = p.Session().Principal()
	}
	if id.Subprotocol == "" {
		id.Subprotocol = "(none: JSON-RPC 2.0)"
	}
	if len(req.Metadata) > 0 {
		id.Metadata = maps.Clone(req.Metadata)
	}
	return id, nil
}

type callbackParams struct {
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

// callback calls params.method on the calling client and returns its answer:
// a server→client call made while the client's own call is in flight.
func callback(ctx context.Context, p callbackParams) (json.RawMessage, error) {
	if p.Method == "" {
		return nil, rpc.NewError(rpc.CodeInvalidParams, `want {"method": M, "params": P}`)
	}
	var peer *rpc.Peer
	if req := rpc.RequestFromContext(ctx); req != nil {
		peer = req.Peer()
	}
	if peer == nil {
		return nil, rpc.NewError(rpc.CodeInternalError, "no connection to call back on")
	}
	var params any
	if len(p.Params) > 0 && !bytes.Equal(p.Params, []byte("null")) {
		params = rpc.Raw(p.Params)
	}
	var out rpc.Raw
	err := peer.Call(ctx, p.Method, params, &out)
	var e *rpc.Error
	switch {
	case err == nil:
		if len(out) == 0 {
			return json.RawMessage("null"), nil
		}
		return json.RawMessage(out), nil
	case errors.As(err, &e):
		return nil, &rpc.Error{Code: e.Code, Message: "the client answered the callback " + p.Method + ": " + e.Message, Data: e.Data}
	case ctx.Err() != nil:
		return nil, err
	default: // the params could not go on the client's connection
		return nil, rpc.Errorf(rpc.CodeInvalidParams, "callback %s: %v", p.Method, err)
	}
}

// broadcast sends the notification "broadcast" with params to every
// connection of the server it runs in and returns how many it went to.
func broadcast(ctx context.Context, params json.RawMessage) (int, error) {
	srv := server.FromContext(ctx)
	if srv == nil {
		return 0, rpc.NewError(rpc.CodeUnavailable, "no server to broadcast through")
	}
	var p any
	if len(params) > 0 && !bytes.Equal(params, []byte("null")) {
		switch bytes.TrimSpace(params)[0] {
		case '[', '{':
		default:
			return 0, rpc.NewError(rpc.CodeInvalidParams, "params must be an array or an object (JSON-RPC clients accept nothing else)")
		}
		// json.RawMessage, not rpc.Raw: Broadcast encodes params with each
		// connection's value codec, and JSON keeps a RawMessage as it is.
		p = params
	}
	// A fan-out, once started, goes to everyone even if the caller leaves
	// (a notification's handler is cancelled when its connection closes,
	// which `wsrpc notify` does at once); the timeout bounds the wait on
	// connections whose send queue is full.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), broadcastTimeout)
	defer cancel()
	return srv.Broadcast(bctx, "broadcast", p, nil)
}
