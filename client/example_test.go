package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// greeter is a minimal server for the examples: "greet" takes [name] and
// answers "hello, name", or with the greeting its metadata asks for.
// (A real one comes from the server package.)
func greeter() *httptest.Server {
	return httptest.NewServer(greeterHandler())
}

// greeterHandler is greeter's HTTP handler.
func greeterHandler() http.Handler {
	h := rpc.HandlerFunc(func(_ context.Context, req *rpc.Request) ([]byte, error) {
		var names []string
		if err := json.Unmarshal(req.Params, &names); err != nil || len(names) != 1 {
			return nil, rpc.Errorf(rpc.CodeInvalidParams, "want [name]")
		}
		greeting := "hello"
		if g, ok := req.Metadata["greeting"]; ok {
			greeting = g
		}
		return json.Marshal(greeting + ", " + names[0])
	})
	return rpcOverHTTP(h)
}

// rpcOverHTTP serves h on every WebSocket connection it accepts.
func rpcOverHTTP(h rpc.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := transport.Accept(w, r, &transport.AcceptOptions{Subprotocols: rpc.Subprotocols()})
		if err != nil {
			return
		}
		// The peer ends when the client closes the connection.
		_, _ = rpc.New(conn, rpc.WithHandler(h))
	})
}

func ExampleDial() {
	srv := greeter()
	defer srv.Close()

	ctx := context.Background()
	c, err := client.Dial(ctx, srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	var greeting string
	if err := c.Call(ctx, "greet", []string{"gopher"}, &greeting); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(greeting)
	// Output: hello, gopher
}

func ExampleWithWaitForServer() {
	// A server still starting up: it answers 503 to the first two handshakes.
	var handshakes atomic.Int32
	greet := greeterHandler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if handshakes.Add(1) <= 2 {
			http.Error(w, "starting up", http.StatusServiceUnavailable)
			return
		}
		greet.ServeHTTP(w, r)
	}))
	defer srv.Close()

	// Dial waits for the server, at most 10 s; 401, 403 and the like would
	// still fail at once.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, srv.URL, client.WithWaitForServer())
	if err != nil {
		fmt.Println(err) // it wraps context.DeadlineExceeded and the last attempt's error
		return
	}
	defer c.Close()

	var greeting string
	err = c.Call(ctx, "greet", []string{"gopher"}, &greeting)
	fmt.Println(greeting, err, "after", handshakes.Load(), "handshakes")
	// Output: hello, gopher <nil> after 3 handshakes
}

func ExampleClient_Go() {
	srv := greeter()
	defer srv.Close()

	// JSON-RPC only: readable traffic (the default offers binary first).
	ctx := context.Background()
	c, err := client.Dial(ctx, srv.URL, rpc.WithSubprotocols(rpc.SubprotocolJSON))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	reply := make(chan *rpc.Response, 1)
	if err := c.Go(ctx, "greet", []string{"channels"}, reply); err != nil {
		fmt.Println(err)
		return
	}
	r := <-reply
	if r.Err != nil {
		fmt.Println(r.Err)
		return
	}
	fmt.Println(string(r.Result))
	// Output: "hello, channels"
}

func ExampleClient_Call_idempotent() {
	srv := greeter()
	defer srv.Close()

	ctx := context.Background()
	c, err := client.Dial(ctx, srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	// Safe to run twice: sent again if the connection drops before the reply.
	var greeting string
	err = c.Call(ctx, "greet", []string{"again"}, &greeting, client.Idempotent())
	fmt.Println(greeting, err)
	// Output: hello, again <nil>
}

func ExampleWithMetadata() {
	srv := greeter()
	defer srv.Close()

	ctx := context.Background()
	c, err := client.Dial(ctx, srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	// The handler reads the call's metadata from req.Metadata. Metadata on
	// ctx applies to every call made with it; WithMetadata to one call, over
	// ctx's.
	ctx = rpc.ContextWithMetadata(ctx, rpc.Metadata{"greeting": "hi", "trace": "t1"})
	for _, md := range []rpc.Metadata{nil, {"greeting": "bonjour"}} {
		var greeting string
		if err := c.Call(ctx, "greet", []string{"gopher"}, &greeting, client.WithMetadata(md)); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(greeting)
	}
	// Output:
	// hi, gopher
	// bonjour, gopher
}

func ExampleDial_jsonRPC() {
	srv := greeter()
	defer srv.Close()

	// Offer JSON-RPC 2.0 only, for servers or proxies that should see
	// readable traffic. The option is rpc's: server.New takes the same.
	ctx := context.Background()
	c, err := client.Dial(ctx, srv.URL, rpc.WithSubprotocols(rpc.SubprotocolJSON))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	var greeting string
	err = c.Call(ctx, "greet", []string{"json"}, &greeting)
	fmt.Println(c.Peer().Subprotocol(), greeting, err)
	// Output: jsonrpc2.0 hello, json <nil>
}

func ExampleDial_outgoingMiddleware() {
	srv := greeter()
	defer srv.Close()

	// An outgoing middleware sees every attempt of every call the client
	// makes, on every connection, with its metadata.
	logCalls := func(next rpc.Handler) rpc.Handler {
		return rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
			res, err := next.ServeRPC(ctx, req)
			outcome := "ok"
			if err != nil {
				outcome = rpc.CodeOf(err).String()
			}
			fmt.Printf("%s trace=%q: %s\n", req.Method, req.Metadata["trace"], outcome)
			return res, err
		})
	}
	ctx := context.Background()
	c, err := client.Dial(ctx, srv.URL, rpc.WithOutgoingMiddleware(logCalls))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	var greeting string
	_ = c.Call(ctx, "greet", []string{"gopher"}, &greeting, client.WithMetadata(rpc.Metadata{"trace": "t1"}))
	_ = c.Call(ctx, "greet", nil, nil)
	// Output:
	// greet trace="t1": ok
	// greet trace="": invalid params
}

func ExampleWithStatusHook() {
	srv := greeter()
	defer srv.Close()

	c, err := client.Dial(context.Background(), srv.URL, client.WithStatusHook(func(s client.Status) {
		fmt.Println(s)
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	c.Close() // waits for the hook's last call
	// Output:
	// connected
	// closed
}
