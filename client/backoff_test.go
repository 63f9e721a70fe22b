package client_test

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/client"
)

func TestJitter(t *testing.T) {
	t.Parallel()
	const base, ceiling = 100 * time.Millisecond, time.Second
	var asked int64
	highest := func(n int64) int64 { asked = n; return n - 1 } // the top of [0, n)
	lowest := func(int64) int64 { return 0 }

	// Growth and cap: the ceiling doubles per attempt, up to the cap.
	tests := []struct {
		give int           // attempt
		want time.Duration // the ceiling: the longest possible delay
	}{
		{0, base},
		{1, 2 * base},
		{2, 4 * base},
		{3, 8 * base},
		{4, ceiling},
		{5, ceiling},
		{63, ceiling},
		{64, ceiling},
		{1 << 20, ceiling},
	}
	for _, tt := range tests {
		if got := client.Jitter(base, ceiling, tt.give, highest); got != tt.want {
			t.Errorf("attempt %d: longest delay %v, want %v", tt.give, got, tt.want)
		}
		if asked != int64(tt.want)+1 {
			t.Errorf("attempt %d: random source asked for [0, %d), want [0, %d]", tt.give, asked, tt.want)
		}
		if got := client.Jitter(base, ceiling, tt.give, lowest); got != 0 {
			t.Errorf("attempt %d: shortest delay %v, want 0 (full jitter)", tt.give, got)
		}
	}

	// No overflow near the largest duration.
	huge := time.Duration(math.MaxInt64)
	if got := client.Jitter(time.Nanosecond, huge, 200, highest); got != huge-1 {
		t.Errorf("uncapped ceiling: %v, want %v", got, huge-1)
	}
	if got := client.Jitter(huge/2+1, huge, 1, highest); got != huge-1 {
		t.Errorf("doubling past the largest duration: %v, want %v", got, huge-1)
	}

	// Bounds with a real (seeded) random source: every draw within the
	// ceiling, and the draws spread over it.
	r := rand.New(rand.NewPCG(1, 2))
	for attempt := range 8 {
		ceil := min(ceiling, base<<attempt)
		var lo, hi time.Duration = ceil, 0
		for range 1000 {
			d := client.Jitter(base, ceiling, attempt, r.Int64N)
			if d < 0 || d > ceil {
				t.Fatalf("attempt %d: delay %v outside [0, %v]", attempt, d, ceil)
			}
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo > ceil/10 || hi < ceil*9/10 {
			t.Errorf("attempt %d: delays in [%v, %v], not spread over [0, %v]", attempt, lo, hi, ceil)
		}
	}
}

// A server's retry hint gets jitter on top, never below it: a moment in
// [h, h + h/4], and no wait for no hint.
func TestSpreadHint(t *testing.T) {
	t.Parallel()
	const h = 400 * time.Millisecond
	lowest := func(int64) int64 { return 0 }
	highest := func(n int64) int64 { return n - 1 }
	if got := client.SpreadHint(h, lowest); got != h {
		t.Errorf("lowest draw: %v, want %v", got, h)
	}
	if got := client.SpreadHint(h, highest); got != h+h/4 {
		t.Errorf("highest draw: %v, want %v", got, h+h/4)
	}
	if got := client.SpreadHint(0, highest); got != 0 {
		t.Errorf("no hint: %v, want 0", got)
	}
	if got := client.SpreadHint(time.Nanosecond, highest); got != time.Nanosecond {
		t.Errorf("1ns hint: %v", got)
	}
}
