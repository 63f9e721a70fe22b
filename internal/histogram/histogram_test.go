package histogram

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// exact is the nearest-rank quantile of sorted values.
func exact(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func TestIndexAndBoundsAgree(t *testing.T) {
	// Every value falls in the bucket whose bounds hold it, and buckets
	// follow each other without gaps.
	var prevEnd uint64
	for c := range chunks {
		for o := range sub {
			lo, w := bounds(c, o)
			if c == 0 && o == 0 {
				prevEnd = 0
			}
			if lo != prevEnd {
				t.Fatalf("bucket %d/%d starts at %d, want %d", c, o, lo, prevEnd)
			}
			for _, v := range []uint64{lo, lo + w - 1, lo + w/2} {
				if gc, go_ := index(v); gc != c || go_ != o {
					t.Fatalf("index(%d) = %d/%d, want %d/%d", v, gc, go_, c, o)
				}
			}
			if c >= 2 && float64(w)/float64(lo) > 1.0/sub+1e-12 {
				t.Fatalf("bucket %d/%d: width %d is more than 1/%d of %d", c, o, w, sub, lo)
			}
			prevEnd = lo + w
			if prevEnd == 0 { // wrapped past the largest value
				return
			}
		}
	}
	if c, _ := index(math.MaxUint64); c != chunks-1 {
		t.Errorf("the largest value is in chunk %d, want %d", c, chunks-1)
	}
}

func TestSmallValuesAreExact(t *testing.T) {
	var h Histogram
	for v := range 256 {
		h.Record(time.Duration(v))
	}
	for v := 1; v <= 256; v++ {
		if got := h.Quantile(float64(v) / 256); got != time.Duration(v-1) {
			t.Fatalf("Quantile(%d/256) = %d, want %d", v, got, v-1)
		}
	}
}

func TestQuantilesWithinHalfAPercent(t *testing.T) {
	tests := []struct {
		name string
		gen  func(r *rand.Rand) time.Duration
	}{
		// A long tail, as latencies have: log-normal around 300 µs.
		{"lognormal", func(r *rand.Rand) time.Duration {
			return time.Duration(math.Exp(math.Log(300e3) + 1.5*r.NormFloat64()))
		}},
		{"uniform 0-10ms", func(r *rand.Rand) time.Duration { return time.Duration(r.Int64N(10e6)) }},
		{"two modes", func(r *rand.Rand) time.Duration {
			if r.IntN(100) == 0 {
				return time.Duration(2e9 + r.Int64N(1e8)) // 1% at 2 s
			}
			return time.Duration(50e3 + r.Int64N(10e3))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			var h Histogram
			vals := make([]time.Duration, 100_000)
			for i := range vals {
				vals[i] = tt.gen(r)
				h.Record(vals[i])
			}
			slices.Sort(vals)
			for _, q := range []float64{0, 0.001, 0.1, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 1} {
				got, want := h.Quantile(q), exact(vals, q)
				if diff := math.Abs(float64(got - want)); diff > float64(want)/256+1 {
					t.Errorf("Quantile(%v) = %v, want %v ± 0.4%%", q, got, want)
				}
			}
			if h.Min() != vals[0] || h.Max() != vals[len(vals)-1] || h.Count() != uint64(len(vals)) {
				t.Errorf("min %v max %v count %d; want %v %v %d", h.Min(), h.Max(), h.Count(), vals[0], vals[len(vals)-1], len(vals))
			}
			var sum float64
			for _, v := range vals {
				sum += float64(v)
			}
			if mean := sum / float64(len(vals)); math.Abs(float64(h.Mean())-mean) > 1 {
				t.Errorf("Mean = %v, want %v", h.Mean(), time.Duration(mean))
			}
		})
	}
}

func TestMergeIsRecordingTogether(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var a, b, all Histogram
	for i := range 10_000 {
		v := time.Duration(r.Int64N(1e9))
		all.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	var m Histogram
	m.Merge(&Histogram{}) // an empty one changes nothing
	m.Merge(&a)
	m.Merge(&b)
	if m.Count() != all.Count() || m.Min() != all.Min() || m.Max() != all.Max() || m.Mean() != all.Mean() {
		t.Fatalf("merged: %d %v %v %v; want %d %v %v %v", m.Count(), m.Min(), m.Max(), m.Mean(), all.Count(), all.Min(), all.Max(), all.Mean())
	}
	if m.counts != all.counts {
		for c := range chunks {
			if (m.counts[c] == nil) != (all.counts[c] == nil) || (m.counts[c] != nil && *m.counts[c] != *all.counts[c]) {
				t.Fatalf("chunk %d differs", c)
			}
		}
	}
}

func TestMemoryIsBounded(t *testing.T) {
	var h Histogram
	r := rand.New(rand.NewPCG(5, 6))
	for range 1_000_000 {
		h.Record(time.Duration(10e3 + r.Int64N(1e9-10e3))) // 10 µs to 1 s
	}
	n := 0
	for _, c := range h.counts {
		if c != nil {
			n++
		}
	}
	if n > 17 {
		t.Errorf("%d chunks of %d buckets for 10 µs-1 s, want at most 17", n, sub)
	}
}

func TestEdgeValues(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Mean() != 0 || h.Min() != 0 || h.Max() != 0 {
		t.Error("an empty histogram does not report zeros")
	}
	h.Record(-5)
	h.Record(math.MaxInt64)
	if h.Min() != 0 || h.Max() != math.MaxInt64 || h.Quantile(1) != math.MaxInt64 || h.Quantile(0.5) != 0 {
		t.Errorf("min %v max %v p50 %v", h.Min(), h.Max(), h.Quantile(0.5))
	}
	var one Histogram
	one.Record(12345 * time.Microsecond)
	for _, q := range []float64{0, 0.5, 0.999, 1} {
		if got := one.Quantile(q); got != 12345*time.Microsecond {
			t.Errorf("one value: Quantile(%v) = %v", q, got)
		}
	}
}

func TestEachInOrder(t *testing.T) {
	var h Histogram
	for _, v := range []time.Duration{5 * time.Second, 3, 3, 1000, time.Millisecond} {
		h.Record(v)
	}
	var los []time.Duration
	var total uint64
	h.Each(func(lo, w time.Duration, n uint64) {
		los = append(los, lo)
		total += n
	})
	if !slices.IsSorted(los) || len(los) != 4 || total != 5 || los[0] != 3 {
		t.Errorf("buckets %v, %d values", los, total)
	}
}

func TestDistribute(t *testing.T) {
	var h Histogram
	for _, v := range []time.Duration{50 * time.Microsecond, 100 * time.Microsecond, 150 * time.Microsecond, time.Millisecond, 3 * time.Second} {
		h.Record(v)
	}
	got := h.Distribute([]time.Duration{100 * time.Microsecond, 200 * time.Microsecond, time.Second})
	if want := []uint64{2, 1, 1, 1}; !slices.Equal(got, want) {
		t.Errorf("Distribute = %v, want %v", got, want)
	}
}

func BenchmarkRecord(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	for i := range b.N {
		h.Record(time.Duration(i&0xfffff) * 100)
	}
}
