package client_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/rpc"
)

// TestDialReportsEveryOptionError: rpc's options are validated by
// rpc.NewConfig, the client's by Dial, and Dial returns every problem of
// both at once, before any attempt to connect.
func TestDialReportsEveryOptionError(t *testing.T) {
	t.Parallel()
	c, err := client.Dial(testContext(t), refusedURL,
		rpc.WithBaseContext(context.Background()), // one connection's: refused by an endpoint
		rpc.WithHeartbeat(time.Second, -time.Second),
		client.WithHTTPClient(&http.Client{}),
		client.WithTLSConfig(&tls.Config{}),
		client.WithQueueSize(-1),
	)
	if err == nil {
		c.Close()
		t.Fatal("Dial: no error")
	}
	for _, want := range []string{
		"rpc.WithBaseContext does not apply",
		"rpc.WithHeartbeat",
		"WithTLSConfig and WithHTTPClient cannot be combined",
		"WithQueueSize(-1)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Dial error %q does not mention %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "refused") {
		t.Errorf("Dial error %q: it tried to connect", err)
	}
}

// TestOptionsApplyInAnyOrder: an invalid rpc option is reported whatever
// its place among the client's, rpc's and the client's options mix in any
// order, and a later WithBackoff replaces an earlier invalid one.
func TestOptionsApplyInAnyOrder(t *testing.T) {
	t.Parallel()
	bad := rpc.WithHeartbeat(0, time.Second)
	for _, opts := range [][]client.Option{
		{bad, client.WithBackoff(time.Millisecond, time.Second)},
		{client.WithBackoff(time.Millisecond, time.Second), bad},
	} {
		c, err := client.Dial(testContext(t), refusedURL, opts...)
		if err == nil {
			c.Close()
			t.Fatal("Dial: no error")
		}
		if !strings.Contains(err.Error(), "rpc.WithHeartbeat") {
			t.Errorf("Dial error %q does not mention rpc.WithHeartbeat", err)
		}
	}
	srv := newTestServer(t, methods{"echo": echo})
	for _, opts := range [][]client.Option{
		{client.WithBackoff(0, 0), client.WithBackoff(time.Millisecond, time.Second)}, // the last one counts
		{rpc.WithHeartbeat(-1, 0), rpc.WithSubprotocols(rpc.SubprotocolJSON)},
		{rpc.WithSubprotocols(rpc.SubprotocolJSON), rpc.WithHeartbeat(-1, 0)},
	} {
		c := dial(t, srv.url(), opts...)
		var got point
		if err := c.Call(testContext(t), "echo", point{1, 1}, &got); err != nil || got != (point{1, 1}) {
			t.Errorf("Call = %+v, %v", got, err)
		}
	}
}

// TestHandlerOnEveryConnection: the handler given with rpc.WithHandler
// serves the server's calls on every connection the client makes, not only
// the first.
func TestHandlerOnEveryConnection(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, methods{})
	hook, statuses := recordStatuses()
	c := dial(t, srv.url(), fastBackoff, hook, rpc.WithHandler(rpc.HandlerFunc(func(_ context.Context, req *rpc.Request) ([]byte, error) {
		return json.Marshal(req.Method + " served")
	})))
	ctx := testContext(t)
	for i := range 2 {
		conn := srv.nextConn(t)
		var got string
		if err := conn.Call(ctx, "ping", nil, &got); err != nil || got != "ping served" {
			t.Errorf("connection %d: server's Call = %q, %v", i, got, err)
		}
		if i == 0 {
			conn.CloseNow()
			waitStatus(t, statuses, client.Reconnecting)
		}
	}
	// The server's call can be served before the client has marked the new
	// connection as connected: wait for the status rather than read it.
	waitStatus(t, statuses, client.Connected)
	if s := c.Status(); s != client.Connected {
		t.Errorf("Status = %v, want connected", s)
	}
}
