package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// The fan-out mode (-fanout, issue 13): one topic, N subscribers with one
// connection each, one publisher, all in this process on loopback. Every
// system is measured cell by cell (subscribers × payload size), one after
// another, in two phases:
//
//   - saturation: the publisher publishes as fast as it can, but never more
//     than -fanout-window publications ahead of the slowest subscriber, so
//     the figure is throughput and not each system's overload policy;
//   - fixed load: -fanout-rate deliveries/s in total (rate/N publications/s),
//     paced by the clock, for the delivery latency.
//
// Each publication's payload carries the time it was published, so a
// subscriber computes the delivery latency from the bytes it reads. The
// subscribers are minimal coder/websocket clients that allocate nothing per
// message (a reused read buffer, the payloads found by scanning the bytes),
// the same loop for every system, so that their cost does not hide the
// servers'.

// fanoutConfig is one -fanout run.
type fanoutConfig struct {
	subs    []int
	sizes   []int
	systems []fanSystem
	d, warm time.Duration // each phase; the unmeasured saturation before them
	rate    int           // deliveries/s in total in the fixed-load phase
	window  int           // publications the publisher may be ahead of the slowest subscriber
	profile string        // CPU profile of the whole run, if set
	json    bool
}

// A fanSystem is one pub/sub implementation under test. start starts its
// server on loopback for payloads of size bytes and connects one subscriber
// per element of subs, each read by subs[i].read (fanSub.start); when it
// returns, every subscriber is subscribed and will receive every
// publication published from then on. On error it has closed whatever it
// started.
type fanSystem struct {
	name  string
	start func(ctx context.Context, size int, subs []*fanSub) (fanTarget, error)
}

// A fanTarget is a running system: publish sends one publication to the
// topic (p is the publication's data, a JSON string; the callee may keep
// it); close closes the subscribers' connections and the server and waits
// for the server's goroutines.
type fanTarget interface {
	publish(p []byte) error
	close() error
}

var fanSystems = []fanSystem{
	{name: "centrifuge", start: startCentrifugeFanout},
	{name: "raw-plain", start: startRawPlainFanout},
	{name: "raw-batch", start: startRawBatchFanout},
	{name: "wsrpc", start: startWSRPCFanout},
}

// errFanoutUnavailable is what a system that cannot run in this build
// returns from start: its rows say so instead of failing the run.
var errFanoutUnavailable = errors.New("not available")

const (
	fanTopic       = "bench"          // the one topic (centrifuge: channel)
	fanSettle      = 5 * time.Second  // at the end of a phase, for the subscribers to get what was published
	fanStuck       = 15 * time.Second // the publisher waiting this long on a subscriber that makes no progress ends the cell
	fanDialers     = 32               // subscribers connecting at once
	fanReadLimit   = 8 << 20          // the subscribers' read limit: batches of queued publications are large
	fanMinSize     = 24               // a payload holds the quotes, the mark and the stamp
	fanGoroutineOK = 2                // goroutines allowed above the level before the cell, once it has closed
)

// parseFanoutConfig checks the -fanout flags.
func parseFanoutConfig(subs, sizes, systems string, rate, window int) (fanoutConfig, error) {
	var cfg fanoutConfig
	var err error
	if cfg.subs, err = parseInts(subs, 1); err != nil {
		return cfg, fmt.Errorf("-fanout-subs: %w", err)
	}
	if cfg.sizes, err = parseInts(sizes, fanMinSize); err != nil {
		return cfg, fmt.Errorf("-fanout-sizes: %w", err)
	}
	if cfg.systems, err = pick(fanSystems, systems, func(s fanSystem) string { return s.name }); err != nil {
		return cfg, fmt.Errorf("-fanout-systems: %w", err)
	}
	if rate < 1 || window < 2 {
		return cfg, errors.New("-fanout-rate must be at least 1 and -fanout-window at least 2")
	}
	cfg.rate, cfg.window = rate, window
	return cfg, nil
}

func parseInts(list string, least int) ([]int, error) {
	var out []int
	for s := range strings.SplitSeq(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < least {
			return nil, fmt.Errorf("%q is not a number of at least %d", s, least)
		}
		out = append(out, n)
	}
	return out, nil
}

// fanPhase is what one phase of one cell measured.
type fanPhase struct {
	Publications int64         `json:"publications"`
	Deliveries   int64         `json:"deliveries"`
	Lost         int64         `json:"lost"`         // publications × subscribers − deliveries, after the settle
	Disconnected int           `json:"disconnected"` // subscribers whose connection ended during the phase
	Elapsed      time.Duration `json:"elapsed_ns"`   // from the first publication until every subscriber got the last (or the settle ran out)
	PerSec       float64       `json:"deliveries_per_s"`
	CPUPerDlv    float64       `json:"cpu_ns_per_delivery"` // user+sys of the whole process ÷ deliveries
	Cores        float64       `json:"cores"`               // user+sys ÷ elapsed
	MachineCores float64       `json:"machine_cores"`       // the whole machine's busy time (/proc/stat) ÷ elapsed: other processes show as machine − cores
	AllocsPerDlv float64       `json:"allocs_per_delivery"` // both ends
	P50          time.Duration `json:"p50_ns,omitempty"`
	P99          time.Duration `json:"p99_ns,omitempty"`
	// A target whose servers run in other processes (fanProcs, -nats):
	// their user+sys time and write system calls over the phase, and
	// nats-server's time.
	ServerCPU    time.Duration `json:"server_cpu_ns,omitempty"`
	ServerWrites int64         `json:"server_write_syscalls,omitempty"`
	BrokerCPU    time.Duration `json:"broker_cpu_ns,omitempty"`
}

// fanProcs is implemented by a fanTarget whose servers are other processes
// of this machine: phase reads their figures from /proc.
type fanProcs interface {
	pids() (servers, brokers []int)
}

// fanResult is one system in one cell.
type fanResult struct {
	System  string   `json:"system"`
	Subs    int      `json:"subscribers"`
	Size    int      `json:"size"`
	Skipped string   `json:"skipped,omitempty"` // why the system did not run
	Sat     fanPhase `json:"saturation"`
	Fixed   fanPhase `json:"fixed_load"`
	// The process before the cell and after it closed everything.
	FDsBefore    int        `json:"fds_before"`
	FDsAfter     int        `json:"fds_after"`
	GsBefore     int        `json:"goroutines_before"`
	GsAfter      int        `json:"goroutines_after"`
	Leak         string     `json:"leak,omitempty"`
	VsCentrifuge *fanRatios `json:"vs_centrifuge,omitempty"`
}

// fanRatios compare a row with centrifuge's in the same cell.
type fanRatios struct {
	PerSec    float64 `json:"deliveries_per_s"`       // higher is better
	CPUPerDlv float64 `json:"cpu_per_delivery"`       // lower is better
	P99       float64 `json:"fixed_load_p99"`         // lower is better
	FixedCPU  float64 `json:"fixed_load_cpu_per_dlv"` // lower is better
}

// runFanout is the -fanout mode.
func runFanout(ctx context.Context, cfg fanoutConfig, stdout, stderr io.Writer) int {
	if _, err := raiseNoFile(); err != nil {
		fmt.Fprintf(stderr, "wsrpc-bench: -fanout: raising the fd limit: %v\n", err)
	}
	return profiled(cfg.profile, stderr, func() int {
		rows, err := measureFanout(ctx, cfg, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "wsrpc-bench: -fanout: %v\n", err)
			return 1
		}
		rep := newFanReport(cfg, rows)
		return printReport(stdout, stderr, cfg.json, rep, rep.writeTable)
	})
}

// profiled runs f and returns its exit status, with the process's CPU
// profile written to path meanwhile when path is set.
func profiled(path string, stderr io.Writer, f func() int) int {
	if path != "" {
		stop, err := startCPUProfile(path)
		if err != nil {
			fmt.Fprintf(stderr, "wsrpc-bench: %v\n", err)
			return 1
		}
		defer stop()
	}
	return f()
}

// startCPUProfile starts the process's CPU profile into the file path;
// stop ends it and closes the file.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// measureFanout runs every cell of cfg, reporting progress.
func measureFanout(ctx context.Context, cfg fanoutConfig, progress io.Writer) ([]fanResult, error) {
	var rows []fanResult
	// The latency histograms, one per subscriber, reused from cell to cell.
	hists := make([]hist, slices.Max(cfg.subs))
	for _, size := range cfg.sizes {
		for _, n := range cfg.subs {
			for _, sys := range cfg.systems {
				res, err := runFanCell(ctx, sys, cfg, n, size, hists[:n])
				if errors.Is(err, errFanoutUnavailable) {
					res.Skipped = err.Error()
					fmt.Fprintf(progress, "%4d subs %6s  %-13s  skipped: %v\n", n, fmtSize(size), sys.name, err)
					rows = append(rows, res)
					continue
				}
				if err != nil {
					return rows, fmt.Errorf("%s, %d subscribers, %s: %w", sys.name, n, fmtSize(size), err)
				}
				fmt.Fprintf(progress, "%4d subs %6s  %-13s  sat %9.0f dlv/s %6s CPU/dlv lost %d | fixed p50 %-8s p99 %-8s lost %d | fds %d→%d goroutines %d→%d%s\n",
					n, fmtSize(size), sys.name, res.Sat.PerSec, fmtNs(res.Sat.CPUPerDlv), res.Sat.Lost,
					fmtDur(res.Fixed.P50), fmtDur(res.Fixed.P99), res.Fixed.Lost,
					res.FDsBefore, res.FDsAfter, res.GsBefore, res.GsAfter, leakNote(res.Leak))
				rows = append(rows, res)
			}
		}
	}
	return rows, nil
}

func leakNote(s string) string {
	if s == "" {
		return ""
	}
	return "  LEAK: " + s
}

// fanRun is the state one cell's subscribers share with its publisher.
type fanRun struct {
	window  int
	rec     atomic.Bool   // the subscribers record latencies (the fixed-load phase)
	wake    chan struct{} // the publisher is told that a subscriber it waits for caught up or died
	readers sync.WaitGroup
	subs    []*fanSub
	pubs    int64 // published so far in this cell; the publisher's goroutine only
	timer   *time.Timer
}

func (r *fanRun) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// A fanSub is one subscriber: a connection read by one goroutine, which
// counts the publications it finds.
type fanSub struct {
	got    atomic.Int64 // publications received
	wakeAt atomic.Int64 // signal the publisher when got reaches this (0: nobody waits)
	ended  atomic.Bool  // the connection ended
	run    *fanRun
	lat    *hist // written by the reader while run.rec is set; read once it has returned
	err    error // why the reader stopped; read once it has returned
	_      [64]byte
}

// start reads ws in a goroutine of its own until the connection ends.
// other, if not nil, sees each message first, in the reader's goroutine
// (to answer a protocol's ping, say); an error from it ends the reader.
func (s *fanSub) start(ws *websocket.Conn, other func(msg []byte) error) {
	ws.SetReadLimit(fanReadLimit)
	s.run.readers.Add(1)
	go s.read(ws, other) // owned: waited for through run.readers
}

func (s *fanSub) read(ws *websocket.Conn, other func([]byte) error) {
	defer s.run.readers.Done()
	defer func() {
		s.ended.Store(true)
		s.run.signal()
	}()
	buf := make([]byte, 16<<10)
	for {
		msg, err := readMessage(ws, &buf)
		if err != nil {
			s.err = err
			return
		}
		if other != nil {
			if err := other(msg); err != nil {
				s.err = err
				return
			}
		}
		s.receive(msg)
	}
}

// readMessage reads ws's next message into *buf (grown as needed, reused
// from call to call) and returns it; it allocates nothing once *buf is
// large enough.
func readMessage(ws *websocket.Conn, buf *[]byte) ([]byte, error) {
	_, r, err := ws.Reader(context.Background()) // see DEPENDENCIES.md: CloseNow unblocks it
	if err != nil {
		return nil, err
	}
	n := 0
	for {
		m, err := io.ReadFull(r, (*buf)[n:])
		n += m
		if err == nil { // the buffer is full and the message may go on
			nb := make([]byte, 2*len(*buf))
			copy(nb, *buf)
			*buf = nb
			continue
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return (*buf)[:n], nil
		}
		return nil, err
	}
}

// receive counts the publications msg holds and wakes the publisher if it
// waits for this subscriber. One goroutine calls it for a subscriber.
func (s *fanSub) receive(msg []byte) {
	k := s.scan(msg)
	if k == 0 {
		return
	}
	got := s.got.Add(k)
	if w := s.wakeAt.Load(); w != 0 && got >= w && s.wakeAt.CompareAndSwap(w, 0) {
		s.run.signal()
	}
}

// The payload of a publication is a JSON string of exactly the cell's size:
// a quote, stampMark, the publish time in unix nanoseconds as stampDigits
// digits, a colon, padding, a quote. A subscriber counts publications by
// counting the stamps (a quote, the mark, the digits, a colon), however many
// a message packs; no envelope of the systems under test holds one.
const (
	stampMark   = '@'
	stampDigits = 19
)

// scan counts the publications in msg and, while the run records, adds
// their latencies (all of them received now) to the histogram.
func (s *fanSub) scan(msg []byte) int64 {
	var k int64
	rec := s.run.rec.Load()
	var now int64
	if rec {
		now = time.Now().UnixNano()
	}
	for i := 0; ; {
		j := bytes.IndexByte(msg[i:], stampMark)
		if j < 0 {
			return k
		}
		i += j + 1 // just after the mark
		if i+stampDigits >= len(msg) {
			return k
		}
		ts, ok := parseStamp(msg[i : i+stampDigits])
		if !ok || i < 2 || msg[i-2] != '"' || msg[i+stampDigits] != ':' {
			continue
		}
		if rec {
			s.lat.add(time.Duration(now - ts))
		}
		i += stampDigits
		k++
	}
}

func parseStamp(b []byte) (int64, bool) {
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// newPayload returns the template of size bytes; stamped copies it.
func newPayload(size int) []byte {
	p := bytes.Repeat([]byte{'x'}, size)
	p[0], p[1], p[2+stampDigits], p[size-1] = '"', stampMark, ':', '"'
	return p
}

func stamped(tmpl []byte, now int64) []byte {
	p := make([]byte, len(tmpl))
	copy(p, tmpl)
	for i := 1 + stampDigits; i > 1; i-- {
		p[i] = byte('0' + now%10)
		now /= 10
	}
	return p
}

// runFanCell measures one system with n subscribers and payloads of size
// bytes: a fresh server and fresh connections, the warm-up, the two phases,
// then everything closed.
func runFanCell(ctx context.Context, sys fanSystem, cfg fanoutConfig, n, size int, hists []hist) (res fanResult, err error) {
	res = fanResult{System: sys.name, Subs: n, Size: size}
	runtime.GC()
	res.FDsBefore, _ = countFDs()
	res.GsBefore = runtime.NumGoroutine()
	run := &fanRun{window: cfg.window, wake: make(chan struct{}, 1), timer: time.NewTimer(time.Hour)}
	defer run.timer.Stop()
	clear(hists)
	for i := range n {
		run.subs = append(run.subs, &fanSub{run: run, lat: &hists[i]})
	}
	tgt, err := sys.start(ctx, size, run.subs)
	if err != nil {
		run.readers.Wait()
		return res, err
	}
	closed := false
	closeAll := func() error {
		if closed {
			return nil
		}
		closed = true
		err := tgt.close()
		run.readers.Wait()
		return err
	}
	defer func() {
		if cerr := closeAll(); cerr != nil && err == nil {
			err = fmt.Errorf("close: %w", cerr)
		}
	}()

	tmpl := newPayload(size)
	if cfg.warm > 0 {
		if _, err := run.phase(ctx, tgt, func() error { return run.saturate(ctx, tgt, tmpl, cfg.warm) }); err != nil {
			return res, fmt.Errorf("warm-up: %w", err)
		}
	}
	if res.Sat, err = run.phase(ctx, tgt, func() error { return run.saturate(ctx, tgt, tmpl, cfg.d) }); err != nil {
		return res, fmt.Errorf("saturation: %w", err)
	}
	run.rec.Store(true)
	if res.Fixed, err = run.phase(ctx, tgt, func() error { return run.fixed(ctx, tgt, tmpl, cfg.rate, cfg.d) }); err != nil {
		return res, fmt.Errorf("fixed load: %w", err)
	}
	run.rec.Store(false)
	if err := closeAll(); err != nil {
		return res, fmt.Errorf("close: %w", err)
	}
	var all hist
	for i := range hists {
		all.merge(&hists[i])
	}
	res.Fixed.P50, res.Fixed.P99 = all.quantile(0.50), all.quantile(0.99)

	// What the cell leaves: the fds at once, the goroutines within a second
	// or two (servers wind down their connections' goroutines after the
	// clients have gone).
	deadline := time.Now().Add(3 * time.Second)
	for {
		res.FDsAfter, _ = countFDs()
		res.GsAfter = runtime.NumGoroutine()
		if res.FDsAfter <= res.FDsBefore && res.GsAfter <= res.GsBefore+fanGoroutineOK || time.Now().After(deadline) {
			break
		}
		wait(ctx, 10*time.Millisecond)
	}
	if res.FDsAfter > res.FDsBefore {
		res.Leak = fmt.Sprintf("%d fds", res.FDsAfter-res.FDsBefore)
	}
	if res.GsAfter > res.GsBefore+fanGoroutineOK {
		res.Leak = strings.TrimPrefix(res.Leak+fmt.Sprintf(", %d goroutines", res.GsAfter-res.GsBefore), ", ")
	}
	return res, nil
}

// phase runs publish (a loop that publishes through tgt and counts in
// r.pubs), waits until every subscriber has got every publication (at most
// fanSettle), and returns the figures of the phase.
func (r *fanRun) phase(ctx context.Context, tgt fanTarget, publish func() error) (fanPhase, error) {
	var p fanPhase
	runtime.GC()
	base := make([]int64, len(r.subs))
	ended := 0
	for i, s := range r.subs {
		base[i] = s.got.Load()
		if s.ended.Load() {
			ended++
		}
	}
	pubs0 := r.pubs
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	pt, _ := tgt.(fanProcs)
	var servers0, brokers0 procUsage
	if pt != nil {
		servers0, brokers0 = readProcs(pt)
	}
	cpu0, busy0 := cpuTime(), machineBusy()
	start := time.Now()
	err := publish()
	if err == nil {
		_, err = r.waitFor(ctx, r.pubs, time.Now().Add(fanSettle), false)
	}
	p.Elapsed = time.Since(start)
	cpu, busy := cpuTime()-cpu0, machineBusy()-busy0
	if pt != nil {
		servers, brokers := readProcs(pt)
		p.ServerCPU, p.ServerWrites = servers.cpu-servers0.cpu, servers.writes-servers0.writes
		p.BrokerCPU = brokers.cpu - brokers0.cpu
	}
	runtime.ReadMemStats(&ms1)
	if err != nil {
		return p, err
	}
	p.Publications = r.pubs - pubs0
	for i, s := range r.subs {
		got := s.got.Load() - base[i]
		p.Deliveries += got
		p.Lost += max(0, p.Publications-got)
		if s.ended.Load() {
			p.Disconnected++
		}
	}
	p.Disconnected -= ended
	if p.Deliveries == 0 {
		return p, errors.New("no publication was delivered")
	}
	p.PerSec = float64(p.Deliveries) / p.Elapsed.Seconds()
	p.CPUPerDlv = float64(cpu) / float64(p.Deliveries)
	p.Cores = float64(cpu) / float64(p.Elapsed)
	p.MachineCores = float64(busy) / float64(p.Elapsed)
	p.AllocsPerDlv = float64(ms1.Mallocs-ms0.Mallocs) / float64(p.Deliveries)
	return p, nil
}

// cpuTime is the user and system time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineBusy is the time every CPU of the machine has spent busy so far
// (the first line of /proc/stat, less idle and iowait), 0 where it cannot
// be read.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest time is already in user
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * (time.Second / 100) // USER_HZ is 100 on Linux
}

// saturate publishes as fast as it can for d, never more than r.window
// publications ahead of the slowest subscriber still connected. When it is
// that far ahead it waits until the slowest is at most half the window
// behind, so that it wakes once per half window rather than once per
// publication.
func (r *fanRun) saturate(ctx context.Context, tgt fanTarget, tmpl []byte, d time.Duration) error {
	end := time.Now().Add(d)
	floor := r.minGot() // a lower bound of every live subscriber's count
	for i := 0; ; i++ {
		if r.pubs-floor >= int64(r.window) {
			var err error
			if floor, err = r.waitFor(ctx, r.pubs-int64(r.window/2), time.Time{}, true); err != nil {
				return err
			}
		}
		now := time.Now()
		if !now.Before(end) {
			return nil
		}
		if i%64 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if err := tgt.publish(stamped(tmpl, now.UnixNano())); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		r.pubs++
	}
}

// fixed publishes rate/len(subs) publications a second for d, each at its
// time on a schedule from the start (late ones go at once, so the rate
// holds), whatever the subscribers do.
func (r *fanRun) fixed(ctx context.Context, tgt fanTarget, tmpl []byte, rate int, d time.Duration) error {
	perSec := float64(rate) / float64(len(r.subs))
	n := int(perSec * d.Seconds())
	interval := time.Duration(float64(time.Second) / perSec)
	start := time.Now()
	for i := range max(n, 1) {
		due := start.Add(time.Duration(i) * interval)
		if w := time.Until(due); w > 0 {
			time.Sleep(w)
		}
		if i%64 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if err := tgt.publish(stamped(tmpl, time.Now().UnixNano())); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		r.pubs++
	}
	return nil
}

// minGot is the lowest count of the subscribers still connected, and the
// index of that subscriber (-1 when none is).
func (r *fanRun) minGotAt() (int64, int) {
	least, at := int64(-1), -1
	for i, s := range r.subs {
		if s.ended.Load() {
			continue
		}
		if g := s.got.Load(); at < 0 || g < least {
			least, at = g, i
		}
	}
	return least, at
}

func (r *fanRun) minGot() int64 {
	m, _ := r.minGotAt()
	return max(m, 0)
}

// waitFor waits until every subscriber still connected has got target
// publications and returns the lowest count then. With a zero deadline it
// waits while the subscribers make progress, and fails after fanStuck
// without any; otherwise it returns at the deadline, without an error
// (what is missing then counts as lost). It fails when every subscriber
// has gone and need is set.
func (r *fanRun) waitFor(ctx context.Context, target int64, deadline time.Time, need bool) (int64, error) {
	lastMin, lastMove := int64(-1), time.Now()
	for {
		m, at := r.minGotAt()
		if at < 0 {
			if need {
				return 0, errors.New("every subscriber has disconnected")
			}
			return 0, nil
		}
		if m >= target {
			return m, nil
		}
		now := time.Now()
		if m != lastMin {
			lastMin, lastMove = m, now
		}
		if !deadline.IsZero() && now.After(deadline) {
			return m, nil
		}
		if deadline.IsZero() && now.Sub(lastMove) > fanStuck {
			s := r.subs[at]
			return m, fmt.Errorf("subscriber %d got no publication for %s (%d of %d)", at, fanStuck, s.got.Load(), r.pubs)
		}
		s := r.subs[at]
		s.wakeAt.Store(target)
		if s.got.Load() >= target || s.ended.Load() {
			s.wakeAt.Store(0)
			continue
		}
		r.timer.Reset(100 * time.Millisecond)
		select {
		case <-r.wake:
		case <-r.timer.C:
		case <-ctx.Done():
			r.timer.Stop()
			return m, ctx.Err()
		}
		r.timer.Stop()
		s.wakeAt.Store(0)
	}
}

// dialFanSubs connects len(subs) subscribers with dial, fanDialers at a
// time, and starts each one's reader. On error it closes those it
// connected.
func dialFanSubs(ctx context.Context, subs []*fanSub, dial func(ctx context.Context, s *fanSub) (*websocket.Conn, error)) ([]*websocket.Conn, error) {
	return dialEach(ctx, subs, dial, closeFanConns)
}

// dialEach makes one connection per subscriber with dial, fanDialers at a
// time, each bounded by 10 s. On error it closes with closeAll those it made
// (closeAll skips the zero values) and returns nil.
func dialEach[C any](ctx context.Context, subs []*fanSub, dial func(ctx context.Context, s *fanSub) (C, error), closeAll func([]C)) ([]C, error) {
	conns := make([]C, len(subs))
	errs := make([]error, len(subs))
	sem := make(chan struct{}, fanDialers)
	var wg sync.WaitGroup
	for i, s := range subs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			conns[i], errs[i] = dial(dctx, s)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		closeAll(conns)
		return nil, fmt.Errorf("subscribers: %w", err)
	}
	return conns, nil
}

// closeFanConns closes the subscribers' connections at once (no closing
// handshake: the servers see the connection end), which unblocks their
// readers.
func closeFanConns(conns []*websocket.Conn) {
	for _, c := range conns {
		if c != nil {
			c.CloseNow()
		}
	}
}

// fanReport is the -fanout run's output.
type fanReport struct {
	Meta    meta        `json:"meta"`
	Rate    int         `json:"fixed_load_deliveries_per_s"`
	Window  int         `json:"window"`
	Rows    []fanResult `json:"rows"`
	Targets []target    `json:"targets"`
}

// newFanReport adds to each row its ratios to centrifuge's in the same
// cell, and checks the issue's targets for wsrpc's rows.
func newFanReport(cfg fanoutConfig, rows []fanResult) *fanReport {
	r := &fanReport{Meta: newMeta(), Rate: cfg.rate, Window: cfg.window, Rows: rows}
	r.Meta.Duration, r.Meta.Warm = cfg.d.String(), cfg.warm.String()
	find := func(sys string, subs, size int) *fanResult {
		for i := range r.Rows {
			c := &r.Rows[i]
			if c.System == sys && c.Subs == subs && c.Size == size && c.Skipped == "" {
				return c
			}
		}
		return nil
	}
	div := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	for i := range r.Rows {
		c := &r.Rows[i]
		ref := find(fanSystems[0].name, c.Subs, c.Size)
		if c.Skipped != "" || ref == nil {
			continue
		}
		c.VsCentrifuge = &fanRatios{
			PerSec:    div(c.Sat.PerSec, ref.Sat.PerSec),
			CPUPerDlv: div(c.Sat.CPUPerDlv, ref.Sat.CPUPerDlv),
			P99:       div(float64(c.Fixed.P99), float64(ref.Fixed.P99)),
			FixedCPU:  div(c.Fixed.CPUPerDlv, ref.Fixed.CPUPerDlv),
		}
	}
	// Issue 13's targets, for 100 and 1,000 subscribers.
	for _, c := range r.Rows {
		if c.System != "wsrpc" || c.Skipped != "" || c.Subs < 100 {
			continue
		}
		cell := fmt.Sprintf("wsrpc, %d subs, %s", c.Subs, fmtSize(c.Size))
		if v := c.VsCentrifuge; v != nil {
			limit := 1.5
			if c.Size >= 1024 {
				limit = 1.1
			}
			r.Targets = append(r.Targets,
				target{Name: cell + ": deliveries/s vs centrifuge (saturation)", Value: v.PerSec, Op: "≥", Limit: limit, Unit: "×", Pass: v.PerSec >= limit},
				target{Name: cell + ": p99 vs centrifuge (fixed load)", Value: v.P99, Op: "≤", Limit: 1, Unit: "×", Pass: v.P99 <= 1})
		}
		lost := float64(c.Sat.Lost + c.Fixed.Lost)
		r.Targets = append(r.Targets,
			target{Name: cell + ": publications lost (both phases)", Value: lost, Op: "≤", Limit: 0, Unit: "", Pass: lost == 0},
			target{Name: cell + ": allocations per delivery (both ends, saturation)", Value: c.Sat.AllocsPerDlv, Op: "≤", Limit: 1, Unit: "", Pass: c.Sat.AllocsPerDlv <= 1})
	}
	return r
}

func (r *fanReport) writeTable(w io.Writer) error {
	var b strings.Builder
	m := r.Meta
	fmt.Fprintf(&b, "wsrpc-bench -fanout  %s %s/%s, %d CPUs, GOMAXPROCS=%d, loopback, one process; one topic, one connection per subscriber;\n"+
		"per cell: %s warm-up, saturation for %s (window %d), fixed load of %d deliveries/s for %s; cells run one at a time\n",
		m.Go, m.OS, m.Arch, m.CPUs, m.GOMAXPROCS, m.Warm, m.Duration, r.Window, r.Rate, m.Duration)
	b.WriteString("CPU/dlv: user+sys of the whole process (server and subscribers) ÷ deliveries; allocs: per delivery, both ends.\n" +
		"cores: this process's CPU ÷ elapsed; other: the rest of the machine's busy cores meanwhile (another process running\n" +
		"beside the bench shows here, and makes the row unreliable).\n" +
		"÷cf: this row divided by centrifuge's in the same cell (dlv/s: higher is better; CPU and p99: lower is better).\n" +
		"lost: publications × subscribers − deliveries, after a settle of up to " + fanSettle.String() + ".\n\n")
	row := func(cols ...any) {
		fmt.Fprintf(&b, "%5s  %-6s  %-10s | %10s  %6s  %8s  %6s  %5s  %5s  %6s  %4s | %8s  %8s  %6s  %8s  %4s\n", cols...)
	}
	row("", "", "", "saturation", "", "", "", "", "", "", "", "fixed load", "", "", "", "")
	row("subs", "size", "system", "dlv/s", "÷cf", "CPU/dlv", "÷cf", "cores", "other", "allocs", "lost", "p50", "p99", "÷cf", "CPU/dlv", "lost")
	var prev string
	for _, c := range r.Rows {
		group := fmt.Sprint(c.Size, c.Subs)
		if prev != "" && group != prev {
			b.WriteString("\n")
		}
		prev = group
		if c.Skipped != "" {
			fmt.Fprintf(&b, "%5d  %-6s  %-10s | %s\n", c.Subs, fmtSize(c.Size), c.System, "not run: "+c.Skipped)
			continue
		}
		r1, r2, r3 := "", "", ""
		if v := c.VsCentrifuge; v != nil && c.System != fanSystems[0].name {
			r1, r2, r3 = fmtRatio(v.PerSec), fmtRatio(v.CPUPerDlv), fmtRatio(v.P99)
		}
		row(strconv.Itoa(c.Subs), fmtSize(c.Size), c.System,
			fmt.Sprintf("%.0f", c.Sat.PerSec), r1, fmtNs(c.Sat.CPUPerDlv), r2, fmt.Sprintf("%.2f", c.Sat.Cores), fmtOther(c.Sat.MachineCores, max(0, c.Sat.MachineCores-c.Sat.Cores)),
			fmt.Sprintf("%.2f", c.Sat.AllocsPerDlv), fmtLost(c.Sat),
			fmtDur(c.Fixed.P50), fmtDur(c.Fixed.P99), r3, fmtNs(c.Fixed.CPUPerDlv), fmtLost(c.Fixed))
	}
	writeFanFooter(&b, r.Rows, "", "issue 13", r.Targets)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeFanFooter writes, under a fan-out table, the cells that left
// descriptors or goroutines open (in this process: where) and the targets.
func writeFanFooter(b *strings.Builder, rows []fanResult, where, issue string, targets []target) {
	var leaks []string
	for _, c := range rows {
		if c.Leak != "" {
			leaks = append(leaks, fmt.Sprintf("%s %d subs %s: %s", c.System, c.Subs, fmtSize(c.Size), c.Leak))
		}
	}
	if len(leaks) > 0 {
		b.WriteString("\nLeft open" + where + " after a cell closed (fds at once, goroutines within 3 s): " + strings.Join(leaks, "; ") + "\n")
	}
	if len(targets) > 0 {
		b.WriteString("\nTargets (" + issue + ")\n")
		writeTargets(b, targets)
	}
}

// fmtOther prints other, the busy cores of the machine beyond the system
// under test's (other processes, and interrupt time charged to none), "-"
// where /proc/stat could not be read (machine is 0).
func fmtOther(machine, other float64) string {
	if machine == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", other)
}

// fmtLost prints the lost publications, and the subscribers that
// disconnected, if any.
func fmtLost(p fanPhase) string {
	if p.Disconnected > 0 {
		return fmt.Sprintf("%d(%d gone)", p.Lost, p.Disconnected)
	}
	return strconv.FormatInt(p.Lost, 10)
}

// fmtNs prints a duration given in nanoseconds.
func fmtNs(ns float64) string {
	if ns < 10000 {
		return fmt.Sprintf("%.0fns", ns)
	}
	return fmtDur(time.Duration(ns))
}

// stopFanServer ends a system's cell: it drops the subscribers, shuts the
// server down (bounded), closes its HTTP side and collects what serving
// returned. The first error wins.
func stopFanServer(clients []*websocket.Conn, shutdown func(context.Context) error, closeHTTP func() error, serve <-chan error) error {
	closeFanConns(clients)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := shutdown(ctx)
	if cerr := closeHTTP(); err == nil {
		err = cerr
	}
	if serr := <-serve; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
