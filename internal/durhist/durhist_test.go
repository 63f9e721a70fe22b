package durhist

import (
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestObserve(t *testing.T) {
	var h H
	tests := []struct {
		give time.Duration
		want int // bucket
	}{
		{-time.Second, 0},
		{0, 0},
		{100 * time.Microsecond, 0}, // a bound is in its own bucket
		{101 * time.Microsecond, 1},
		{3 * time.Millisecond, 5},
		{10 * time.Second, len(Bounds) - 1},
		{time.Hour, len(Bounds)},
	}
	want := make([]uint64, len(Bounds)+1)
	var sum time.Duration
	for _, tt := range tests {
		h.Observe(tt.give)
		want[tt.want]++
		sum += max(tt.give, 0)
	}
	counts, total, gotSum := h.Snapshot()
	if !slices.Equal(counts, want) || total != uint64(len(tests)) || gotSum != sum {
		t.Errorf("Snapshot = %v, %d, %v; want %v, %d, %v", counts, total, gotSum, want, len(tests), sum)
	}
	if !slices.IsSorted(Bounds[:]) {
		t.Error("Bounds are not ascending")
	}
}

func TestConcurrent(t *testing.T) {
	var h H
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range 1000 {
				h.Observe(time.Duration(i) * time.Millisecond)
			}
		})
	}
	wg.Wait()
	if _, total, _ := h.Snapshot(); total != 8000 {
		t.Errorf("total = %d, want 8000", total)
	}
}
