package rpc_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/wsrpc/wsrpc/internal/pipe"
	"github.com/wsrpc/wsrpc/rpc"
)

type stringer struct{ name, token string }

func (s stringer) String() string { return s.name }

type secret struct{ token string }

type valuer struct{}

func (valuer) LogValue() slog.Value { return slog.GroupValue(slog.String("id", "u1")) }

// TestAppendLogAttrs: conn, remote and principal, the principal as a
// string by its kind, never by its fields.
func TestAppendLogAttrs(t *testing.T) {
	tests := []struct {
		name string
		give any
		want string // "": no principal attribute
	}{
		{"none", nil, ""},
		{"string", "alice", "alice"},
		{"stringer", stringer{"bob", "t0ken"}, "bob"},
		{"struct", secret{"t0ken"}, "(rpc_test.secret)"},
		{"pointer", &secret{"t0ken"}, "(*rpc_test.secret)"},
		{"long", strings.Repeat("é", 200), strings.Repeat("é", 128) + "…(400 bytes)"},
		{"log valuer", valuer{}, "[id=u1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, sc := pipe.New(t, pipe.Options{})
			p, err := rpc.New(sc, rpc.WithPrincipal(tt.give))
			if err != nil {
				t.Fatal(err)
			}
			defer p.CloseNow()
			attrs := p.AppendLogAttrs(nil)
			if attrs[0].Key != rpc.LogKeyConn || attrs[0].Value.String() != p.ID() ||
				attrs[1].Key != rpc.LogKeyRemote || attrs[1].Value.String() != p.RemoteAddr().String() {
				t.Fatalf("attrs %v", attrs)
			}
			if tt.want == "" {
				if len(attrs) != 2 {
					t.Errorf("attrs %v, want no principal", attrs)
				}
				return
			}
			if len(attrs) != 3 || attrs[2].Key != rpc.LogKeyPrincipal || attrs[2].Value.Resolve().String() != tt.want {
				t.Errorf("attrs %v, want principal %q", attrs, tt.want)
			}
			if strings.Contains(attrs[2].Value.Resolve().String(), "t0ken") {
				t.Error("the principal's token is logged")
			}
		})
	}
	var nilPeer *rpc.Peer
	if got := nilPeer.AppendLogAttrs(nil); len(got) != 0 {
		t.Errorf("nil peer: %v", got)
	}
}
