package handler

import (
	"context"
	"sync/atomic"
)

// Session is the state of one connection that outlives its calls: for now,
// who is on the other end (the principal). The server puts one in the base
// context of each connection ([rpc.WithBaseContext] with [WithSession]),
// so that every call on the connection finds it with [SessionFrom]; a
// handler that authenticates the caller records the result with
// [Session.SetPrincipal], and [Authorize] reads it.
//
// A Session is safe for concurrent use. The zero Session has no principal.
type Session struct {
	principal atomic.Pointer[any]
}

// SetPrincipal records who is on the other end: a user, a service account,
// whatever type the application uses. nil clears it.
func (s *Session) SetPrincipal(p any) {
	if p == nil {
		s.principal.Store(nil)
		return
	}
	s.principal.Store(&p)
}

// Principal returns the principal, or nil when none is set. It is nil for a
// nil *Session.
func (s *Session) Principal() any {
	if s == nil {
		return nil
	}
	if p := s.principal.Load(); p != nil {
		return *p
	}
	return nil
}

type sessionKey struct{}

// WithSession returns a copy of ctx that carries s.
func WithSession(ctx context.Context, s *Session) context.Context {
	return context.WithValue(ctx, sessionKey{}, s)
}

// SessionFrom returns the session ctx carries, or nil.
func SessionFrom(ctx context.Context) *Session {
	s, _ := ctx.Value(sessionKey{}).(*Session)
	return s
}

// PrincipalFrom returns the principal of the session ctx carries, or nil
// when there is no session or no principal.
func PrincipalFrom(ctx context.Context) any { return SessionFrom(ctx).Principal() }
