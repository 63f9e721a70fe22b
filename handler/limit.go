package handler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wsrpc/wsrpc/rpc"
)

// Limit lets at most n calls run at once through the handlers it wraps; the
// limit is shared by every handler that one Limit value wraps, and across
// connections when the wrapped handler serves several.
//
// When all n slots are taken, a call is refused with an *[rpc.Error] with
// [rpc.CodeBusy] (it was not started, and may be retried later): at once
// when wait is 0, or when no slot has freed up after waiting up to wait. If
// the call's context ends while it waits, the error wraps the context's
// error instead (so the caller gets [rpc.CodeCanceled] or
// [rpc.CodeDeadlineExceeded]). The slots are a buffered channel: waiting
// uses a timer and starts no goroutine.
//
// Limit panics if n < 1.
func Limit(n int, wait time.Duration) Middleware {
	if n < 1 {
		panic("handler: Limit needs n >= 1")
	}
	sem := make(chan struct{}, n)
	busy := rpc.Errorf(rpc.CodeBusy, "too many calls at once (limit %d); the call was not started", n)
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
			if err := acquire(ctx, sem, wait); err != nil {
				if err == errFull {
					e := *busy // a copy per refusal: no caller shares another's error
					return nil, &e
				}
				return nil, err
			}
			defer func() { <-sem }()
			return next.ServeRPC(ctx, req)
		})
	}
}

// LimitPerMethod is [Limit] with a separate limit of n for each method name.
//
// The slots of a method with no call in flight are kept for its next call,
// for up to 1024 methods; beyond that, a method's slots are dropped when its
// last call ends (and made again by the next one), so that callers sending
// many distinct names cannot make the state grow without bound.
//
// LimitPerMethod panics if n < 1.
func LimitPerMethod(n int, wait time.Duration) Middleware {
	if n < 1 {
		panic("handler: LimitPerMethod needs n >= 1")
	}
	l := &methodLimits{n: n, slots: make(map[string]*methodSlot)}
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
			s := l.get(req.Method)
			defer l.put(req.Method, s)
			if err := acquire(ctx, s.sem, wait); err != nil {
				if err == errFull {
					return nil, rpc.Errorf(rpc.CodeBusy, "too many calls to %q at once (limit %d); the call was not started", req.Method, n)
				}
				return nil, err
			}
			defer func() { <-s.sem }()
			return next.ServeRPC(ctx, req)
		})
	}
}

// maxIdleMethods bounds the methods whose idle state [LimitPerMethod] keeps.
const maxIdleMethods = 1024

type methodLimits struct {
	n     int
	mu    sync.Mutex
	slots map[string]*methodSlot
}

type methodSlot struct {
	sem   chan struct{}
	users int // calls holding or waiting for a slot; guarded by methodLimits.mu
}

// get returns the slots of method, counting the caller as a user until put.
func (l *methodLimits) get(method string) *methodSlot {
	l.mu.Lock()
	s := l.slots[method]
	if s == nil {
		s = &methodSlot{sem: make(chan struct{}, l.n)}
		l.slots[method] = s
	}
	s.users++
	l.mu.Unlock()
	return s
}

func (l *methodLimits) put(method string, s *methodSlot) {
	l.mu.Lock()
	s.users--
	if s.users == 0 && len(l.slots) > maxIdleMethods {
		delete(l.slots, method)
	}
	l.mu.Unlock()
}

var errFull = errors.New("full")

// acquire takes a slot of sem, waiting up to wait for one. It returns
// errFull when none came, or an error wrapping ctx's when ctx ended first.
func acquire(ctx context.Context, sem chan struct{}, wait time.Duration) error {
	select {
	case sem <- struct{}{}:
		return nil
	default:
	}
	if wait <= 0 {
		return errFull
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case sem <- struct{}{}:
		return nil
	case <-t.C:
		return errFull
	case <-ctx.Done():
		return fmt.Errorf("waiting for a slot: %w", ctx.Err())
	}
}
