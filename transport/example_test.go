package transport_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/wsrpc/wsrpc/transport"
)

// A server that echoes every message, and a client that sends one: a
// connection is a receive channel and a Send.
func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := transport.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for m := range c.Recv() { // closed when the connection ends
			c.Send(r.Context(), m)
		}
	}))
	defer srv.Close()

	ctx := context.Background()
	c, err := transport.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	c.Send(ctx, transport.Message{Type: transport.Text, Data: []byte("hello")})
	m := <-c.Recv()
	fmt.Println(string(m.Data))
	c.Close(transport.StatusNormalClosure, "bye")
	fmt.Println(c.Err())
	// Output:
	// hello
	// wsrpc: connection closed by this side: 1000 normal closure "bye"
}
