package transport_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/wsrpc/wsrpc/transport"
)

// A client sends a message from a reader, in frames of 64 bytes; the server
// takes messages over 100 bytes in parts, and counts them.
func ExampleConn_SendReader() {
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		c, err := transport.Accept(w, r, &transport.AcceptOptions{ConnOptions: transport.ConnOptions{PartsAbove: 100}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		n := 0
		for m := range c.Recv() {
			n += len(m.Data)
			fmt.Printf("part of %d bytes, partial %v\n", len(m.Data), m.Partial)
			if !m.Partial {
				break
			}
		}
		fmt.Println("message of", n, "bytes")
		c.Close(transport.StatusNormalClosure, "")
	}))
	defer srv.Close()

	ctx := context.Background()
	c, err := transport.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"),
		&transport.DialOptions{ConnOptions: transport.ConnOptions{MaxFrameSize: 64}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseNow()
	if err := c.SendReader(ctx, transport.Binary, strings.NewReader(strings.Repeat("x", 250))); err != nil {
		fmt.Println(err)
	}
	<-done
	// Output:
	// part of 100 bytes, partial true
	// part of 100 bytes, partial true
	// part of 50 bytes, partial false
	// message of 250 bytes
}
