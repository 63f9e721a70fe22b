package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// An impl is one implementation under test. listen starts its server on
// loopback for payloads of size bytes.
type impl struct {
	name   string
	listen func(ctx context.Context, size int) (endpoint, error)
}

// An endpoint is a running server that clients dial.
type endpoint interface {
	dial(ctx context.Context) (client, error)
	// close stops the server and waits for its goroutines; every client
	// has been closed before.
	close() error
}

// A client is one connection.
type client interface {
	// caller returns a function that makes one round trip. Each worker gets
	// its own, so that per-caller state (the result variable) is made once,
	// outside the measurement. Callers from one client may run concurrently
	// unless the client is a pipeliner.
	caller() func() error
	close() error
}

// A pipeliner is a client that cannot have concurrent callers (the raw echo:
// one reader at a time, and replies are not matched to requests). With many
// callers on one connection it runs a pipelined echo instead: up to window
// messages in flight, sent by one goroutine and received by another.
type pipeliner interface {
	pipeline(stop *atomic.Bool, window int, h *hist) (int64, error)
}

// A mode is how the load is spread: conns connections with callers
// goroutines calling on each.
type mode struct {
	name    string
	conns   int
	callers int
}

var modes = []mode{
	{name: "sequential", conns: 1, callers: 1},
	{name: "64 callers/1 conn", conns: 1, callers: 64},
	{name: "64 conns", conns: 64, callers: 1},
}

// cellResult is what one cell measured.
type cellResult struct {
	Impl          string        `json:"impl"`
	Size          int           `json:"size"`
	Mode          string        `json:"mode"`
	Conns         int           `json:"conns"`
	Callers       int           `json:"callers_per_conn"`
	Pipelined     bool          `json:"pipelined,omitempty"`
	Window        int           `json:"window,omitempty"` // messages in flight, when pipelined
	Calls         int64         `json:"calls"`
	Elapsed       time.Duration `json:"elapsed_ns"`
	ReqPerSec     float64       `json:"req_per_s"`
	P50           time.Duration `json:"p50_ns"`
	P99           time.Duration `json:"p99_ns"`
	AllocsPerCall float64       `json:"allocs_per_call"`
	BytesPerCall  float64       `json:"bytes_per_call"`
	VsRaw         *ratios       `json:"vs_raw,omitempty"`
	VsGRPC        *ratios       `json:"vs_grpc,omitempty"`
}

// ratios compare a wsrpc cell with a reference cell of the same size and
// mode: throughput as this/reference (higher is better), latency as
// this/reference (lower is better).
type ratios struct {
	ReqPerSec float64 `json:"req_per_s"`
	P50       float64 `json:"p50"`
	P99       float64 `json:"p99"`
}

// stuckAfter is how long a phase may overrun its duration before its clients
// are closed to unblock it.
const stuckAfter = 15 * time.Second

// runCell measures one implementation, size and mode: fresh server and
// connections, a warm-up phase, then a measured phase of d.
//
// A pipeliner keeps window messages in flight (0: as many as the mode has
// callers).
func runCell(ctx context.Context, im impl, size int, m mode, window int, warm, d time.Duration) (res cellResult, err error) {
	lc, err := openCell(ctx, im, size, m, window)
	if err != nil {
		return lc.res, err
	}
	defer lc.closeCell(&err)
	if err := lc.warmUp(ctx, warm); err != nil {
		return lc.res, err
	}
	if err := lc.slice(ctx, d); err != nil {
		return lc.res, err
	}
	return lc.result()
}

// runInterleaved measures the implementations ims in one size and mode
// side by side: every one's server and connections are up at once, each is
// warmed up, then each is measured for d/rounds in turn, rounds times
// over, so that all of them see the same conditions of a machine whose
// speed drifts from one second to the next. Each result sums its slices.
func runInterleaved(ctx context.Context, ims []impl, size int, m mode, window, rounds int, warm, d time.Duration) (res []cellResult, err error) {
	cells := make([]*liveCell, 0, len(ims))
	defer func() {
		for _, lc := range cells {
			lc.closeCell(&err)
		}
	}()
	for _, im := range ims {
		lc, err := openCell(ctx, im, size, m, window)
		if err != nil {
			return nil, err
		}
		cells = append(cells, lc)
		if err := lc.warmUp(ctx, warm); err != nil {
			return nil, err
		}
	}
	for range rounds {
		for _, lc := range cells {
			if err := lc.slice(ctx, d/time.Duration(rounds)); err != nil {
				return nil, err
			}
		}
	}
	for _, lc := range cells {
		r, err := lc.result()
		if err != nil {
			return nil, err
		}
		res = append(res, r)
	}
	return res, nil
}

// A liveCell is one implementation's server and connections for a size and
// mode, with a worker per caller, and what its measured slices did.
type liveCell struct {
	res       cellResult
	workers   []worker
	hists     []hist
	clients   []*onceClient
	closeCell func(err *error)
	sum       measured
}

// openCell starts im's server and connections for a cell and makes its
// workers: one per caller; a pipeliner with many callers is one worker
// that keeps window messages in flight (0: as many as the mode has
// callers).
func openCell(ctx context.Context, im impl, size int, m mode, window int) (*liveCell, error) {
	lc := &liveCell{res: cellResult{Impl: im.name, Size: size, Mode: m.name, Conns: m.conns, Callers: m.callers}}
	if window <= 0 {
		window = m.callers
	}
	clients, closeCell, err := startCell(ctx, im, size, m.conns)
	if err != nil {
		return lc, err
	}
	lc.clients, lc.closeCell = clients, closeCell
	for _, c := range clients {
		if p, ok := c.client.(pipeliner); ok && m.callers > 1 {
			lc.res.Pipelined = true
			lc.res.Window = window
			lc.workers = append(lc.workers, func(stop *atomic.Bool, h *hist) (int64, error) {
				return p.pipeline(stop, window, h)
			})
			continue
		}
		for range m.callers {
			call := c.caller()
			lc.workers = append(lc.workers, func(stop *atomic.Bool, h *hist) (int64, error) {
				var n int64
				for !stop.Load() {
					start := time.Now()
					if err := call(); err != nil {
						return n, err
					}
					h.add(time.Since(start))
					n++
				}
				return n, nil
			})
		}
	}
	lc.hists = make([]hist, len(lc.workers))
	return lc, nil
}

// warmUp runs the workers for d, unmeasured.
func (lc *liveCell) warmUp(ctx context.Context, d time.Duration) error {
	if _, _, err := phase(ctx, lc.workers, lc.hists, lc.clients, d); err != nil {
		return fmt.Errorf("%s: warm-up: %w", lc.res.Impl, err)
	}
	for i := range lc.hists {
		lc.hists[i] = hist{}
	}
	return nil
}

// slice measures the workers for d and adds what they did to the cell's sum.
func (lc *liveCell) slice(ctx context.Context, d time.Duration) error {
	ms, err := measureSlice(ctx, lc.workers, lc.hists, lc.clients, d)
	if err != nil {
		return fmt.Errorf("%s: %w", lc.res.Impl, err)
	}
	lc.sum.add(ms)
	return nil
}

// result is the cell's figures over its measured slices.
func (lc *liveCell) result() (cellResult, error) {
	res, ms := lc.res, lc.sum
	if ms.n == 0 {
		return res, fmt.Errorf("%s: no call completed", res.Impl)
	}
	var all hist
	for i := range lc.hists {
		all.merge(&lc.hists[i])
	}
	res.Calls = ms.n
	res.Elapsed = ms.elapsed
	res.ReqPerSec = float64(ms.n) / ms.elapsed.Seconds()
	res.P50 = all.quantile(0.50)
	res.P99 = all.quantile(0.99)
	res.AllocsPerCall = float64(ms.mallocs) / float64(ms.n)
	res.BytesPerCall = float64(ms.bytes) / float64(ms.n)
	return res, nil
}

// startCell starts im's server for payloads of size bytes and dials conns
// connections to it. closeCell closes the connections, then the server,
// and sets *err to the first failure unless it holds one already.
func startCell(ctx context.Context, im impl, size, conns int) (clients []*onceClient, closeCell func(err *error), err error) {
	ep, err := im.listen(ctx, size)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: listen: %w", im.name, err)
	}
	closeCell = func(err *error) {
		for _, c := range clients {
			if cerr := c.close(); cerr != nil && *err == nil {
				*err = fmt.Errorf("%s: close client: %w", im.name, cerr)
			}
		}
		if cerr := ep.close(); cerr != nil && *err == nil {
			*err = fmt.Errorf("%s: close server: %w", im.name, cerr)
		}
	}
	for range conns {
		c, derr := ep.dial(ctx)
		if derr != nil {
			err = fmt.Errorf("%s: dial: %w", im.name, derr)
			closeCell(&err)
			return nil, nil, err
		}
		clients = append(clients, &onceClient{client: c})
	}
	return clients, closeCell, nil
}

// A worker runs until stop is set, recording latencies in h (nil when the
// cell records none), and returns what it completed.
type worker func(stop *atomic.Bool, h *hist) (int64, error)

// measured is what the measured phase of a cell did.
type measured struct {
	n              int64         // operations the workers completed
	elapsed        time.Duration // from the start until the last worker stopped
	mallocs, bytes uint64        // heap allocations of the whole process meanwhile
	cpu            time.Duration // this process's user + system time meanwhile
	busy           time.Duration // the whole machine's busy time meanwhile
	reads, writes  int64         // this process's read and write system calls meanwhile
}

// add adds what another slice of the same cell did.
func (m *measured) add(o measured) {
	m.n += o.n
	m.elapsed += o.elapsed
	m.mallocs += o.mallocs
	m.bytes += o.bytes
	m.cpu += o.cpu
	m.busy += o.busy
	m.reads += o.reads
	m.writes += o.writes
}

// measurePhases runs the workers for warm, unmeasured, then (after a GC and
// with the histograms reset) for d, and returns what they did in the
// second phase. hists is nil or has one histogram per worker.
func measurePhases(ctx context.Context, workers []worker, hists []hist, clients []*onceClient, warm, d time.Duration) (measured, error) {
	if _, _, err := phase(ctx, workers, hists, clients, warm); err != nil {
		return measured{}, fmt.Errorf("warm-up: %w", err)
	}
	for i := range hists {
		hists[i] = hist{}
	}
	return measureSlice(ctx, workers, hists, clients, d)
}

// measureSlice runs the workers for d, after a GC, and returns what they
// did; their latencies add to hists (nil, or one histogram per worker).
func measureSlice(ctx context.Context, workers []worker, hists []hist, clients []*onceClient, d time.Duration) (measured, error) {
	runtime.GC()
	var before, after runtime.MemStats
	// Outside the MemStats: reading /proc allocates.
	cpu0, busy0 := cpuTime(), machineBusy()
	r0, w0 := ioSyscalls("self")
	runtime.ReadMemStats(&before)
	n, elapsed, err := phase(ctx, workers, hists, clients, d)
	runtime.ReadMemStats(&after)
	r1, w1 := ioSyscalls("self")
	cpu1, busy1 := cpuTime(), machineBusy()
	if err != nil {
		return measured{}, err
	}
	return measured{n: n, elapsed: elapsed, mallocs: after.Mallocs - before.Mallocs, bytes: after.TotalAlloc - before.TotalAlloc,
		cpu: cpu1 - cpu0, busy: busy1 - busy0, reads: r1 - r0, writes: w1 - w0}, nil
}

// phase runs every worker for d and returns the calls they completed and the
// time from the start until the last worker stopped (calls in flight when
// the time is up finish and count). If the workers do not stop within
// stuckAfter of the deadline, the clients are closed to unblock them. hists
// is nil (the workers get a nil *hist) or has one histogram per worker.
func phase(ctx context.Context, workers []worker, hists []hist, clients []*onceClient, d time.Duration) (int64, time.Duration, error) {
	var stop atomic.Bool
	var total atomic.Int64
	errs := make(chan error, len(workers))
	var wg sync.WaitGroup
	start := time.Now()
	for i, w := range workers {
		wg.Go(func() {
			var h *hist
			if hists != nil {
				h = &hists[i]
			}
			n, err := w(&stop, h)
			total.Add(n)
			if err != nil {
				errs <- err
				stop.Store(true) // one failure ends the phase
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }() // owned: waited for through done below

	t := time.NewTimer(d)
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-done:
	}
	t.Stop()
	stop.Store(true)
	stuck := time.NewTimer(stuckAfter)
	defer stuck.Stop()
	select {
	case <-done:
	case <-stuck.C:
		for _, c := range clients {
			c.close()
		}
		<-done
		return 0, 0, fmt.Errorf("calls still blocked %s after the phase ended", stuckAfter)
	}
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return 0, 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	return total.Load(), elapsed, nil
}

var errShortReply = errors.New("reply has the wrong size")

// onceClient makes close idempotent: a stuck phase closes the clients, and
// runCell closes them again when it returns.
type onceClient struct {
	client
	once sync.Once
	err  error
}

func (c *onceClient) close() error {
	c.once.Do(func() { c.err = c.client.close() })
	return c.err
}
