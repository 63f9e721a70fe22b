package main

import (
	"math/bits"
	"time"
)

// hist is a latency histogram with a fixed footprint, so that recording a
// call never allocates (an allocation would be counted against the
// implementation under test). Values below 256 ns are exact; above, each
// power of two is split into 128 buckets, a relative error under 0.8 %.
type hist struct {
	counts [histBuckets]uint64
	n      uint64
}

const (
	histExact   = 256
	histSub     = 128
	histOctaves = 34 // up to 2^41 ns, about 37 minutes
	histBuckets = histExact + histOctaves*histSub
)

func histIndex(v int64) int {
	if v < histExact {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - 8 // v>>shift is in [128, 256)
	i := histExact + (shift-1)*histSub + int(v>>shift) - histSub
	return min(i, histBuckets-1)
}

// histValue is the midpoint of bucket i.
func histValue(i int) int64 {
	if i < histExact {
		return int64(i)
	}
	shift := (i-histExact)/histSub + 1
	m := int64((i-histExact)%histSub + histSub)
	return m<<shift + int64(1)<<shift/2
}

func (h *hist) add(d time.Duration) {
	h.counts[histIndex(int64(d))]++
	h.n++
}

func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile returns the latency at or below which a fraction q of the
// recorded calls fall.
func (h *hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(histValue(i))
		}
	}
	return time.Duration(histValue(histBuckets - 1))
}
