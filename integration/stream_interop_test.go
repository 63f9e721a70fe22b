package integration

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
)

// TestStreamPythonWebsocketsClient: a plain JSON-RPC client written with
// Python's websockets package (testdata/stream.py), following
// docs/PROTOCOL.md section 14 only, reads a stream under credit, cancels
// one mid-stream (it stops within a few results, 10 ms apart, where it
// would otherwise send 50 in the half second the client listens), and makes
// a plain call of the same method.
func TestStreamPythonWebsocketsClient(t *testing.T) {
	const python = "/usr/bin/python3" // Debian's, where python3-websockets installs
	needTool(t, exec.Command(python, "-c", "import websockets").Run(), "apt-get install -y python3-websockets")

	mux := handler.NewMux()
	mux.Handle("countdown", handler.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		var p struct {
			From       int `json:"from"`
			IntervalMs int `json:"interval_ms"`
		}
		if err := json.Unmarshal(req.Params, &p); err != nil {
			return nil, rpc.Errorf(rpc.CodeInvalidParams, "%v", err)
		}
		w := req.Stream()
		if w == nil {
			return json.Marshal(p.From)
		}
		for i := p.From; i > 0; i-- {
			if err := w.Send(ctx, i); err != nil {
				return nil, err
			}
			if p.IntervalMs > 0 {
				select {
				case <-time.After(time.Duration(p.IntervalMs) * time.Millisecond):
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
		}
		return []byte(`"liftoff"`), nil
	}))
	srv, err := server.New(mux)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "testdata/stream.py", "ws"+strings.TrimPrefix(hs.URL, "http")).CombinedOutput()
	if err != nil {
		t.Fatalf("stream.py: %v\n%s", err, out)
	}
	var r struct {
		Items          []int  `json:"items"`
		OverCredit     int    `json:"over_credit"`
		Final          string `json:"final"`
		CancelledAfter int    `json:"cancelled_after"`
		LateItems      int    `json:"late_items"`
		CancelReplied  bool   `json:"cancel_replied"`
		Plain          int    `json:"plain"`
		PlainWasItem   bool   `json:"plain_was_item"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("stream.py printed %s: %v", out, err)
	}
	if len(r.Items) != 20 || r.Items[0] != 20 || r.Items[19] != 1 || r.OverCredit != 0 || r.Final != "liftoff" {
		t.Fatalf("stream: %+v", r)
	}
	if r.CancelledAfter != 3 || r.LateItems > 5 || r.CancelReplied {
		t.Fatalf("cancel: %+v", r)
	}
	if r.Plain != 3 || r.PlainWasItem {
		t.Fatalf("plain call: %+v", r)
	}
}
