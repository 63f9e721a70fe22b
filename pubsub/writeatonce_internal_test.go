package pubsub

import (
	"testing"
	"time"
)

// A fan-out writes at once only on a topic published to slowly: after two
// quiet spells in a row, never back to back, and not after a single pause
// in a stream of publications.
func TestWriteAtOnceOnlyWhenPublishedSlowly(t *testing.T) {
	ms := time.Millisecond
	var e entry
	steps := []struct {
		start, end time.Duration
		want       bool
	}{
		{10 * ms, 10 * ms, false},         // quiet, but the first
		{20 * ms, 21 * ms, true},          // quiet twice
		{40 * ms, 40 * ms, true},          // and again
		{40*ms + 100_000, 41 * ms, false}, // back to back
		{41*ms + 10_000, 42 * ms, false},
		{60 * ms, 61 * ms, false}, // one pause in a stream
		{61*ms + 10_000, 62 * ms, false},
		{80 * ms, 80 * ms, false},
		{100 * ms, 100 * ms, true}, // slow again
	}
	for i, s := range steps {
		if got := e.writeAtOnce(s.start); got != s.want {
			t.Fatalf("step %d (at %s): %v, want %v", i, s.start, got, s.want)
		}
		e.quietSince = s.end
	}
}
