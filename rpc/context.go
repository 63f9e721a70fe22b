package rpc

import (
	"context"
	"sync"
	"time"
)

// callCtx is the context a handler runs with. It is part of the inCall
// allocation, so an incoming call costs no context allocations: its Done
// channel is made only if someone asks for it, and a timer only when the
// caller sent a deadline. It is cancelled by the peer (on a cancel message,
// when the call's handler returns, when the connection ends, at a drain
// deadline) through cancel, never by the handler.
//
// Contexts derived from it with the context package attach through its
// AfterFunc method, so they start no goroutine (its Done channel is not the
// base context's, so the context package does not attach them there).
// context.Cause reports the base context's cause when the base was cancelled
// (the connection closed, say), and Err otherwise.
type callCtx struct {
	parent   context.Context // the peer's base context: values only
	req      *Request
	deadline time.Time // zero when none

	mu     sync.Mutex
	done   chan struct{} // made lazily
	err    error
	timer  *time.Timer
	afters []*afterFunc
}

type afterFunc struct {
	f       func()
	stopped bool // guarded by the callCtx's mu
}

var closedDone = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (c *callCtx) Deadline() (time.Time, bool) {
	if c.deadline.IsZero() {
		return c.parent.Deadline()
	}
	if pd, ok := c.parent.Deadline(); ok && pd.Before(c.deadline) {
		return pd, true
	}
	return c.deadline, true
}

func (c *callCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		if c.err != nil {
			c.done = closedDone
		} else {
			c.done = make(chan struct{})
		}
	}
	return c.done
}

func (c *callCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *callCtx) Value(key any) any {
	if _, ok := key.(requestKey); ok {
		return c.req
	}
	return c.parent.Value(key)
}

// AfterFunc runs f once the context is cancelled (at once if it already is).
// The context package uses it to propagate cancellation to derived contexts.
func (c *callCtx) AfterFunc(f func()) (stop func() bool) {
	a := &afterFunc{f: f}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		// The caller may hold a lock f takes (the context package does),
		// so f cannot run here; this only happens in a narrow race.
		go f()
		return func() bool { return false }
	}
	c.afters = append(c.afters, a)
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if a.stopped || c.err != nil {
			return false
		}
		a.stopped = true
		return true
	}
}

// start arms the deadline timer; called before the handler runs.
func (c *callCtx) start(timeout time.Duration) {
	if timeout <= 0 {
		return
	}
	c.deadline = time.Now().Add(timeout)
	c.mu.Lock()
	c.timer = time.AfterFunc(timeout, func() { c.cancel(context.DeadlineExceeded) })
	c.mu.Unlock()
}

// cancel ends the context with err; the first call wins.
func (c *callCtx) cancel(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	if c.done == nil {
		c.done = closedDone
	} else {
		close(c.done)
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	afters := c.afters
	c.afters = nil
	run := afters[:0]
	for _, a := range afters {
		if !a.stopped {
			a.stopped = true
			run = append(run, a)
		}
	}
	c.mu.Unlock()
	for _, a := range run {
		a.f() // the context package's propagation: cancels a derived context
	}
}
