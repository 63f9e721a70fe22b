package rpc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// Two peers over one connection: either side can call the other.
func ExampleNew() {
	upper := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		var s string
		if err := json.Unmarshal(req.Params, &s); err != nil {
			return nil, rpc.Errorf(rpc.CodeInvalidParams, "want a string: %v", err)
		}
		return json.Marshal(strings.ToUpper(s))
	})
	accepted := make(chan *rpc.Peer, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := transport.Accept(w, r, &transport.AcceptOptions{Subprotocols: rpc.Subprotocols()})
		if err != nil {
			return
		}
		p, _ := rpc.New(c, rpc.WithHandler(upper))
		accepted <- p
	}))
	defer srv.Close()

	ctx := context.Background()
	conn, err := transport.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"),
		&transport.DialOptions{Subprotocols: rpc.Subprotocols()})
	if err != nil {
		fmt.Println(err)
		return
	}
	client, _ := rpc.New(conn)
	server := <-accepted

	var out string
	err = client.Call(ctx, "upper", "hello", &out)
	fmt.Println(out, err)
	err = client.Call(ctx, "upper", 42, &out)
	fmt.Println(rpc.CodeOf(err))

	client.Close()
	server.Wait()
	// Output:
	// HELLO <nil>
	// invalid params
}
