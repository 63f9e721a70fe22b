package handler_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
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
	mux.Handle("math.*", handler.NoParams(func(ctx context.Context) (string, error) {
		return "no such operation: " + handler.MethodFrom(ctx), nil // "" outside a connection
	}))
	if err := mux.Handle("math.add", add); err != nil { // a route is never replaced
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
	// math.mul: "no such operation: "
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

// A session carries who is on the other end; Authorize checks every call
// against it.
func ExampleAuthorize() {
	admin := handler.Authorize(func(_ context.Context, principal any, method string) error {
		switch {
		case principal == nil:
			return rpc.NewError(rpc.CodeUnauthenticated, "log in first")
		case strings.HasPrefix(method, "admin.") && principal != "root":
			return fmt.Errorf("%v may not call %s", principal, method)
		}
		return nil
	})
	h := admin(handler.NoParams(func(context.Context) (string, error) { return "done", nil }))

	session := new(handler.Session) // one per connection, in the connection's base context
	ctx := handler.WithSession(context.Background(), session)
	call := func() {
		result, err := h.ServeRPC(ctx, &rpc.Request{Method: "admin.reset"})
		if err != nil {
			fmt.Println(rpc.CodeOf(err), "-", err.(*rpc.Error).Message)
			return
		}
		fmt.Printf("%s\n", result)
	}
	call()
	session.SetPrincipal("alice")
	call()
	session.SetPrincipal("root")
	call()
	// Output:
	// unauthenticated - log in first
	// permission denied - alice may not call admin.reset
	// "done"
}
