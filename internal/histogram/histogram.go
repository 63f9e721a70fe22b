// Package histogram records durations in constant memory, in log-linear
// buckets (as HdrHistogram does): values below 256 ns each have a bucket of
// their own, and every power of two above is cut into 128 buckets of equal
// width. A bucket is at most 1/128 of its lower bound wide, so a quantile,
// reported as the middle of its bucket, is within 0.4% of the exact one.
//
// The buckets of a power of two are allocated when the first value falls in
// it: a histogram of latencies between 10 µs and 1 s holds about 17 KiB,
// whatever the number of values, and one covering every duration up to
// 292 years at most 58 KiB.
//
// A Histogram is not safe for concurrent use: give each goroutine its own
// and Merge them.
package histogram

import (
	"math"
	"math/bits"
	"time"
)

const (
	subBits = 7
	sub     = 1 << subBits // buckets per power of two
	// chunks: chunk 0 holds the values 0-127, chunk k ≥ 1 the values
	// [128<<(k-1), 256<<(k-1)), in 128 buckets of width 1<<(k-1).
	chunks = 64 - subBits + 1
)

// Histogram counts durations. The zero value is empty and ready to use.
type Histogram struct {
	counts   [chunks]*[sub]uint64
	n        uint64
	sum      float64 // nanoseconds; a float, which does not overflow
	min, max time.Duration
}

// index returns the bucket of v: its chunk and its place in the chunk.
func index(v uint64) (chunk, off int) {
	if v < 2*sub {
		return int(v >> subBits), int(v & (sub - 1))
	}
	shift := bits.Len64(v) - subBits - 1
	i := shift<<subBits + int(v>>shift)
	return i >> subBits, i & (sub - 1)
}

// bounds returns the smallest value of a bucket and its width.
func bounds(chunk, off int) (lo, width uint64) {
	if chunk == 0 {
		return uint64(off), 1
	}
	shift := chunk - 1
	return uint64(sub+off) << shift, 1 << shift
}

// Record counts d; a negative d counts as 0.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	c, o := index(uint64(d))
	if h.counts[c] == nil {
		h.counts[c] = new([sub]uint64)
	}
	h.counts[c][o]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += float64(d)
}

// Merge adds the values counted by o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for c, oc := range o.counts {
		if oc == nil {
			continue
		}
		if h.counts[c] == nil {
			h.counts[c] = new([sub]uint64)
		}
		for i, n := range oc {
			h.counts[c][i] += n
		}
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Count returns how many values were recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Min returns the smallest value recorded, exactly (0 when empty).
func (h *Histogram) Min() time.Duration { return h.min }

// Max returns the largest value recorded, exactly (0 when empty).
func (h *Histogram) Max() time.Duration { return h.max }

// Mean returns the mean of the values recorded (0 when empty).
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(math.Round(h.sum / float64(h.n)))
}

// Quantile returns the q-quantile (0 ≤ q ≤ 1) by nearest rank: the value
// that at least q of the values do not exceed, as the middle of its bucket,
// within [Min, Max]. Quantile(0) is Min and Quantile(1) is Max; an empty
// histogram returns 0.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q <= 0 {
		return h.min
	}
	if q >= 1 {
		return h.max
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for c, counts := range h.counts {
		if counts == nil {
			continue
		}
		for o, n := range counts {
			seen += n
			if seen >= rank {
				lo, w := bounds(c, o)
				mid := time.Duration(lo + (w-1)/2)
				return min(max(mid, h.min), h.max)
			}
		}
	}
	return h.max
}

// Each calls fn for each bucket holding values, in increasing order, with
// the bucket's smallest value, its width and its count.
func (h *Histogram) Each(fn func(lo, width time.Duration, n uint64)) {
	for c, counts := range h.counts {
		if counts == nil {
			continue
		}
		for o, n := range counts {
			if n == 0 {
				continue
			}
			lo, w := bounds(c, o)
			fn(time.Duration(lo), time.Duration(w), n)
		}
	}
}

// Distribute counts the values into the ranges that limits bound: counts[i]
// is the number of values in (limits[i-1], limits[i]] (counts[0]: at most
// limits[0]), and counts[len(limits)] the number above the last limit.
// limits must be increasing. A bucket of the histogram counts where its
// smallest value falls: a value equal to a limit is counted at or below it,
// and only values less than 0.8% above a limit can be counted below it.
func (h *Histogram) Distribute(limits []time.Duration) []uint64 {
	counts := make([]uint64, len(limits)+1)
	i := 0
	h.Each(func(lo, _ time.Duration, n uint64) {
		for i < len(limits) && lo > limits[i] {
			i++
		}
		counts[i] += n
	})
	return counts
}
