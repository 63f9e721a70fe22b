package rpc

import (
	"context"
	"fmt"
	"time"

	"github.com/wsrpc/wsrpc/transport"
)

// Notice is the shutdown notice [Peer.Drain] sends to the other side.
type Notice struct {
	// RetryAfter suggests how long the other side should wait before it
	// reconnects (0: at once, to another instance).
	RetryAfter time.Duration
	// Reason is a short human-readable text. [Peer.Shutdown] also gives it
	// as the close frame's reason.
	Reason string
	// Code is the close code [Peer.Shutdown] closes with (0:
	// [transport.StatusGoingAway]); a server restarting says
	// [transport.StatusServiceRestart].
	Code transport.StatusCode
}

// Shutdown ends the connection gracefully, the one way both the server and
// the client do it: [Peer.Drain] with n (no new calls, the notice, every
// call in flight finished), then the closing handshake with n's Code and
// Reason, then [Peer.Wait]. If ctx ends first, whatever is left is cut
// short (handlers cancelled, the connection dropped without waiting for the
// other side's close frame) and the *[DrainError] of the drain, if any, is
// returned. It must not be called from a handler of this peer, which it
// would wait for.
func (p *Peer) Shutdown(ctx context.Context, n Notice) error {
	err := p.Drain(ctx, n)
	if ctx.Err() != nil {
		p.CloseNow()
		p.Wait()
		return err
	}
	code := n.Code
	if code == 0 {
		code = transport.StatusGoingAway
	}
	closed := make(chan struct{})
	go func() { // owned: waited for below
		defer close(closed)
		p.CloseWith(code, n.Reason)
	}()
	select {
	case <-closed:
	case <-ctx.Done():
		p.CloseNow() // cuts the closing handshake short
		<-closed
	}
	p.Wait()
	return err
}

// DrainError is returned by [Peer.Drain] when ctx ended before every call
// finished; it counts what was cut short.
type DrainError struct {
	Incoming int   // handlers still running when ctx ended (their contexts were cancelled)
	Outgoing int   // calls to the other side still waiting for a reply
	Err      error // ctx's error
}

func (e *DrainError) Error() string {
	return fmt.Sprintf("wsrpc: drain cut short (%d incoming, %d outgoing calls unfinished): %v", e.Incoming, e.Outgoing, e.Err)
}

func (e *DrainError) Unwrap() error { return e.Err }

// Drain prepares the connection for a graceful close. It refuses new
// incoming calls from now on (they are answered with [CodeUnavailable], so
// the caller knows they never started), sends the other side the shutdown
// notice, and waits until every incoming call has been answered and every
// outgoing call has its reply. It does not close the connection: call
// [Peer.CloseWith] afterwards (1012 or 1001, say).
//
// Outgoing calls may still be made while draining (a handler finishing its
// work may need to call the other side); Drain waits for them too.
//
// If ctx ends first, Drain cancels the contexts of the handlers still
// running (their replies still go out if they return while the connection
// is up), answers the calls waiting in the backlog with [CodeUnavailable],
// and returns a *[DrainError] without waiting for a handler that ignores its
// ctx; [Peer.Wait] (or [Peer.Shutdown]) waits for them. Outgoing calls still
// pending are left to fail when the connection is closed.
func (p *Peer) Drain(ctx context.Context, n Notice) error {
	p.inMu.Lock()
	p.draining = true
	inIdle := p.armInIdleLocked()
	p.inMu.Unlock()
	_ = p.sendCtx(ctx, &message{kind: kindShutdown, retryAfter: n.RetryAfter, reason: n.Reason})

	p.mu.Lock()
	outIdle := p.armOutIdleLocked()
	p.mu.Unlock()

	for inIdle != nil || outIdle != nil {
		select {
		case <-inIdle:
			inIdle = nil
		case <-outIdle:
			outIdle = nil
		case <-p.loopDone:
			// The connection is gone: pending calls have failed and the
			// handlers' contexts are cancelled.
			return p.waitHandlers(ctx)
		case <-ctx.Done():
			return p.cutShort(ctx)
		}
	}
	return p.waitHandlers(ctx)
}

// waitHandlers waits for the calls being handled to finish, bounded by
// ctx: when ctx ends first, it cuts them short and returns without waiting
// for a handler that ignores its ctx (Peer.Wait does).
func (p *Peer) waitHandlers(ctx context.Context) error {
	p.inMu.Lock()
	idle := p.armInIdleLocked() // draining is set: by Drain, or by the connection's end
	p.inMu.Unlock()
	if idle != nil {
		select {
		case <-idle:
		case <-ctx.Done():
			return p.cutShort(ctx)
		}
	}
	return nil
}

// cutShort cancels every handler at a drain deadline and reports what was
// unfinished.
func (p *Peer) cutShort(ctx context.Context) error {
	st := p.Stats()
	p.dropBacklog(true) // first, so that no handler that returns starts one
	p.stopHandlers(fmt.Errorf("wsrpc: drain deadline: %w", context.Cause(ctx)))
	if st.InFlight == 0 && st.PendingCalls == 0 {
		return nil
	}
	return &DrainError{Incoming: st.InFlight, Outgoing: st.PendingCalls, Err: ctx.Err()}
}

// armInIdleLocked returns a channel closed when no incoming call is in
// flight (nil if none is now). The caller holds inMu and has set draining.
func (p *Peer) armInIdleLocked() chan struct{} {
	if p.inFlight == 0 {
		return nil
	}
	if !p.inIdleArmed {
		p.inIdle = make(chan struct{})
		p.inIdleArmed = true
	}
	return p.inIdle
}

func (p *Peer) signalInIdleLocked() {
	if p.inIdleArmed && p.inFlight == 0 {
		close(p.inIdle)
		p.inIdleArmed = false
	}
}

// armOutIdleLocked is armInIdleLocked for outgoing calls; the caller holds mu.
func (p *Peer) armOutIdleLocked() chan struct{} {
	if len(p.pending) == 0 {
		return nil
	}
	if !p.outIdleArmed {
		p.outIdle = make(chan struct{})
		p.outIdleArmed = true
	}
	return p.outIdle
}

func (p *Peer) signalOutIdleLocked() {
	if p.outIdleArmed && len(p.pending) == 0 {
		close(p.outIdle)
		p.outIdleArmed = false
	}
}
