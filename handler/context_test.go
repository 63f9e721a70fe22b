package handler_test

import (
	"context"
	"sync"
	"testing"

	"github.com/wsrpc/wsrpc/handler"
)

// The accessors inside a real call are tested end to end (TestEndToEnd);
// here, outside one.
func TestAccessorsOutsideACall(t *testing.T) {
	ctx := context.Background()
	if r := handler.RequestFrom(ctx); r != nil {
		t.Errorf("RequestFrom = %v", r)
	}
	if p := handler.PeerFrom(ctx); p != nil {
		t.Errorf("PeerFrom = %v", p)
	}
	if m := handler.MethodFrom(ctx); m != "" {
		t.Errorf("MethodFrom = %q", m)
	}
	if id := handler.IDFrom(ctx); id != "" {
		t.Errorf("IDFrom = %q", id)
	}
	if ci := handler.ConnInfoFrom(ctx); ci.RemoteAddr != nil || ci.Header != nil || ci.Subprotocol != "" {
		t.Errorf("ConnInfoFrom = %+v", ci)
	}
}

func TestSession(t *testing.T) {
	ctx := context.Background()
	if s := handler.SessionFrom(ctx); s != nil {
		t.Errorf("SessionFrom with none = %v", s)
	}
	if p := handler.PrincipalFrom(ctx); p != nil {
		t.Errorf("PrincipalFrom with no session = %v", p)
	}
	var nilSession *handler.Session
	if p := nilSession.Principal(); p != nil {
		t.Errorf("nil Session: Principal = %v", p)
	}

	s := new(handler.Session)
	ctx = handler.WithSession(ctx, s)
	if got := handler.SessionFrom(ctx); got != s {
		t.Fatalf("SessionFrom = %p, want %p", got, s)
	}
	if p := handler.PrincipalFrom(ctx); p != nil {
		t.Errorf("PrincipalFrom before SetPrincipal = %v", p)
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
		if got := handler.PrincipalFrom(ctx); got != tt.want {
			t.Errorf("after SetPrincipal(%v): PrincipalFrom = %v, want %v", tt.give, got, tt.want)
		}
	}
}

// TestSessionConcurrent is for -race.
func TestSessionConcurrent(t *testing.T) {
	s := new(handler.Session)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 100 {
				if i%2 == 0 {
					s.SetPrincipal(j)
				} else {
					_ = s.Principal()
				}
			}
		})
	}
	wg.Wait()
}
