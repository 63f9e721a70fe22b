package client_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/rpc"
)

// TestLogAttributes: the client's records about a connection carry its
// conn id and the server's address, as strings.
func TestLogAttributes(t *testing.T) {
	srv := newTestServer(t, methods{"echo": echo})
	var logs lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	connected := make(chan struct{}, 4)
	c := dial(t, srv.url(), rpc.WithLogger(logger), fastBackoff, client.WithStatusHook(func(s client.Status) {
		if s == client.Connected {
			connected <- struct{}{}
		}
	}))
	<-connected
	first := c.Peer()
	srv.nextConn(t).CloseNow() // lost, then connected again
	<-connected
	if err := c.Call(context.Background(), "echo", []int{1}, nil); err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]any{}
	var conns []map[string]any // the "connected" records, in order
	for line := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		got[rec["msg"].(string)] = rec
		if rec["msg"] == "wsrpc: connected" {
			conns = append(conns, rec)
		}
	}
	// The first connection, made by Dial, is logged as a reconnection is.
	if len(conns) != 2 || conns[0]["conn"] != first.ID() || conns[0]["subprotocol"] != first.Subprotocol() {
		t.Errorf("connected records %v, want 2, the first with conn %s", conns, first.ID())
	}
	lost, ok := got["wsrpc: connection lost"]
	if !ok || lost["conn"] != first.ID() || lost["remote"] != first.RemoteAddr().String() {
		t.Errorf("connection lost record %v, want conn %s and remote %s", lost, first.ID(), first.RemoteAddr())
	}
	again, ok := got["wsrpc: connected"]
	if p := c.Peer(); !ok || again["conn"] != p.ID() || again["remote"] != p.RemoteAddr().String() {
		t.Errorf("connected record %v, want conn %s and remote %s", again, p.ID(), p.RemoteAddr())
	}
	if _, ok := lost["err"].(string); !ok {
		t.Errorf("err = %#v, want a string", lost["err"])
	}
}
