package handler

import (
	"math"
	"slices"
	"sync"
	"time"

	"github.com/wsrpc/wsrpc/internal/logtext"
	"github.com/wsrpc/wsrpc/rpc"
)

// MemoryMetrics is a [Metrics] that keeps counts in memory: per method, the
// calls started, and per method and outcome code, the calls finished with a
// histogram of their durations. Read it with [MemoryMetrics.Snapshot].
//
// It counts at most [MaxMetricMethods] distinct method names; calls to any
// further name are counted under [OtherMethods], so that callers sending
// many distinct names cannot make it grow without bound. Likewise it keeps
// at most [MaxMetricCodes] distinct outcome codes per method (the codes of
// the calls a peer makes are the other side's to choose): further codes
// are counted under [OtherCodes]. A method name longer than 256 bytes is
// counted under its first 256 bytes followed by "…(N bytes)", as the logs
// show it, so that the names kept stay small however long the names
// callers send.
//
// A MemoryMetrics is safe for concurrent use. Recording a call takes a mutex
// and allocates only for a method or code not seen before.
type MemoryMetrics struct {
	buckets []time.Duration // upper bounds, ascending

	mu      sync.Mutex
	methods map[string]*methodCounts
}

// MaxMetricMethods is the number of distinct method names a [MemoryMetrics]
// counts separately.
const MaxMetricMethods = 1024

// OtherMethods is the name under which a [MemoryMetrics] counts the calls to
// methods beyond the first [MaxMetricMethods].
const OtherMethods = "(other)"

// MaxMetricCodes is the number of distinct outcome codes a [MemoryMetrics]
// counts separately for one method.
const MaxMetricCodes = 32

// OtherCodes is the code under which a [MemoryMetrics] counts the calls of a
// method that finished with codes beyond its first [MaxMetricCodes]. No
// call has it: it is the lowest int32, outside every range of codes.
const OtherCodes rpc.Code = math.MinInt32

type methodCounts struct {
	started  uint64
	finished map[rpc.Code]*histogram
}

type histogram struct {
	count  uint64
	sum    time.Duration
	counts []uint64 // per bucket, plus one for durations above the last bound
}

// NewMemoryMetrics returns an empty MemoryMetrics whose histograms have the
// given upper bounds (in any order; duplicates and bounds <= 0 are dropped).
// With none, the bounds are 1ms, 5ms, 10ms, 50ms, 100ms, 500ms, 1s and 5s.
func NewMemoryMetrics(buckets ...time.Duration) *MemoryMetrics {
	if len(buckets) == 0 {
		buckets = []time.Duration{
			time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 50 * time.Millisecond,
			100 * time.Millisecond, 500 * time.Millisecond, time.Second, 5 * time.Second,
		}
	}
	b := slices.DeleteFunc(slices.Clone(buckets), func(d time.Duration) bool { return d <= 0 })
	slices.Sort(b)
	return &MemoryMetrics{buckets: slices.Compact(b), methods: make(map[string]*methodCounts)}
}

// CallStarted counts a started call.
func (m *MemoryMetrics) CallStarted(method string) {
	m.mu.Lock()
	m.methodLocked(method).started++
	m.mu.Unlock()
}

// CallFinished counts a finished call and its duration.
func (m *MemoryMetrics) CallFinished(method string, code rpc.Code, d time.Duration) {
	i := 0
	for i < len(m.buckets) && d > m.buckets[i] {
		i++
	}
	m.mu.Lock()
	mc := m.methodLocked(method)
	h := mc.finished[code]
	if h == nil && len(mc.finished) >= MaxMetricCodes {
		code = OtherCodes
		h = mc.finished[code]
	}
	if h == nil {
		h = &histogram{counts: make([]uint64, len(m.buckets)+1)}
		mc.finished[code] = h
	}
	h.count++
	h.sum += d
	h.counts[i]++
	m.mu.Unlock()
}

func (m *MemoryMetrics) methodLocked(method string) *methodCounts {
	method = logtext.Clip(method)
	mc := m.methods[method]
	if mc != nil {
		return mc
	}
	if len(m.methods) >= MaxMetricMethods {
		method = OtherMethods
		if mc = m.methods[method]; mc != nil {
			return mc
		}
	}
	mc = &methodCounts{finished: make(map[rpc.Code]*histogram)}
	m.methods[method] = mc
	return mc
}

// MetricsSnapshot is a copy of the counts of a [MemoryMetrics].
type MetricsSnapshot struct {
	Buckets []time.Duration // the upper bounds of the histograms, ascending
	Methods map[string]MethodMetrics
}

// MethodMetrics are the counts of one method.
type MethodMetrics struct {
	Started  uint64
	Finished map[rpc.Code]Histogram // by outcome code; 0 is success
}

// Histogram counts the calls that finished with one code, and their
// durations.
type Histogram struct {
	Count uint64
	Sum   time.Duration
	// Counts has one entry per bucket bound, plus one: Counts[i] is the
	// number of calls with Buckets[i-1] < d <= Buckets[i] (not cumulative),
	// and the last entry counts those above the largest bound.
	Counts []uint64
}

// Snapshot returns a copy of the counts, which the caller owns.
func (m *MemoryMetrics) Snapshot() MetricsSnapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := MetricsSnapshot{Buckets: slices.Clone(m.buckets), Methods: make(map[string]MethodMetrics, len(m.methods))}
	for name, mc := range m.methods {
		mm := MethodMetrics{Started: mc.started, Finished: make(map[rpc.Code]Histogram, len(mc.finished))}
		for code, h := range mc.finished {
			mm.Finished[code] = Histogram{Count: h.count, Sum: h.sum, Counts: slices.Clone(h.counts)}
		}
		s.Methods[name] = mm
	}
	return s
}
