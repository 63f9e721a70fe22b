package server_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
	"github.com/wsrpc/wsrpc/transport"
)

// namedUser is a principal that logs as its name only.
type namedUser struct{ name, token string }

func (u namedUser) String() string { return u.name }

// TestLogAttributesJSON: under slog's JSON handler, every record about a
// connection (connected, each call, a panic, disconnected) carries conn,
// remote and principal as strings, a refused handshake carries remote as a
// string, and no key changes its JSON type from one record to another.
func TestLogAttributesJSON(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	mux := handler.NewMux()
	mux.Use(handler.Recover(logger), handler.Logging(logger))
	mux.Handle("echo", handler.Func(func(ctx context.Context, in json.RawMessage) (json.RawMessage, error) { return in, nil }))
	mux.Handle("boom", handler.NoParams(func(ctx context.Context) (any, error) { panic("boom") }))
	ended := make(chan struct{}, 1)
	// The peer serves calls from the handshake on, before the server logs
	// "connected" (and runs WithOnConnect): the test calls once it did, so
	// that the records come in the order it checks.
	connected := make(chan struct{}, 1)
	s, err := server.New(mux, rpc.WithLogger(logger),
		server.WithOnConnect(func(*rpc.Peer) { connected <- struct{}{} }),
		server.WithAuth(func(r *http.Request) (any, error) {
			if r.Header.Get("Authorization") == "" {
				return nil, server.ErrUnauthorized
			}
			return namedUser{name: "alice", token: "secret"}, nil
		}),
		server.WithOnDisconnect(func(*rpc.Peer, error) { ended <- struct{}{} }))
	if err != nil {
		t.Fatal(err)
	}
	url := start(t, s)
	if _, err := tryDial(t, url, nil); err == nil {
		t.Fatal("a handshake without credentials was accepted")
	}
	p := dial(t, url, &transport.DialOptions{Subprotocols: rpc.Subprotocols(), Header: http.Header{"Authorization": {"x"}}})
	<-connected
	if err := p.Call(ctxT(t), "echo", []int{1}, nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Call(ctxT(t), "boom", nil, nil); rpc.CodeOf(err) != rpc.CodeInternalError {
		t.Fatalf("boom: %v", err)
	}
	if err := p.Call(ctxT(t), "nope", nil, nil); rpc.CodeOf(err) != rpc.CodeMethodNotFound {
		t.Fatalf("nope: %v", err)
	}
	p.Close()
	<-ended

	kinds := map[string]string{} // key → JSON type seen first
	var seen []string
	for line := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		msg, _ := rec["msg"].(string)
		seen = append(seen, msg)
		for k, v := range rec {
			kind := jsonKind(v)
			if was, ok := kinds[k]; ok && was != kind {
				t.Errorf("%q is a %s in %q, a %s before", k, kind, msg, was)
			}
			kinds[k] = kind
		}
		if _, ok := rec["remote"].(string); !ok {
			t.Errorf("%q: remote = %#v, want a string", msg, rec["remote"])
		}
		if strings.Contains(line, "secret") {
			t.Errorf("%q logs the principal's token: %s", msg, line)
		}
		if strings.HasPrefix(msg, "wsrpc: handshake refused") {
			continue
		}
		if c, _ := rec["conn"].(string); len(c) != 16 {
			t.Errorf("%q: conn = %#v", msg, rec["conn"])
		}
		if rec["principal"] != "alice" {
			t.Errorf("%q: principal = %#v, want alice", msg, rec["principal"])
		}
	}
	want := []string{"wsrpc: handshake refused", "wsrpc: connected", "rpc call", "rpc handler panicked", "rpc call failed", "wsrpc: disconnected"} // a panic is logged by Recover only
	if strings.Join(seen, "|") != strings.Join(want, "|") {
		t.Errorf("records %q, want %q", seen, want)
	}
}

func jsonKind(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case nil:
		return "null"
	case map[string]any:
		return "object"
	}
	return "array"
}
