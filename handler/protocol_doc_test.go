package handler_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/internal/pipe"
	"github.com/wsrpc/wsrpc/openrpc"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// TailParams is a type of the larger example in docs/PROTOCOL.md section
// 16.5 (with Entry, of discover_test.go).
type TailParams struct {
	Max int `json:"max,omitempty"`
}

// calcMux is the service of the sessions of section 16.5.
func calcMux() *handler.Mux {
	mux := handler.NewMux()
	handler.Register(mux, rpc.NewMethod[[]float64, float64]("add"), func(_ context.Context, xs []float64) (float64, error) { return 0, nil })
	mux.Handle("echo", echo)
	mux.EnableDiscovery(openrpc.Info{Title: "calc", Version: "1.0.0"})
	return mux
}

// protocolDocMux is the service of the larger example of section 16.5.
func protocolDocMux() *handler.Mux {
	mux := handler.NewMux()
	handler.Register(mux, rpc.NewMethod[[]float64, float64]("add"), func(_ context.Context, xs []float64) (float64, error) { return 0, nil })
	handler.RegisterNotification(mux, rpc.NewNotification[Entry]("log"), func(context.Context, Entry) error { return nil })
	handler.RegisterStream(mux, rpc.NewStreamMethod[TailParams, Entry]("tail"), func(context.Context, TailParams, func(Entry) error) error { return nil })
	mux.Handle("time", handler.NoParams(func(context.Context) (time.Time, error) { return time.Now(), nil }))
	mux.Handle("legacy.*", echo)
	mux.EnableDiscovery(openrpc.Info{Title: "logs", Version: "2.1.0"})
	return mux
}

// TestProtocolDocDiscovery replays the sessions of docs/PROTOCOL.md section
// 16.5 against a real connection served by the Mux they describe, byte for
// byte, and compares the larger document with what its Mux answers.
func TestProtocolDocDiscovery(t *testing.T) {
	doc, err := os.ReadFile("../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(doc), "### 16.5 Sessions")
	if !ok {
		t.Fatal("no section 16.5")
	}
	sec, _, _ = strings.Cut(sec, "\n### ")
	blocks := strings.Split(sec, "```")
	if len(blocks) < 6 {
		t.Fatalf("section 16.5 has %d blocks, want 3", len(blocks)/2)
	}
	var sent, received string
	for _, l := range strings.Split(strings.TrimSpace(blocks[1]), "\n") {
		switch {
		case strings.HasPrefix(l, "→ "):
			sent = strings.TrimPrefix(l, "→ ")
		case strings.HasPrefix(l, "← "):
			received = strings.TrimPrefix(l, "← ")
		}
	}
	var reply struct{ Result json.RawMessage }
	if err := json.Unmarshal([]byte(received), &reply); err != nil || len(reply.Result) == 0 {
		t.Fatalf("the JSON-RPC reply %s: %v", received, err)
	}
	if got := exchange(t, rpc.SubprotocolJSON, transport.Text, []byte(sent)); string(got) != received {
		t.Errorf("JSON-RPC: the document shows\n%s\nthe server sends\n%s", received, got)
	}

	hexLines := strings.Split(strings.TrimSpace(blocks[3]), "\n")
	if len(hexLines) != 2 {
		t.Fatalf("%d hex lines, want 2", len(hexLines))
	}
	request, prefix := hexTokens(t, hexLines[0]), hexTokens(t, hexLines[1])
	want := append(prefix, reply.Result...)
	if got := exchange(t, rpc.SubprotocolBinary, transport.Binary, request); !bytes.Equal(got, want) {
		t.Errorf("wsrpc.v1: the document shows\n%x\nthe server sends\n%x", want, got)
	}

	larger := strings.TrimPrefix(blocks[5], "json")
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(larger)); err != nil {
		t.Fatalf("the larger document: %v", err)
	}
	got, err := protocolDocMux().ServeRPC(context.Background(), newReq(openrpc.MethodDiscover, ""))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, compact.Bytes()) {
		t.Errorf("the larger document differs; the Mux answers\n%s", got)
	}
}

// hexTokens decodes the leading hex tokens of a dump line (the description
// follows them).
func hexTokens(t *testing.T, line string) []byte {
	t.Helper()
	var b []byte
	for _, tok := range strings.Fields(line) {
		h, err := hex.DecodeString(tok)
		if err != nil {
			break
		}
		b = append(b, h...)
	}
	return b
}

// exchange sends msg over a real connection with subprotocol sp to a peer
// served by calcMux, and returns the one message it answers with.
func exchange(t *testing.T, sp string, typ transport.MessageType, msg []byte) []byte {
	t.Helper()
	ctx := testCtx(t)
	cc, sc := pipe.New(t, pipe.Options{Subprotocol: sp})
	s, err := rpc.New(sc, rpc.WithHandler(calcMux()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.CloseNow()
		s.Wait()
	})
	if err := cc.Send(ctx, transport.Message{Type: typ, Data: msg}); err != nil {
		t.Fatal(err)
	}
	select {
	case m, ok := <-cc.Recv():
		if !ok {
			t.Fatalf("the connection closed: %v", cc.Err())
		}
		return bytes.Clone(m.Data)
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	return nil
}
