package server

import (
	"context"
	"math/rand/v2"
	"time"
)

// goodbyeOffsets returns when, from the start of a goodbye window of length
// w, each of n connections gets its shutdown notice: the i-th at a random
// moment of the i-th n-th of the window (stratified jitter), so the
// notices are spread evenly over the window but at no predictable moment,
// in increasing order. With w ≤ 0 every offset is 0. rnd returns a number
// in [0, 1).
func goodbyeOffsets(n int, w time.Duration, rnd func() float64) []time.Duration {
	out := make([]time.Duration, n)
	if w <= 0 {
		return out
	}
	for i := range out {
		out[i] = time.Duration((float64(i) + rnd()) / float64(n) * float64(w))
	}
	return out
}

// goodbyeWindow is the window Shutdown spreads its notices over: the
// [WithGoodbyeWindow] one, cut to half of what ctx leaves, so that the last
// connections told have as long again to finish their calls.
func (s *Server) goodbyeWindow(ctx context.Context, now time.Time) time.Duration {
	w := s.opts.goodbyeWindow
	if dl, ok := ctx.Deadline(); ok && w > 0 {
		w = min(w, dl.Sub(now)/2)
	}
	return max(w, 0)
}

// waitReadyDelay turns readiness off (the first call does) and waits until
// the [WithReadyDelay] has passed since, ctx ends, or closing begins some
// other way (Close, or a Shutdown whose ctx ended).
func (s *Server) waitReadyDelay(ctx context.Context) {
	s.mu.Lock()
	if s.state == StateReady {
		s.state = StateDraining
		s.refuseAt = time.Now().Add(s.opts.readyDelay)
	}
	refuseAt, refusing := s.refuseAt, s.refusing
	s.mu.Unlock()
	d := time.Until(refuseAt)
	if d <= 0 {
		return
	}
	if l := s.cfg.Logger(); l != nil {
		l.Info("wsrpc: shutting down: not ready; still accepting handshakes", "for", d.Round(time.Millisecond))
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-refusing:
	}
}

// shuffled returns conns in a random order, so that which connection is
// told first does not depend on the registry's map order.
func shuffled(conns []*conn) []*conn {
	rand.Shuffle(len(conns), func(i, j int) { conns[i], conns[j] = conns[j], conns[i] })
	return conns
}
