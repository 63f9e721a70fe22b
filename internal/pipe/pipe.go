// Package pipe connects two transport.Conns over loopback for tests: a real
// WebSocket connection through an httptest server, with both ends in hand.
// It is for tests only.
package pipe

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/transport"
)

// Options tune both ends; nil fields mean defaults.
type Options struct {
	Subprotocol string // offered by the client and accepted by the server ("" for none)
	Client      transport.ConnOptions
	Server      transport.ConnOptions
}

// New returns the two ends of one WebSocket connection. Both are closed at
// the end of the test, and the server is shut down.
func New(tb testing.TB, o Options) (client, server *transport.Conn) {
	tb.Helper()
	accepted := make(chan *transport.Conn, 1)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ao := &transport.AcceptOptions{ConnOptions: o.Server}
		if o.Subprotocol != "" {
			ao.Subprotocols = []string{o.Subprotocol}
		}
		c, err := transport.Accept(w, r, ao)
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}))
	tb.Cleanup(s.Close)
	do := &transport.DialOptions{ConnOptions: o.Client}
	if o.Subprotocol != "" {
		do.Subprotocols = []string{o.Subprotocol}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := transport.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http"), do)
	if err != nil {
		tb.Fatalf("pipe: dial: %v", err)
	}
	server, ok := <-accepted
	if !ok {
		client.CloseNow()
		tb.Fatal("pipe: accept failed")
	}
	tb.Cleanup(func() {
		client.CloseNow()
		server.CloseNow()
	})
	return client, server
}
