package server

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestHandshakeLimiter drives the token bucket on a fake clock: the burst
// passes, then each refusal is told a later moment than the one before, one
// token's time apart; refills admit again; the hint never passes the cap.
func TestHandshakeLimiter(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	l := newHandshakeLimiter(2, 3, t0) // 2/s, bursts of 3
	for i := range 3 {
		if ok, _ := l.take(t0); !ok {
			t.Fatalf("handshake %d of the burst refused", i+1)
		}
	}
	var waits []time.Duration
	for range 4 {
		ok, wait := l.take(t0)
		if ok {
			t.Fatal("a handshake beyond the burst passed")
		}
		waits = append(waits, wait)
	}
	want := []time.Duration{500 * time.Millisecond, time.Second, 1500 * time.Millisecond, 2 * time.Second}
	if !slices.Equal(waits, want) {
		t.Fatalf("waits %v, want %v (one token's time apart)", waits, want)
	}
	if got := []int{retryAfterSeconds(waits[0]), retryAfterSeconds(waits[1]), retryAfterSeconds(waits[2])}; !slices.Equal(got, []int{1, 1, 2}) {
		t.Fatalf("Retry-After %v, want [1 1 2] (rounded up)", got)
	}
	// One second later two tokens are back: two pass, the next is told to
	// come after the last moment promised.
	t1 := t0.Add(time.Second)
	for i := range 2 {
		if ok, _ := l.take(t1); !ok {
			t.Fatalf("handshake %d after the refill refused", i+1)
		}
	}
	if ok, wait := l.take(t1); ok || wait != 1500*time.Millisecond {
		t.Fatalf("after the refill: ok %t, wait %v; want refused, 1.5s (after the 2s promised at t0)", ok, wait)
	}
	// Long after, the bucket is full again (never above the burst).
	t2 := t1.Add(time.Hour)
	for i := range 3 {
		if ok, _ := l.take(t2); !ok {
			t.Fatalf("handshake %d an hour later refused", i+1)
		}
	}
	if ok, wait := l.take(t2); ok || wait != 500*time.Millisecond {
		t.Fatalf("beyond the refilled burst: ok %t, wait %v; want refused, 0.5s", ok, wait)
	}
}

func TestHandshakeLimiterBounds(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	slow := newHandshakeLimiter(1e-12, 1, t0) // a token every 30,000 years
	slow.take(t0)
	for range 3 {
		if ok, wait := slow.take(t0); ok || wait != MaxHandshakeRetryAfter {
			t.Fatalf("tiny rate: ok %t, wait %v; want refused, the cap %v", ok, wait, MaxHandshakeRetryAfter)
		}
	}
	if got := newHandshakeLimiter(2.5, 0, t0).burst; got != 3 {
		t.Fatalf("burst 0 at 2.5/s = %v, want 3 (the rate rounded up)", got)
	}
	if got := newHandshakeLimiter(0.1, 0, t0).burst; got != 1 {
		t.Fatalf("burst 0 at 0.1/s = %v, want 1", got)
	}
	// A clock that goes back refills nothing and breaks nothing.
	l := newHandshakeLimiter(1, 1, t0)
	l.take(t0)
	if ok, wait := l.take(t0.Add(-time.Hour)); ok || wait <= 0 {
		t.Fatalf("clock back: ok %t, wait %v", ok, wait)
	}
}

// TestGoodbyeOffsets: n notices over a window fall one in each n-th of it,
// in order; a zero window sends them all at once.
func TestGoodbyeOffsets(t *testing.T) {
	const n, w = 1000, 10 * time.Second
	got := goodbyeOffsets(n, w, rand.Float64)
	if !slices.IsSorted(got) {
		t.Fatal("offsets out of order")
	}
	for i, o := range got {
		lo, hi := w*time.Duration(i)/n, w*time.Duration(i+1)/n
		if o < lo || o >= hi {
			t.Fatalf("offset %d = %v, outside its share [%v, %v)", i, o, lo, hi)
		}
	}
	mid := goodbyeOffsets(4, 4*time.Second, func() float64 { return 0.5 })
	if want := []time.Duration{500 * time.Millisecond, 1500 * time.Millisecond, 2500 * time.Millisecond, 3500 * time.Millisecond}; !slices.Equal(mid, want) {
		t.Fatalf("offsets %v, want %v", mid, want)
	}
	for _, o := range goodbyeOffsets(5, 0, rand.Float64) {
		if o != 0 {
			t.Fatalf("zero window: offset %v", o)
		}
	}
	if len(goodbyeOffsets(0, w, rand.Float64)) != 0 {
		t.Fatal("offsets for no connection")
	}
}

// TestGoodbyeWindowBoundedByCtx: the window is at most half of what the
// ctx of Shutdown leaves.
func TestGoodbyeWindowBoundedByCtx(t *testing.T) {
	s := &Server{opts: options{goodbyeWindow: 10 * time.Second}}
	now := time.Now()
	if got := s.goodbyeWindow(context.Background(), now); got != 10*time.Second {
		t.Fatalf("no deadline: %v", got)
	}
	ctx, cancel := context.WithDeadline(context.Background(), now.Add(4*time.Second))
	defer cancel()
	if got := s.goodbyeWindow(ctx, now); got != 2*time.Second {
		t.Fatalf("4s left: %v, want 2s", got)
	}
	past, cancel2 := context.WithDeadline(context.Background(), now.Add(-time.Second))
	defer cancel2()
	if got := s.goodbyeWindow(past, now); got != 0 {
		t.Fatalf("deadline passed: %v, want 0", got)
	}
}

func TestStateString(t *testing.T) {
	for st, want := range map[State]string{StateReady: "ready", StateDraining: "draining", StateStopped: "stopped", State(7): "State(7)"} {
		if got := st.String(); got != want {
			t.Errorf("%d: %q, want %q", int(st), got, want)
		}
	}
}

// TestHandshakeLimiterStormHonoursRetryAfter plays a reconnect storm on a
// fake clock: every client refused comes back exactly when its Retry-After
// (whole seconds) says. Whatever the burst, no client is refused twice, and
// the storm is let in at the rate, or at the burst a second when the burst
// is below the rate (clients told the same second arrive together).
func TestHandshakeLimiterStormHonoursRetryAfter(t *testing.T) {
	tests := []struct {
		rate    float64
		burst   int
		clients int
		perSec  float64 // handshakes a second the storm is let in at
	}{
		{rate: 5, burst: 0, clients: 40, perSec: 5},
		{rate: 5, burst: 2, clients: 40, perSec: 2},
		{rate: 2.5, burst: 3, clients: 40, perSec: 2.5},
		{rate: 10, burst: 1, clients: 30, perSec: 1},
		{rate: 0.5, burst: 0, clients: 10, perSec: 0.5},
	}
	for _, tt := range tests {
		t0 := time.Unix(1_000_000, 0)
		l := newHandshakeLimiter(tt.rate, tt.burst, t0)
		// at[s] lists the clients arriving s seconds after t0.
		at := map[int][]int{0: make([]int, tt.clients)}
		refusals := make([]int, tt.clients)
		for i := range at[0] {
			at[0][i] = i
		}
		admitted, last := 0, 0
		for s := 0; admitted < tt.clients && s < 1000; s++ {
			now := t0.Add(time.Duration(s) * time.Second)
			for _, c := range at[s] {
				ok, wait := l.take(now)
				if ok {
					admitted++
					last = s
					continue
				}
				refusals[c]++
				back := s + retryAfterSeconds(wait)
				at[back] = append(at[back], c)
			}
		}
		if admitted != tt.clients {
			t.Fatalf("rate %v burst %d: %d of %d clients admitted", tt.rate, tt.burst, admitted, tt.clients)
		}
		for c, n := range refusals {
			if n > 1 {
				t.Fatalf("rate %v burst %d: client %d refused %d times; a client that honours Retry-After is refused once", tt.rate, tt.burst, c, n)
			}
		}
		// The storm lasts about clients/perSec; one second more for rounding.
		if want := int(float64(tt.clients)/tt.perSec) + 1; last > want {
			t.Fatalf("rate %v burst %d: the last client admitted at %d s, want at most %d s", tt.rate, tt.burst, last, want)
		}
	}
}
