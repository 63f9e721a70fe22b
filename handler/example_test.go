package handler_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
)

// The first middleware given to Chain is outermost: it runs first on the
// way in and last on the way out.
func ExampleChain() {
	stage := func(name string) handler.Middleware {
		return func(next handler.Handler) handler.Handler {
			return handler.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
				fmt.Println(name, "in")
				defer fmt.Println(name, "out")
				return next.ServeRPC(ctx, req)
			})
		}
	}
	h := handler.Chain(stage("first"), stage("second"), stage("third"))(
		handler.HandlerFunc(func(context.Context, *rpc.Request) ([]byte, error) {
			fmt.Println("handler")
			return nil, nil
		}))
	h.ServeRPC(context.Background(), &rpc.Request{Method: "ping"})
	// Output:
	// first in
	// second in
	// third in
	// handler
	// third out
	// second out
	// first out
}

func ExampleMux() {
	mux := handler.NewMux()
	mux.Use(handler.Recover(nil)) // around every call, unknown methods included
	add := handler.Func(func(_ context.Context, xs []int) (int, error) {
		sum := 0
		for _, x := range xs {
			sum += x
		}
		return sum, nil
	})
	mux.Handle("math.add", add)
	mux.Handle("math.*", handler.HandlerFunc(func(_ context.Context, req *rpc.Request) ([]byte, error) {
		return json.Marshal("no such operation: " + req.Method)
	}))
	if err := mux.TryHandle("math.add", add); err != nil { // a route is never replaced (Handle panics)
		fmt.Println(err)
	}

	for _, method := range []string{"math.add", "math.mul", "greet"} {
		result, err := mux.ServeRPC(context.Background(), &rpc.Request{Method: method, Params: []byte("[2,3]")})
		if err != nil {
			fmt.Printf("%s: error %d: %v\n", method, rpc.CodeOf(err), err)
			continue
		}
		fmt.Printf("%s: %s\n", method, result)
	}
	// Output:
	// handle "math.add": wsrpc: pattern already registered
	// math.add: 5
	// math.mul: "no such operation: math.mul"
	// greet: error -32601: wsrpc: method not found (-32601): method "greet" not found
}

func ExampleFunc() {
	type greeting struct {
		Name  string `json:"name"`
		Times int    `json:"times"`
	}
	greet := handler.Func(func(_ context.Context, g greeting) (string, error) {
		if g.Name == "" {
			return "", rpc.NewError(rpc.CodeInvalidParams, "name is required")
		}
		return strings.Repeat("hello "+g.Name+"! ", g.Times), nil
	})

	for _, params := range []string{`{"name":"ada","times":2}`, `{"name":"ada","times":"2"}`, `{}`} {
		result, err := greet.ServeRPC(context.Background(), &rpc.Request{Method: "greet", Params: []byte(params)})
		var e *rpc.Error
		if errors.As(err, &e) {
			fmt.Printf("%d %s\n", e.Code, e.Message)
			continue
		}
		fmt.Printf("%s\n", result)
	}
	// Output:
	// "hello ada! hello ada! "
	// -32602 invalid params: json: cannot unmarshal string into Go struct field greeting.times of type int
	// -32602 name is required
}

// The session of a connection carries who is on the other end; Authorize
// checks every call against it. Here a login method records the principal;
// a server that authenticates the handshake gives it to the peer with
// server.WithAuth instead.
func ExampleAuthorize() {
	mux := handler.NewMux()
	mux.Use(handler.Authorize(func(_ context.Context, principal any, method string) error {
		switch {
		case method == "login":
			return nil
		case principal == nil:
			return rpc.NewError(rpc.CodeUnauthenticated, "log in first")
		case strings.HasPrefix(method, "admin.") && principal != "root":
			return fmt.Errorf("%v may not call %s", principal, method)
		}
		return nil
	}))
	mux.Handle("login", handler.Func(func(ctx context.Context, name string) (bool, error) {
		rpc.RequestFromContext(ctx).Peer().Session().SetPrincipal(name)
		return true, nil
	}))
	mux.Handle("admin.reset", handler.NoParams(func(context.Context) (string, error) { return "done", nil }))

	client, stop := examplePeers(mux, nil)
	defer stop()
	ctx := context.Background()
	reset := func() {
		var result string
		if err := client.Call(ctx, "admin.reset", nil, &result); err != nil {
			fmt.Println(rpc.CodeOf(err), "-", err.(*rpc.Error).Message)
			return
		}
		fmt.Println(result)
	}
	reset()
	client.Call(ctx, "login", "alice", nil)
	reset()
	client.Call(ctx, "login", "root", nil)
	reset()
	// Output:
	// unauthenticated - log in first
	// permission denied - alice may not call admin.reset
	// done
}

// A handler finds the call and its connection on the request; a typed
// handler, which has only its ctx, gets the request with
// rpc.RequestFromContext.
func Example_whoami() {
	whoami := handler.NoParams(func(ctx context.Context) (string, error) {
		req := rpc.RequestFromContext(ctx)
		p := req.Peer()
		return fmt.Sprintf("%v called %s (id %s) over %s, %d-digit connection id",
			p.Session().Principal(), req.Method, req.WireID(), p.Subprotocol(), len(p.ID())), nil
	})
	alice := server.WithAuth(func(*http.Request) (any, error) { return "alice", nil })
	client, stop := examplePeers(whoami, []server.Option{alice})
	defer stop()
	var got string
	err := client.Call(context.Background(), "whoami", nil, &got)
	fmt.Println(got, err)
	// Output:
	// alice called whoami (id 1) over wsrpc.v1, 16-digit connection id <nil>
}

// The same middleware can wrap the calls a peer serves (in its handler
// chain) and the calls it makes (rpc.WithOutgoingMiddleware);
// req.Outgoing tells the two apart.
func ExampleMiddleware() {
	trace := func(side string) handler.Middleware {
		return func(next handler.Handler) handler.Handler {
			return handler.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
				dir := "serves"
				if req.Outgoing() {
					dir = "calls"
				}
				fmt.Println(side, dir, req.Method)
				return next.ServeRPC(ctx, req)
			})
		}
	}
	ping := handler.NoParams(func(context.Context) (string, error) { return "pong", nil })
	client, stop := examplePeers(trace("server")(ping), nil, rpc.WithOutgoingMiddleware(trace("client")))
	defer stop()
	var got string
	client.Call(context.Background(), "ping", nil, &got)
	fmt.Println(got)
	// Output:
	// client calls ping
	// server serves ping
	// pong
}

// examplePeers serves h with server.New (and srvOpts) on loopback and
// connects a client to it with client.Dial (and clientOpts). stop closes
// both.
func examplePeers(h handler.Handler, srvOpts []server.Option, clientOpts ...client.Option) (c *client.Client, stop func()) {
	srv, err := server.New(h, srvOpts...)
	if err != nil {
		panic(err)
	}
	hs := httptest.NewServer(srv)
	c, err = client.Dial(context.Background(), hs.URL, clientOpts...)
	if err != nil {
		panic(err)
	}
	return c, func() {
		c.Close()
		srv.Close()
		hs.Close()
	}
}
