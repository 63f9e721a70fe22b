package rpc_test

import (
	"context"
	"encoding/json"
	"net"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/pipe"
	"github.com/wsrpc/wsrpc/rpc"
)

var hexID = regexp.MustCompile(`^[0-9a-f]{16}$`)

func TestPeerID(t *testing.T) {
	seen := map[string]bool{}
	for range 8 {
		c, s := peers(t, rpc.SubprotocolBinary, nil, nil)
		for _, p := range []*rpc.Peer{c, s} {
			id := p.ID()
			if !hexID.MatchString(id) {
				t.Errorf("ID %q is not 16 hex digits", id)
			}
			if seen[id] {
				t.Errorf("ID %q given twice", id)
			}
			seen[id] = true
			if p.ID() != id {
				t.Errorf("ID changed: %q, then %q", id, p.ID())
			}
		}
	}
}

// TestPeerConnection: the remote address (the socket's, or the one given),
// the handshake headers, the subprotocol and the start time, as the peer
// and a handler see them.
func TestPeerConnection(t *testing.T) {
	for _, cd := range codecs {
		t.Run(cd.name, func(t *testing.T) {
			type view struct {
				Remote, Subprotocol, Key string
			}
			h := rpc.HandlerFunc(func(_ context.Context, req *rpc.Request) ([]byte, error) {
				p := req.Peer()
				return json.Marshal(view{p.RemoteAddr().String(), p.Subprotocol(), p.Header().Get("Sec-WebSocket-Key")})
			})
			before := time.Now()
			cc, sc := pipe.New(t, pipe.Options{Subprotocol: cd.subprotocol})
			s, err := rpc.New(sc, rpc.WithHandler(h))
			if err != nil {
				t.Fatal(err)
			}
			c, err := rpc.New(cc)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				c.CloseNow()
				s.CloseNow()
			})
			after := time.Now()

			if s.RemoteAddr() != sc.RemoteAddr() || c.RemoteAddr() != cc.RemoteAddr() || s.RemoteAddr() == nil {
				t.Errorf("RemoteAddr %v and %v, want the sockets' %v and %v", s.RemoteAddr(), c.RemoteAddr(), sc.RemoteAddr(), cc.RemoteAddr())
			}
			if s.Subprotocol() != cd.subprotocol || c.Subprotocol() != cd.subprotocol {
				t.Errorf("Subprotocol %q and %q, want %q", s.Subprotocol(), c.Subprotocol(), cd.subprotocol)
			}
			// The server has the handshake request's headers, the client the response's.
			if s.Header().Get("Sec-WebSocket-Key") == "" || c.Header().Get("Sec-WebSocket-Accept") == "" {
				t.Errorf("Header: server %v, client %v", s.Header(), c.Header())
			}
			for _, p := range []*rpc.Peer{c, s} {
				if at := p.ConnectedAt(); at.Before(before) || at.After(after) {
					t.Errorf("ConnectedAt %v, not within [%v, %v]", at, before, after)
				}
			}
			var got view
			if err := c.Call(ctxT(t), "m", nil, &got); err != nil {
				t.Fatal(err)
			}
			if want := (view{sc.RemoteAddr().String(), cd.subprotocol, s.Header().Get("Sec-WebSocket-Key")}); got != want {
				t.Errorf("the handler saw %+v, want %+v", got, want)
			}
		})
	}
}

func TestWithRemoteAddr(t *testing.T) {
	forwarded := &net.TCPAddr{IP: net.IPv4(203, 0, 113, 7), Port: 4711}
	seen := make(chan net.Addr, 2)
	h := rpc.HandlerFunc(func(_ context.Context, req *rpc.Request) ([]byte, error) {
		seen <- req.Peer().RemoteAddr()
		return nil, nil
	})
	c, s := peers(t, rpc.SubprotocolBinary, []rpc.Option{rpc.WithHandler(h), rpc.WithRemoteAddr(forwarded)}, nil)
	if s.RemoteAddr() != forwarded {
		t.Errorf("RemoteAddr %v, want %v", s.RemoteAddr(), forwarded)
	}
	if s.Conn().RemoteAddr() == forwarded {
		t.Error("the socket's address was replaced")
	}
	if err := c.Call(ctxT(t), "m", nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := <-seen; got != forwarded {
		t.Errorf("the handler saw %v", got)
	}

	cfg := mustConfig(t, rpc.WithHandler(h))
	cc, sc := pipe.New(t, pipe.Options{Subprotocol: rpc.SubprotocolBinary})
	s2, err := cfg.New(sc, rpc.WithRemoteAddr(forwarded))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.CloseNow()
	defer cc.CloseNow()
	if s2.RemoteAddr() != forwarded {
		t.Errorf("Config.New: RemoteAddr %v", s2.RemoteAddr())
	}
}

// TestWithPrincipal: the principal given is the session's from the first
// call on.
func TestWithPrincipal(t *testing.T) {
	type user struct{ Name string }
	h := rpc.HandlerFunc(func(_ context.Context, req *rpc.Request) ([]byte, error) {
		return json.Marshal(req.Peer().Session().Principal())
	})
	for _, tt := range []struct {
		name string
		give any
		want string
	}{
		{"a value", user{"alice"}, `{"Name":"alice"}`},
		{"a pointer", &user{"bob"}, `{"Name":"bob"}`},
		{"none", nil, `null`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, s := peers(t, rpc.SubprotocolBinary, []rpc.Option{rpc.WithHandler(h), rpc.WithPrincipal(tt.give)}, nil)
			var got json.RawMessage
			if err := c.Call(ctxT(t), "first", nil, &got); err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("the first call saw %s, want %s", got, tt.want)
			}
			if s.Session().Principal() != tt.give {
				t.Errorf("Session().Principal() = %v", s.Session().Principal())
			}
			if c.Session().Principal() != nil {
				t.Errorf("the other end's session has %v", c.Session().Principal())
			}
		})
	}
}

func TestSessionPrincipal(t *testing.T) {
	c, _ := peers(t, rpc.SubprotocolBinary, nil, nil)
	s := c.Session()
	if s == nil || c.Session() != s {
		t.Fatalf("Session() = %p, then %p: want one session per peer", s, c.Session())
	}
	if p := s.Principal(); p != nil {
		t.Errorf("Principal before SetPrincipal = %v", p)
	}
	type user struct{ name string }
	tests := []struct {
		give any
		want any
	}{
		{"alice", "alice"},
		{user{"bob"}, user{"bob"}}, // the type may change
		{0, 0},
		{nil, nil}, // clears
	}
	for _, tt := range tests {
		s.SetPrincipal(tt.give)
		if got := s.Principal(); got != tt.want {
			t.Errorf("after SetPrincipal(%v): Principal = %v, want %v", tt.give, got, tt.want)
		}
	}
}

// TestSessionValues: values kept on the connection, across calls.
func TestSessionValues(t *testing.T) {
	type cartKey struct{}
	type otherKey struct{}
	h := rpc.HandlerFunc(func(_ context.Context, req *rpc.Request) ([]byte, error) {
		s := req.Peer().Session()
		switch req.Method {
		case "add":
			n, _ := s.Value(cartKey{}).(int)
			s.SetValue(cartKey{}, n+1)
		case "clear":
			s.SetValue(cartKey{}, nil)
		}
		return json.Marshal(s.Value(cartKey{}))
	})
	c, s := peers(t, rpc.SubprotocolBinary, []rpc.Option{rpc.WithHandler(h)}, nil)
	for _, tt := range []struct{ give, want string }{
		{"get", "null"}, {"add", "1"}, {"add", "2"}, {"get", "2"}, {"clear", "null"}, {"add", "1"},
	} {
		var got json.RawMessage
		if err := c.Call(ctxT(t), tt.give, nil, &got); err != nil {
			t.Fatal(err)
		}
		if string(got) != tt.want {
			t.Errorf("%s: %s, want %s", tt.give, got, tt.want)
		}
	}
	if v := s.Session().Value(cartKey{}); v != 1 {
		t.Errorf("Value = %v", v)
	}
	if v := s.Session().Value(otherKey{}); v != nil {
		t.Errorf("Value under another key = %v", v)
	}
}

// TestSessionConcurrent is for -race.
func TestSessionConcurrent(t *testing.T) {
	c, _ := peers(t, rpc.SubprotocolBinary, nil, nil)
	s := c.Session()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 100 {
				if i%2 == 0 {
					s.SetPrincipal(j)
					s.SetValue(i, j)
				} else {
					_ = s.Principal()
					_ = s.Value(i - 1)
				}
			}
		})
	}
	wg.Wait()
}

// TestNilPeerAndSession: a Request built by hand has no Peer, and every
// accessor of a nil *Peer and a nil *Session reads as empty.
func TestNilPeerAndSession(t *testing.T) {
	var p *rpc.Peer
	if (&rpc.Request{}).Peer() != nil {
		t.Error("a hand-built Request has a Peer")
	}
	if p.ID() != "" || p.RemoteAddr() != nil || p.Subprotocol() != "" || p.Header() != nil || !p.ConnectedAt().IsZero() || p.Session() != nil {
		t.Errorf("nil *Peer: ID %q, RemoteAddr %v, Subprotocol %q, Header %v, ConnectedAt %v, Session %v",
			p.ID(), p.RemoteAddr(), p.Subprotocol(), p.Header(), p.ConnectedAt(), p.Session())
	}
	var s *rpc.Session
	s.SetPrincipal("alice")
	s.SetValue("k", "v")
	if s.Principal() != nil || s.Value("k") != nil {
		t.Errorf("nil *Session: Principal %v, Value %v", s.Principal(), s.Value("k"))
	}
	if p.Session().Principal() != nil {
		t.Error("nil *Peer: a principal")
	}
}
