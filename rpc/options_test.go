package rpc_test

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/pipe"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// freshConn returns one end of a fresh loopback connection, closed at the end
// of the test (and the other end, which nobody reads).
func freshConn(t *testing.T) *transport.Conn {
	cc, _ := pipe.New(t, pipe.Options{Subprotocol: rpc.SubprotocolBinary})
	return cc
}

// TestOptionScopes: each constructor refuses the options that are not
// about what it makes, naming them.
func TestOptionScopes(t *testing.T) {
	endpointOnly := map[string]rpc.Option{
		"rpc.WithTransport":    rpc.WithTransport(transport.ConnOptions{}),
		"rpc.WithHeartbeat":    rpc.WithHeartbeat(time.Second, time.Second),
		"rpc.WithSubprotocols": rpc.WithSubprotocols(rpc.SubprotocolJSON),
	}
	peerOnly := map[string]rpc.Option{
		"rpc.WithBaseContext": rpc.WithBaseContext(context.Background()),
		"rpc.WithOnClose":     rpc.WithOnClose(func(error) {}),
		"rpc.WithRemoteAddr":  rpc.WithRemoteAddr(&net.TCPAddr{}),
		"rpc.WithPrincipal":   rpc.WithPrincipal("alice"),
	}
	cfg, err := rpc.NewConfig()
	if err != nil {
		t.Fatal(err)
	}
	for name, o := range endpointOnly {
		t.Run(name, func(t *testing.T) {
			if p, err := rpc.New(freshConn(t), o); err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("rpc.New = %v, %v; want an error naming %s", p, err, name)
			}
			if p, err := cfg.New(freshConn(t), o); err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("Config.New = %v, %v; want an error naming %s", p, err, name)
			}
			if _, err := rpc.NewConfig(o); err != nil {
				t.Errorf("NewConfig: %v", err)
			}
		})
	}
	for name, o := range peerOnly {
		t.Run(name, func(t *testing.T) {
			if c, err := rpc.NewConfig(o); err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("NewConfig = %v, %v; want an error naming %s", c, err, name)
			}
			for who, newPeer := range map[string]func() (*rpc.Peer, error){
				"rpc.New":    func() (*rpc.Peer, error) { return rpc.New(freshConn(t), o) },
				"Config.New": func() (*rpc.Peer, error) { return cfg.New(freshConn(t), o) },
			} {
				p, err := newPeer()
				if err != nil {
					t.Errorf("%s: %v", who, err)
					continue
				}
				p.CloseNow()
				p.Wait()
			}
		})
	}
	// The zero Option is no option.
	p, err := rpc.New(freshConn(t), rpc.Option{})
	if err != nil {
		t.Fatal(err)
	}
	p.CloseNow()
	p.Wait()
}

// TestInvalidOptionValues: each is an error from every constructor that
// takes the option.
func TestInvalidOptionValues(t *testing.T) {
	tests := []struct {
		name     string
		give     rpc.Option
		endpoint bool // only NewConfig takes it
	}{
		{"negative MaxInFlight", rpc.WithMaxInFlight(-1), false},
		{"negative MaxBatch", rpc.WithMaxBatch(-1), false},
		{"negative backlog bytes", rpc.WithBacklog(1, -1), false},
		{"negative metadata entries", rpc.WithMaxMetadata(-1, 0), false},
		{"negative metadata bytes", rpc.WithMaxMetadata(0, -1), false},
		{"zero heartbeat interval", rpc.WithHeartbeat(0, time.Second), true},
		{"zero pong timeout", rpc.WithHeartbeat(time.Second, 0), true},
		{"negative pong timeout", rpc.WithHeartbeat(time.Second, -time.Second), true},
		{"unknown subprotocol", rpc.WithSubprotocols(rpc.SubprotocolBinary, "wsrpc.v2"), true},
		{"no subprotocol", rpc.WithSubprotocols(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := rpc.NewConfig(tt.give); err == nil {
				t.Error("NewConfig accepted it")
			}
			if tt.endpoint {
				return
			}
			if p, err := rpc.New(freshConn(t), tt.give); err == nil {
				p.CloseNow()
				t.Error("rpc.New accepted it")
			}
		})
	}
	// Valid edge values.
	for _, o := range []rpc.Option{
		rpc.WithHeartbeat(-1, 0), // off
		rpc.WithBacklog(-1, 0),   // off
		rpc.WithMaxInFlight(0), rpc.WithMaxMetadata(0, 0), rpc.WithSubprotocols("WSRPC.V1"),
	} {
		if _, err := rpc.NewConfig(o); err != nil {
			t.Errorf("NewConfig: %v", err)
		}
	}
}

// TestOptionErrorsAreAllReported: every problem is in the error, joined.
func TestOptionErrorsAreAllReported(t *testing.T) {
	_, err := rpc.NewConfig(
		rpc.WithMaxInFlight(-1),
		rpc.WithPrincipal("alice"),
		rpc.WithHandler(rpc.HandlerFunc(func(context.Context, *rpc.Request) ([]byte, error) { return nil, nil })),
		rpc.WithSubprotocols("bogus"),
	)
	if err == nil {
		t.Fatal("no error")
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok || len(joined.Unwrap()) != 3 {
		t.Fatalf("error %q (%T) does not join the three problems", err, err)
	}
	for _, want := range []string{"rpc.WithMaxInFlight", "rpc.WithPrincipal", "rpc.WithSubprotocols", `"bogus"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

// TestOptionOrderDoesNotMatter: WithHeartbeat applies over WithTransport's
// heartbeat fields whichever comes first.
func TestOptionOrderDoesNotMatter(t *testing.T) {
	tr := transport.ConnOptions{ReadLimit: 1 << 10, WriteTimeout: 3 * time.Second, HeartbeatInterval: time.Hour, PongTimeout: time.Hour, SendQueue: 7}
	hb := rpc.WithHeartbeat(2*time.Second, 5*time.Second)
	first, err := rpc.NewConfig(hb, rpc.WithTransport(tr))
	if err != nil {
		t.Fatal(err)
	}
	last, err := rpc.NewConfig(rpc.WithTransport(tr), hb)
	if err != nil {
		t.Fatal(err)
	}
	want := tr
	want.HeartbeatInterval, want.PongTimeout = 2*time.Second, 5*time.Second
	if first.ConnOptions() != want || last.ConnOptions() != want {
		t.Errorf("ConnOptions\n%+v (heartbeat first)\n%+v (heartbeat last)\nwant\n%+v", first.ConnOptions(), last.ConnOptions(), want)
	}
	off, err := rpc.NewConfig(rpc.WithHeartbeat(-1, 0), rpc.WithTransport(tr))
	if err != nil {
		t.Fatal(err)
	}
	if got := off.ConnOptions(); got.HeartbeatInterval >= 0 || got.ReadLimit != tr.ReadLimit {
		t.Errorf("heartbeat off: ConnOptions %+v", got)
	}
	if got := (mustConfig(t)).ConnOptions(); got != (transport.ConnOptions{}) {
		t.Errorf("no options: ConnOptions %+v, want the zero value (the transport's defaults)", got)
	}
}

func mustConfig(t *testing.T, opts ...rpc.Option) *rpc.Config {
	t.Helper()
	c, err := rpc.NewConfig(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestConfigAccessors: what NewConfig's options set, and the defaults.
func TestConfigAccessors(t *testing.T) {
	def := mustConfig(t)
	if got := def.Subprotocols(); !slices.Equal(got, []string{rpc.SubprotocolBinary, rpc.SubprotocolJSON}) {
		t.Errorf("default Subprotocols %v", got)
	}
	if def.Logger() != nil || def.Handler() != nil {
		t.Errorf("default Logger %v, Handler %v", def.Logger(), def.Handler())
	}
	logger := slog.New(slog.DiscardHandler)
	h := rpc.HandlerFunc(func(context.Context, *rpc.Request) ([]byte, error) { return nil, nil })
	c := mustConfig(t, rpc.WithSubprotocols("JSONRPC2.0", "wsrpc.v1"), rpc.WithLogger(logger), rpc.WithHandler(h))
	got := c.Subprotocols()
	if !slices.Equal(got, []string{rpc.SubprotocolJSON, rpc.SubprotocolBinary}) {
		t.Errorf("Subprotocols %v, want them canonical, in the order given", got)
	}
	got[0] = "changed"
	if c.Subprotocols()[0] != rpc.SubprotocolJSON {
		t.Error("Subprotocols returned the Config's own slice")
	}
	if c.Logger() != logger || c.Handler() == nil {
		t.Errorf("Logger %v, Handler %v", c.Logger(), c.Handler())
	}
}

// TestConfigNewLeavesTheConfig: the options given to Config.New apply to
// that peer only.
func TestConfigNewLeavesTheConfig(t *testing.T) {
	log := make(traceLog, 64)
	cfg := mustConfig(t, rpc.WithOutgoingMiddleware(log.mw("a")), rpc.WithOutgoingMiddleware(log.mw("b"), log.mw("c")), rpc.WithMaxInFlight(3))
	before := cfg.ConnOptions()
	h := rpc.HandlerFunc(func(context.Context, *rpc.Request) ([]byte, error) { return []byte(`"own"`), nil })

	// Each peer calls a server that echoes.
	newPeer := func(opts ...rpc.Option) *rpc.Peer {
		t.Helper()
		cc, sc := pipe.New(t, pipe.Options{Subprotocol: rpc.SubprotocolBinary})
		s, err := rpc.New(sc, rpc.WithHandler(services(t)))
		if err != nil {
			t.Fatal(err)
		}
		p, err := cfg.New(cc, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			p.CloseNow()
			s.CloseNow()
			p.Wait()
			s.Wait()
		})
		return p
	}
	p1 := newPeer(rpc.WithOutgoingMiddleware(log.mw("x")), rpc.WithHandler(h), rpc.WithPrincipal("one"))
	p2 := newPeer(rpc.WithOutgoingMiddleware(log.mw("y")))
	p3 := newPeer()
	for _, tt := range []struct {
		p    *rpc.Peer
		want []string
	}{
		{p1, []string{"a", "b", "c", "x", "/x", "/c", "/b", "/a"}},
		{p2, []string{"a", "b", "c", "y", "/y", "/c", "/b", "/a"}},
		{p3, []string{"a", "b", "c", "/c", "/b", "/a"}},
	} {
		if err := tt.p.Call(ctxT(t), "echo", []int{1}, nil); err != nil {
			t.Fatal(err)
		}
		if got := log.take(t, len(tt.want)); !slices.Equal(got, tt.want) {
			t.Errorf("chain %v, want %v", got, tt.want)
		}
	}
	if cfg.Handler() != nil || cfg.ConnOptions() != before {
		t.Errorf("the Config changed: Handler %v, ConnOptions %+v", cfg.Handler(), cfg.ConnOptions())
	}
	if p2.Session().Principal() != nil || p1.Session().Principal() != "one" {
		t.Errorf("principals %v and %v", p1.Session().Principal(), p2.Session().Principal())
	}
}
