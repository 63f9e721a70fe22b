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
// answers "hello, name". (A real one comes from the server package.)
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
		return json.Marshal("hello, " + names[0])
	})
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

	ctx := context.Background()
	c, err := client.Dial(ctx, srv.URL, client.WithCodec(client.JSONRPC))
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
