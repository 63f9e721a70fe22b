// Package durhist is a histogram of durations with fixed, roughly
// logarithmic bounds, recorded with atomic counters: cheap enough for a hot
// path, read whole by a metrics collector. An H is safe for concurrent use;
// its zero value is ready.
package durhist

import (
	"sync/atomic"
	"time"
)

// Bounds are the upper bounds of an H's buckets, from 100µs to 10s.
var Bounds = [...]time.Duration{
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// H counts durations per bucket of Bounds, plus one bucket above the last.
type H struct {
	counts [len(Bounds) + 1]atomic.Uint64
	sum    atomic.Int64 // nanoseconds
}

// Observe records d (a negative d counts as 0).
func (h *H) Observe(d time.Duration) {
	d = max(d, 0)
	i := 0
	for i < len(Bounds) && d > Bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// Snapshot returns the counts per bucket (not cumulative: counts[i] holds
// the durations in (Bounds[i-1], Bounds[i]], the last those above every
// bound), their total and their sum. Read while others record, the counts
// and the sum may each miss the latest few.
func (h *H) Snapshot() (counts []uint64, total uint64, sum time.Duration) {
	counts = make([]uint64, len(h.counts))
	for i := range h.counts {
		counts[i] = h.counts[i].Load()
		total += counts[i]
	}
	return counts, total, time.Duration(h.sum.Load())
}
