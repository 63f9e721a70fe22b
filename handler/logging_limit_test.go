package handler_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/internal/logtext"
	"github.com/wsrpc/wsrpc/internal/pipe"
	"github.com/wsrpc/wsrpc/rpc"
)

// TestLoggingBoundsPeerInput: huge method names are cut in the log, and one
// connection's failed calls are logged at most Burst times in a row, so the
// log grows far slower than the input.
func TestLoggingBoundsPeerInput(t *testing.T) {
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	cc, sc := pipe.New(t, pipe.Options{Subprotocol: rpc.SubprotocolBinary})
	srv, err := rpc.New(sc, rpc.WithHandler(handler.Logging(logger)(handler.NewMux())))
	if err != nil {
		t.Fatal(err)
	}
	c, err := rpc.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow(); srv.CloseNow() })
	method := strings.Repeat("m", 512<<10)
	const calls = 40
	sent := 0
	start := time.Now()
	for range calls {
		if err := c.Call(context.Background(), method, nil, nil); rpc.CodeOf(err) != rpc.CodeMethodNotFound {
			t.Fatalf("call: %v, want method not found", err)
		}
		sent += len(method)
	}
	// The limiter allows a burst, then one record a second: on a slow
	// machine the calls may take more than a second.
	elapsed := time.Since(start)
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if limit := logtext.Burst + 1 + int(elapsed/time.Second); len(lines) > limit {
		t.Errorf("%d log lines for %d failed calls in %v, want at most the burst of %d and one a second", len(lines), calls, elapsed, logtext.Burst)
	}
	for _, l := range lines {
		if len(l) > 1200 {
			t.Fatalf("log line of %d bytes: %.200q…", len(l), l)
		}
	}
	if ratio := float64(len(logs.String())) / float64(sent); ratio > 0.001 {
		t.Errorf("log bytes / input bytes = %.4f, want the log not to repeat the input", ratio)
	}
}
