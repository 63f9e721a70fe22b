package handler_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
)

func TestInstrument(t *testing.T) {
	m := handler.NewMemoryMetrics()
	mux := handler.NewMux()
	mux.Use(handler.Recover(nil), handler.Instrument(m))
	mux.Handle("ok", echo)
	mux.Handle("fail", fail(rpc.NewError(rpc.CodeInvalidParams, "bad")))
	mux.Handle("plain", fail(errors.New("plain")))
	mux.HandleFunc("panic", func(context.Context, *rpc.Request) ([]byte, error) { panic("boom") })

	for _, method := range []string{"ok", "ok", "fail", "plain", "panic", "missing"} {
		mux.ServeRPC(context.Background(), newReq(method, ""))
	}

	s := m.Snapshot()
	tests := []struct {
		give        string // method
		wantStarted uint64
		want        map[rpc.Code]uint64 // finished, by code
	}{
		{"ok", 2, map[rpc.Code]uint64{0: 2}},
		{"fail", 1, map[rpc.Code]uint64{rpc.CodeInvalidParams: 1}},
		{"plain", 1, map[rpc.Code]uint64{rpc.CodeInternalError: 1}},
		{"panic", 1, map[rpc.Code]uint64{rpc.CodeInternalError: 1}},
		{"missing", 1, map[rpc.Code]uint64{rpc.CodeMethodNotFound: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			mm := s.Methods[tt.give]
			if mm.Started != tt.wantStarted {
				t.Errorf("started %d, want %d", mm.Started, tt.wantStarted)
			}
			got := make(map[rpc.Code]uint64)
			for code, h := range mm.Finished {
				got[code] = h.Count
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("finished %v, want %v", got, tt.want)
			}
		})
	}
	if len(s.Methods) != len(tests) {
		t.Errorf("methods %v", slices.Collect(maps.Keys(s.Methods)))
	}
}

// TestInstrumentPanic checks that a panic is counted even when nothing
// recovers it inside Instrument.
func TestInstrumentPanic(t *testing.T) {
	m := handler.NewMemoryMetrics()
	h := handler.Instrument(m)(handler.HandlerFunc(func(context.Context, *rpc.Request) ([]byte, error) { panic("boom") }))
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic did not go on")
			}
		}()
		h.ServeRPC(context.Background(), newReq("p", ""))
	}()
	if got := m.Snapshot().Methods["p"].Finished[rpc.CodeInternalError].Count; got != 1 {
		t.Errorf("internal errors %d, want 1", got)
	}
}

func TestMemoryMetricsBuckets(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name        string
		buckets     []time.Duration
		give        []time.Duration // durations of calls
		wantBuckets []time.Duration
		want        []uint64 // counts per bucket, then above
	}{
		{"bounds are inclusive", []time.Duration{ms, 10 * ms},
			[]time.Duration{0, ms, ms + 1, 10 * ms, 10*ms + 1, time.Hour},
			[]time.Duration{ms, 10 * ms}, []uint64{2, 2, 2}},
		{"normalized", []time.Duration{10 * ms, ms, 0, -ms, ms, 5 * ms},
			[]time.Duration{2 * ms, 3 * ms, 7 * ms},
			[]time.Duration{ms, 5 * ms, 10 * ms}, []uint64{0, 2, 1, 0}},
		{"default", nil,
			[]time.Duration{ms / 2, 2 * ms, time.Minute},
			[]time.Duration{ms, 5 * ms, 10 * ms, 50 * ms, 100 * ms, 500 * ms, time.Second, 5 * time.Second},
			[]uint64{1, 1, 0, 0, 0, 0, 0, 0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := handler.NewMemoryMetrics(tt.buckets...)
			var sum time.Duration
			for _, d := range tt.give {
				m.CallStarted("m")
				m.CallFinished("m", 0, d)
				sum += d
			}
			s := m.Snapshot()
			if !slices.Equal(s.Buckets, tt.wantBuckets) {
				t.Errorf("buckets %v, want %v", s.Buckets, tt.wantBuckets)
			}
			h := s.Methods["m"].Finished[0]
			if !slices.Equal(h.Counts, tt.want) {
				t.Errorf("counts %v, want %v", h.Counts, tt.want)
			}
			if h.Count != uint64(len(tt.give)) || h.Sum != sum {
				t.Errorf("count %d sum %v, want %d %v", h.Count, h.Sum, len(tt.give), sum)
			}
		})
	}
}

func TestMemoryMetricsSnapshotIsACopy(t *testing.T) {
	m := handler.NewMemoryMetrics(time.Second)
	m.CallStarted("m")
	m.CallFinished("m", 0, 0)
	s := m.Snapshot()
	s.Buckets[0] = 0
	s.Methods["m"].Finished[0].Counts[0] = 99
	delete(s.Methods, "m")
	m.CallStarted("m")
	m.CallFinished("m", 0, 0)
	s = m.Snapshot()
	if h := s.Methods["m"].Finished[0]; h.Counts[0] != 2 || s.Buckets[0] != time.Second {
		t.Errorf("snapshot shares state: %+v", s)
	}
}

func TestMemoryMetricsTooManyMethods(t *testing.T) {
	m := handler.NewMemoryMetrics()
	for i := range handler.MaxMetricMethods + 10 {
		m.CallStarted(fmt.Sprint("m", i))
		m.CallFinished(fmt.Sprint("m", i), 0, 0)
	}
	s := m.Snapshot()
	if len(s.Methods) != handler.MaxMetricMethods+1 {
		t.Errorf("%d methods, want %d", len(s.Methods), handler.MaxMetricMethods+1)
	}
	if got := s.Methods[handler.OtherMethods]; got.Started != 10 || got.Finished[0].Count != 10 {
		t.Errorf("other: %+v, want 10 started and finished", got)
	}
}

// TestMemoryMetricsLongMethodName: method names come from the network, up
// to the read limit; the bound on their count would not bound the bytes
// kept (1024 names of 1 MiB) nor a scrape's size, so long ones are cut.
func TestMemoryMetricsLongMethodName(t *testing.T) {
	m := handler.NewMemoryMetrics()
	exact := strings.Repeat("e", 256)
	m.CallStarted(exact)
	for i := range 3 {
		long := fmt.Sprint(i, strings.Repeat("é", 500_000)) // 1 MB, cut at a rune boundary
		m.CallStarted(long)
		m.CallFinished(long, 0, time.Millisecond)
	}
	s := m.Snapshot()
	if _, ok := s.Methods[exact]; !ok {
		t.Errorf("a name of 256 bytes was not kept as it is")
	}
	if len(s.Methods) != 4 {
		t.Errorf("%d methods, want 4: %v", len(s.Methods), slices.Collect(maps.Keys(s.Methods)))
	}
	for name, mm := range s.Methods {
		if len(name) > 300 || !utf8.ValidString(name) {
			t.Errorf("a method kept as %d bytes (valid UTF-8: %v)", len(name), utf8.ValidString(name))
		}
		if name != exact && (!strings.HasSuffix(name, "…(1000001 bytes)") || mm.Started != 1 || mm.Finished[0].Count != 1) {
			t.Errorf("long name kept as %q…: %+v", name[:10], mm)
		}
	}
}

func TestMemoryMetricsNoAllocForKnownMethod(t *testing.T) {
	m := handler.NewMemoryMetrics()
	m.CallStarted("m")
	m.CallFinished("m", rpc.CodeBusy, time.Millisecond)
	if n := testing.AllocsPerRun(100, func() {
		m.CallStarted("m")
		m.CallFinished("m", rpc.CodeBusy, time.Millisecond)
	}); n != 0 {
		t.Errorf("%v allocations per call, want 0", n)
	}
}

// TestMemoryMetricsConcurrent is for -race.
func TestMemoryMetricsConcurrent(t *testing.T) {
	m := handler.NewMemoryMetrics()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 250 {
				method := fmt.Sprint("m", j%3)
				m.CallStarted(method)
				m.CallFinished(method, rpc.Code(i%2), time.Duration(j))
				if j%50 == 0 {
					m.Snapshot()
				}
			}
		})
	}
	wg.Wait()
	var started, finished uint64
	for _, mm := range m.Snapshot().Methods {
		started += mm.Started
		for _, h := range mm.Finished {
			finished += h.Count
		}
	}
	if started != 1000 || finished != 1000 {
		t.Errorf("started %d finished %d, want 1000 each", started, finished)
	}
}
