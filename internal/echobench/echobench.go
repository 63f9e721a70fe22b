// Package echobench holds the echo benchmarks that other benchmarks compare
// against: the same echo over this module's transport and directly over
// coder/websocket. It is for benchmarks only.
package echobench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsrpc/wsrpc/transport"
)

// Latencies collects round-trip times for a p50/p99 report.
type Latencies struct{ d []time.Duration }

// Add records one round trip.
func (l *Latencies) Add(d time.Duration) { l.d = append(l.d, d) }

// Report adds p50-ns and p99-ns metrics to b.
func (l *Latencies) Report(b *testing.B) {
	if len(l.d) == 0 {
		return
	}
	slices.Sort(l.d)
	b.ReportMetric(float64(l.d[len(l.d)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(l.d[len(l.d)*99/100].Nanoseconds()), "p99-ns")
}

// Transport runs the echo over the transport package: b.N messages of size
// bytes, one at a time (pipelined false) or all in flight (true). It reports
// msgs/s and the p50 round trip (one at a time only).
func Transport(b *testing.B, size int, pipelined bool) {
	done := make(chan struct{})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { done <- struct{}{} }()
		c, err := transport.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for m := range c.Recv() {
			if c.Send(context.Background(), m) != nil {
				return
			}
		}
	}))
	defer s.Close()
	c, err := transport.Dial(context.Background(), "ws"+strings.TrimPrefix(s.URL, "http"), nil)
	if err != nil {
		b.Fatal(err)
	}
	msg := transport.Message{Type: transport.Binary, Data: make([]byte, size)}
	ctx := context.Background()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	if pipelined {
		sendErr := make(chan error, 1)
		go func() {
			for range b.N {
				if err := c.Send(ctx, msg); err != nil {
					sendErr <- err
					return
				}
			}
			sendErr <- nil
		}()
		for range b.N {
			if _, ok := <-c.Recv(); !ok {
				b.Fatal(c.Err())
			}
		}
		if err := <-sendErr; err != nil {
			b.Fatal(err)
		}
	} else {
		var lat Latencies
		for range b.N {
			start := time.Now()
			if err := c.Send(ctx, msg); err != nil {
				b.Fatal(err)
			}
			if _, ok := <-c.Recv(); !ok {
				b.Fatal(c.Err())
			}
			lat.Add(time.Since(start))
		}
		lat.Report(b)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	c.Close(transport.StatusNormalClosure, "")
	<-done
}

// Coder is Transport written directly on coder/websocket: the ceiling.
func Coder(b *testing.B, size int, pipelined bool) {
	done := make(chan struct{})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { done <- struct{}{} }()
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ws.SetReadLimit(transport.DefaultReadLimit)
		ctx := context.Background()
		for {
			typ, p, err := ws.Read(ctx)
			if err != nil {
				return
			}
			if ws.Write(ctx, typ, p) != nil {
				return
			}
		}
	}))
	defer s.Close()
	ctx := context.Background()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http"), nil)
	if err != nil {
		b.Fatal(err)
	}
	ws.SetReadLimit(transport.DefaultReadLimit)
	msg := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	if pipelined {
		sendErr := make(chan error, 1)
		go func() {
			for range b.N {
				if err := ws.Write(ctx, websocket.MessageBinary, msg); err != nil {
					sendErr <- err
					return
				}
			}
			sendErr <- nil
		}()
		for range b.N {
			if _, _, err := ws.Read(ctx); err != nil {
				b.Fatal(err)
			}
		}
		if err := <-sendErr; err != nil {
			b.Fatal(err)
		}
	} else {
		var lat Latencies
		for range b.N {
			start := time.Now()
			if err := ws.Write(ctx, websocket.MessageBinary, msg); err != nil {
				b.Fatal(err)
			}
			if _, _, err := ws.Read(ctx); err != nil {
				b.Fatal(err)
			}
			lat.Add(time.Since(start))
		}
		lat.Report(b)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	ws.Close(websocket.StatusNormalClosure, "")
	<-done
}

// RunCalls times b.N calls and reports calls/s: one at a time with p50/p99
// latencies when callers is 1, otherwise from that many goroutines at once.
// newCall is called once per calling goroutine (so each can keep its own
// result variable) and returns the function that makes one call. It starts
// and stops the timer itself.
func RunCalls(b *testing.B, callers int, newCall func() func() error) {
	b.ReportAllocs()
	b.ResetTimer()
	if callers <= 1 {
		call := newCall()
		var lat Latencies
		for range b.N {
			start := time.Now()
			if err := call(); err != nil {
				b.Fatal(err)
			}
			lat.Add(time.Since(start))
		}
		b.StopTimer()
		lat.Report(b)
	} else {
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, callers)
		for range callers {
			call := newCall()
			wg.Go(func() {
				for next.Add(1) <= int64(b.N) {
					if err := call(); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		b.StopTimer()
		close(errs)
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}
