package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	wsclient "github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
	"github.com/wsrpc/wsrpc/transport"
)

// The soak mode runs one server in this process under every kind of load at
// once for a while, prints a row of the process's figures every interval,
// and at the end judges whether they stayed flat: a leak shows as a last
// third of the run above its first third. The loads, each on goroutines
// owned by the run and waited for at its end:
//
//   - callers: client.Dial connections making echo calls back to back;
//   - a notifier: one client.Dial connection sending a notification every ms;
//   - broadcasts: server.Broadcast of a few KiB to every connection every
//     100 ms, each bounded by 200 ms;
//   - churn: connect, one call, then a clean close, a FIN or an RST in turn
//     (see drop.go), back to back with a short pause;
//   - killed clients: every killEvery a child process opens connections,
//     makes a call on each and is killed with SIGKILL (see killed.go);
//   - slow readers (slowreader.go): raw connections that ask for large
//     replies and never read them, until the server drops them.
//
// Rows are read between killed rounds, so that no row catches a killed
// child's connections on their way in or out: those are transients, the
// question is what stays.

// The server's limits in the soak: the options a production server sets.
const (
	soakMaxInFlight  = 64
	soakWriteTimeout = 5 * time.Second
	soakHeartbeat    = 10 * time.Second
	soakPongTimeout  = 5 * time.Second
	soakHandshake    = 5 * time.Second
	soakCallTimeout  = 5 * time.Second
	soakBroadcast    = 4 << 10
)

// Flatness rule: the mean of the last third of the rows may exceed the mean
// of the first third by soakRatio, plus an absolute slack per figure (the
// noise of a run this size: a slow reader's queued replies, a GC cycle).
const soakRatio = 1.2

var soakSlack = struct {
	rssMiB, heapMiB float64
	goroutines, fds float64
}{rssMiB: 8, heapMiB: 8, goroutines: 20, fds: 20}

type soakConfig struct {
	d, interval time.Duration
	callers     int
	slow        int // slow readers at a time
	reply       int // bytes of each reply a slow reader asks for
	killed      int // connections in each killed child
	killEvery   time.Duration
}

// check validates the configuration and fills in the interval.
func (c *soakConfig) check() error {
	if c.interval == 0 {
		switch {
		case c.d >= time.Minute:
			c.interval = 5 * time.Second
		case c.d >= 8*time.Second:
			c.interval = time.Second
		default: // enough rows to compare thirds
			c.interval = max(c.d/8, 10*time.Millisecond)
		}
	}
	switch {
	case c.interval < 0:
		return errors.New("-interval must be positive")
	case c.d < 3*c.interval:
		return fmt.Errorf("-soak %s is less than 3 rows of -interval %s", c.d, c.interval)
	case c.callers < 0 || c.slow < 0 || c.killed < 0:
		return errors.New("-soak-callers, -soak-slow and -soak-killed must not be negative")
	case c.reply < 1024 || c.reply > 1<<20:
		return errors.New("-soak-reply must be from 1 KiB to 1 MiB")
	case c.killed > 0 && c.killEvery <= 0:
		return errors.New("-soak-kill-every must be positive")
	}
	return nil
}

// soakCounters are the run's counters, updated by the loads.
type soakCounters struct {
	callsOK, callErrs          atomic.Int64
	notesSent, noteErrs        atomic.Int64
	notesHandled               atomic.Int64
	broadcasts, queued         atomic.Int64 // Broadcast calls; connections they were queued on
	broadcastErrs              atomic.Int64
	churn, churnErrs           atomic.Int64
	killedRounds, killedErrs   atomic.Int64
	slowOpened, slowRefused    atomic.Int64 // refused: the handshake was refused (503), as it may be
	slowDropped, slowErrs      atomic.Int64 // dropped by the server, as expected
	slowWriteTimeout, slowPong atomic.Int64 // why the server dropped them
	slowQueueFull              atomic.Int64
	slowKept                   atomic.Int64 // still open when the run ended
}

func (c *soakCounters) errs() int64 {
	return c.callErrs.Load() + c.noteErrs.Load() + c.broadcastErrs.Load() + c.churnErrs.Load() + c.killedErrs.Load() + c.slowErrs.Load()
}

// soakRow is one reading.
type soakRow struct {
	elapsed    time.Duration
	res        resources
	conns      int
	callsPerS  float64
	notesPerS  float64
	churnPerS  float64
	killed     int64 // rounds so far
	slowDrops  int64 // so far
	errs       int64 // in this interval
	callsTotal int64
}

// soakRun is one soak: the server, its loads and what they count.
type soakRun struct {
	cfg      soakConfig
	ls       *liveServer
	url      string
	maxConns int
	n        soakCounters
	slow     slowReaders
	// slowCalls is the number of calls each slow reader sends.
	slowCalls int
	progress  io.Writer
	// quiet is held by the killed-client load from a child's start until the
	// server has let go of its connections, and by the sampler while it reads.
	quiet sync.Mutex
	// firstErr keeps the first unexpected error of each load.
	errMu    sync.Mutex
	firstErr map[string]string
}

func (s *soakRun) fail(load string, err error) {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	if _, ok := s.firstErr[load]; !ok {
		s.firstErr[load] = err.Error()
		fmt.Fprintf(s.progress, "soak: %s: %v (first error of this load)\n", load, err)
	}
}

func runSoak(ctx context.Context, cfg soakConfig, stdout, stderr io.Writer) int {
	if _, err := raiseNoFile(); err != nil {
		fmt.Fprintf(stderr, "wsrpc-bench: soak: raise RLIMIT_NOFILE: %v\n", err)
		return 1
	}
	before, err := readResources()
	if err != nil {
		fmt.Fprintf(stderr, "wsrpc-bench: soak: %v\n", err)
		return 1
	}
	s := &soakRun{cfg: cfg, progress: &lockedWriter{w: stderr}, firstErr: map[string]string{},
		maxConns: cfg.killed + cfg.callers + cfg.slow + 64}
	s.slow.gone = map[string]chan struct{}{}
	s.slowCalls = slowCalls(cfg.reply)
	if s.ls, err = startServer(s.handler(), s.options()...); err != nil {
		fmt.Fprintf(stderr, "wsrpc-bench: soak: %v\n", err)
		return 1
	}
	s.url = s.ls.url
	s.writeHeader(stdout)

	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	ready := make(chan error, cfg.callers+1)
	for range cfg.callers {
		wg.Go(func() { s.caller(loadCtx, ready) })
	}
	wg.Go(func() { s.notifier(loadCtx, ready) })
	for range cfg.callers + 1 {
		if err := <-ready; err != nil && ctx.Err() == nil {
			fmt.Fprintf(stderr, "wsrpc-bench: soak: %v\n", err)
			stopLoad()
			wg.Wait()
			s.ls.shutdown(time.Second)
			return 1
		}
	}
	wg.Go(func() { s.broadcaster(loadCtx) })
	wg.Go(func() { s.churner(loadCtx) })
	if cfg.killed > 0 {
		wg.Go(func() { s.killer(loadCtx) })
	}
	for range cfg.slow {
		wg.Go(func() { s.slowReader(loadCtx) })
	}

	rows := s.sample(ctx, stdout)
	stopLoad()
	wg.Wait()
	shutErr := s.ls.shutdown(5 * time.Second)
	after, err := readResources()
	if err != nil {
		fmt.Fprintf(stderr, "wsrpc-bench: soak: %v\n", err)
		return 1
	}
	if ctx.Err() != nil {
		fmt.Fprintf(stderr, "wsrpc-bench: soak: %v\n", ctx.Err())
		return 1
	}
	if !s.writeVerdict(stdout, rows, before, after, shutErr) {
		return 1
	}
	return 0
}

func (s *soakRun) handler() handler.Handler {
	mux := handler.NewMux()
	mux.Use(handler.Recover(nil), handler.Timeout(soakCallTimeout, 30*time.Second))
	mux.HandleFunc("echo", func(_ context.Context, req *rpc.Request) ([]byte, error) { return req.Params, nil })
	// A JSON string, so that it is a valid result on both codecs.
	big := []byte(`"` + strings.Repeat("x", s.cfg.reply-2) + `"`)
	mux.HandleFunc("big", func(context.Context, *rpc.Request) ([]byte, error) { return big, nil })
	mux.HandleFunc("note", func(context.Context, *rpc.Request) ([]byte, error) {
		s.n.notesHandled.Add(1)
		return nil, nil
	})
	return mux
}

func (s *soakRun) options() []server.Option {
	return []server.Option{
		server.WithMaxConns(s.maxConns),
		rpc.WithMaxInFlight(soakMaxInFlight),
		server.WithReadHeaderTimeout(soakHandshake),
		rpc.WithTransport(transport.ConnOptions{
			ReadLimit:         transport.DefaultReadLimit,
			WriteTimeout:      soakWriteTimeout,
			HeartbeatInterval: soakHeartbeat,
			PongTimeout:       soakPongTimeout,
			MaxQueuedBytes:    transport.DefaultMaxQueuedBytes,
			MessageTimeout:    transport.DefaultMessageTimeout,
		}),
		server.WithOnDisconnect(func(c *rpc.Peer, err error) { s.slow.ended(c, err, &s.n) }),
	}
}

// caller makes echo calls back to back on a connection of its own.
func (s *soakRun) caller(ctx context.Context, ready chan<- error) {
	c, err := wsclient.Dial(ctx, s.url, wsclient.WithCallTimeout(soakCallTimeout))
	ready <- err
	if err != nil {
		return
	}
	defer c.Close()
	const params = "soak: an echo call of sixty-four bytes, give or take a few bytes"
	var out string
	for ctx.Err() == nil {
		err := c.Call(ctx, "echo", params, &out)
		switch {
		case err == nil && out == params:
			s.n.callsOK.Add(1)
		case ctx.Err() != nil:
		case err == nil:
			s.n.callErrs.Add(1)
			s.fail("calls", errShortReply)
		default:
			s.n.callErrs.Add(1)
			s.fail("calls", err)
		}
	}
}

// notifier sends a notification every millisecond on a connection of its own.
func (s *soakRun) notifier(ctx context.Context, ready chan<- error) {
	c, err := wsclient.Dial(ctx, s.url)
	ready <- err
	if err != nil {
		return
	}
	defer c.Close()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		nctx, cancel := context.WithTimeout(ctx, soakCallTimeout)
		err := c.Notify(nctx, "note", []int{i})
		cancel()
		switch {
		case err == nil:
			s.n.notesSent.Add(1)
		case ctx.Err() == nil:
			s.n.noteErrs.Add(1)
			s.fail("notifications", err)
		}
	}
}

// broadcaster sends a few KiB to every connection every 100 ms; a
// connection that cannot take it within 200 ms misses it. Broadcast
// returns when every connection has taken it or the 200 ms have passed, so
// while a slow reader's queue is full a broadcast takes 200 ms and the
// ticks in between are skipped.
func (s *soakRun) broadcaster(ctx context.Context) {
	params := rpc.Raw(`["` + strings.Repeat("b", soakBroadcast-4) + `"]`)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		bctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		n, err := s.ls.srv.Broadcast(bctx, "tick", params, nil)
		cancel()
		s.n.broadcasts.Add(1)
		s.n.queued.Add(int64(n))
		if err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
			s.n.broadcastErrs.Add(1)
			s.fail("broadcasts", err)
		}
	}
}

// churner connects, calls and drops, in turn cleanly, with a FIN and with
// an RST, pausing 10 ms between cycles.
func (s *soakRun) churner(ctx context.Context) {
	params := make(rpc.Raw, 16)
	kinds := [...]dropKind{dropClean, dropFIN, dropRST}
	for i := 0; ; i++ {
		_, err := churnCycle(ctx, s.url, params, kinds[i%len(kinds)])
		if ctx.Err() != nil {
			return
		}
		s.n.churn.Add(1)
		if err != nil {
			s.n.churnErrs.Add(1)
			s.fail("churn", err)
		}
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// killer starts a child of killed clients every killEvery, the first after
// half of it, and holds quiet until the server has let go of them.
func (s *soakRun) killer(ctx context.Context) {
	wait := s.cfg.killEvery / 2
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = s.cfg.killEvery
		s.quiet.Lock()
		open := len(s.ls.srv.Conns())
		_, err := killClients(ctx, s.url, s.cfg.killed, s.progress)
		if ctx.Err() != nil {
			s.quiet.Unlock()
			return
		}
		s.n.killedRounds.Add(1)
		if err != nil {
			s.n.killedErrs.Add(1)
			s.fail("killed clients", err)
		}
		// Back to about as many connections as before (the other loads
		// open and close a few meanwhile), for at most 2 s.
		deadline := time.Now().Add(2 * time.Second)
		for len(s.ls.srv.Conns()) > open+4 && time.Now().Before(deadline) && ctx.Err() == nil {
			t := time.NewTimer(5 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
		}
		s.quiet.Unlock()
	}
}

// sample prints a row every interval until the run's duration has passed,
// and returns the rows.
func (s *soakRun) sample(ctx context.Context, w io.Writer) []soakRow {
	start := time.Now()
	var rows []soakRow
	var prev soakRow
	var prevErrs, prevNotes, prevChurn int64
	prevAt := start
	for k := 1; time.Duration(k)*s.cfg.interval <= s.cfg.d; k++ {
		t := time.NewTimer(time.Until(start.Add(time.Duration(k) * s.cfg.interval)))
		select {
		case <-ctx.Done():
			t.Stop()
			return rows
		case <-t.C:
		}
		s.quiet.Lock()
		res, err := readResources()
		conns := len(s.ls.srv.Conns())
		s.quiet.Unlock()
		if err != nil {
			fmt.Fprintf(s.progress, "soak: %v\n", err)
			return rows
		}
		now := time.Now()
		secs := now.Sub(prevAt).Seconds()
		prevAt = now
		r := soakRow{elapsed: now.Sub(start), res: res, conns: conns,
			callsTotal: s.n.callsOK.Load(), killed: s.n.killedRounds.Load(), slowDrops: s.n.slowDropped.Load()}
		errs, notes, churn := s.n.errs(), s.n.notesSent.Load(), s.n.churn.Load()
		r.callsPerS = float64(r.callsTotal-prev.callsTotal) / secs
		r.notesPerS = float64(notes-prevNotes) / secs
		r.churnPerS = float64(churn-prevChurn) / secs
		r.errs = errs - prevErrs
		prev, prevErrs, prevNotes, prevChurn = r, errs, notes, churn
		rows = append(rows, r)
		writeSoakRow(w, r, max(s.cfg.interval/10, time.Millisecond))
	}
	return rows
}

const soakRowFormat = "%8s  %7s  %8s  %10s  %5s  %5s  %8s  %7s  %7s  %6s  %9s  %6s\n"

func (s *soakRun) writeHeader(w io.Writer) {
	m, cfg := newMeta(), s.cfg
	fmt.Fprintf(w, "wsrpc-bench -soak %s  %s %s/%s, %d CPUs; server.New in this process, loopback; a row every %s\n",
		cfg.d, m.Go, m.OS, m.Arch, m.CPUs, cfg.interval)
	fmt.Fprintf(w, "server: WithMaxConns %d, WithMaxInFlight %d, WithReadHeaderTimeout %s; per connection: read limit %s, write timeout %s,\n"+
		"  heartbeat %s/%s, send queue bound %s, message timeout %s\n",
		s.maxConns, soakMaxInFlight, soakHandshake, fmtSize(transport.DefaultReadLimit), soakWriteTimeout, soakHeartbeat, soakPongTimeout,
		fmtSize(transport.DefaultMaxQueuedBytes), transport.DefaultMessageTimeout)
	fmt.Fprintf(w, "load: %s back to back, 1 notifier at 1/ms, a %s broadcast every 100ms, churn (clean, FIN, RST in turn), ",
		plural(cfg.callers, "caller"), fmtSize(soakBroadcast))
	if cfg.killed > 0 {
		fmt.Fprintf(w, "a child of %s killed every %s, ", plural(cfg.killed, "client"), cfg.killEvery)
	}
	fmt.Fprintf(w, "%s each asking for %d replies of %s\n", plural(cfg.slow, "slow reader"), s.slowCalls, fmtSize(cfg.reply))
	io.WriteString(w, "figures of this process (server and in-process clients); rows are read between killed rounds\n\n")
	fmt.Fprintf(w, soakRowFormat, "elapsed", "RSS MiB", "heap MiB", "goroutines", "fds", "conns",
		"calls/s", "notes/s", "churn/s", "killed", "slow drop", "errors")
}

// writeSoakRow prints r, its elapsed time rounded to round.
func writeSoakRow(w io.Writer, r soakRow, round time.Duration) {
	fmt.Fprintf(w, soakRowFormat, r.elapsed.Round(round), fmt.Sprintf("%.1f", mib(r.res.RSSKiB)),
		fmt.Sprintf("%.1f", mib(int64(r.res.HeapInuse/1024))), fmt.Sprint(r.res.Goroutines), fmt.Sprint(r.res.FDs),
		fmt.Sprint(r.conns), fmt.Sprintf("%.0f", r.callsPerS), fmt.Sprintf("%.0f", r.notesPerS),
		fmt.Sprintf("%.0f", r.churnPerS), fmt.Sprint(r.killed), fmt.Sprint(r.slowDrops), fmt.Sprint(r.errs))
}

// plural is "1 caller", "2 callers".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// soakJudgement is the flatness verdict on one figure.
type soakJudgement struct {
	name        string
	first, last float64 // means of the first and last thirds of the rows
	slack       float64
	unit        string
}

func (j soakJudgement) limit() float64 { return j.first*soakRatio + j.slack }
func (j soakJudgement) pass() bool     { return j.last <= j.limit() }

// judge compares the means of the last and the first third of rows.
func judge(rows []soakRow) []soakJudgement {
	k := max(len(rows)/3, 1)
	mean := func(rs []soakRow, f func(soakRow) float64) float64 {
		var sum float64
		for _, r := range rs {
			sum += f(r)
		}
		return sum / float64(len(rs))
	}
	figs := []struct {
		name, unit string
		slack      float64
		f          func(soakRow) float64
	}{
		{"RSS", " MiB", soakSlack.rssMiB, func(r soakRow) float64 { return mib(r.res.RSSKiB) }},
		{"heap in use", " MiB", soakSlack.heapMiB, func(r soakRow) float64 { return mib(int64(r.res.HeapInuse / 1024)) }},
		{"goroutines", "", soakSlack.goroutines, func(r soakRow) float64 { return float64(r.res.Goroutines) }},
		{"fds", "", soakSlack.fds, func(r soakRow) float64 { return float64(r.res.FDs) }},
	}
	var out []soakJudgement
	for _, fg := range figs {
		out = append(out, soakJudgement{name: fg.name, unit: fg.unit, slack: fg.slack,
			first: mean(rows[:k], fg.f), last: mean(rows[len(rows)-k:], fg.f)})
	}
	return out
}

// writeVerdict prints the totals and the judgement, and reports whether
// the run passed.
func (s *soakRun) writeVerdict(w io.Writer, rows []soakRow, before, after resources, shutErr error) bool {
	var b strings.Builder
	n := &s.n
	secs := s.cfg.d.Seconds()
	fmt.Fprintf(&b, "\ntotals over %s:\n", s.cfg.d)
	fmt.Fprintf(&b, "  calls          %d ok (%.0f/s), %d failed\n", n.callsOK.Load(), float64(n.callsOK.Load())/secs, n.callErrs.Load())
	fmt.Fprintf(&b, "  notifications  %d sent, %d handled, %d failed\n", n.notesSent.Load(), n.notesHandled.Load(), n.noteErrs.Load())
	fmt.Fprintf(&b, "  broadcasts     %d of %d ticks (one waits up to 200ms for connections that cannot take it), queued on %d connections in all, %d failed\n",
		n.broadcasts.Load(), int64(s.cfg.d/(100*time.Millisecond)), n.queued.Load(), n.broadcastErrs.Load())
	fmt.Fprintf(&b, "  churn          %d cycles (clean, FIN, RST in turn), %d failed\n", n.churn.Load(), n.churnErrs.Load())
	fmt.Fprintf(&b, "  killed         %d children of %s, %d failed\n", n.killedRounds.Load(), plural(s.cfg.killed, "connection"), n.killedErrs.Load())
	fmt.Fprintf(&b, "  slow readers   %d opened, %d dropped by the server (write timeout %d, queue full 1008 %d, pong timeout %d, other %d),\n"+
		"                 %d refused, %d still open at the end (all expected); %d failed\n",
		n.slowOpened.Load(), n.slowDropped.Load(), n.slowWriteTimeout.Load(), n.slowQueueFull.Load(), n.slowPong.Load(),
		n.slowDropped.Load()-n.slowWriteTimeout.Load()-n.slowQueueFull.Load()-n.slowPong.Load(),
		n.slowRefused.Load(), n.slowKept.Load(), n.slowErrs.Load())
	s.slow.mu.Lock()
	if s.slow.other != "" {
		fmt.Fprintf(&b, "  first other reason a slow reader was dropped: %s\n", s.slow.other)
	}
	s.slow.mu.Unlock()
	fmt.Fprintf(&b, "  after shutdown fds %d (before the server: %d, %+d), goroutines %d (%d, %+d)",
		after.FDs, before.FDs, after.FDs-before.FDs, after.Goroutines, before.Goroutines, after.Goroutines-before.Goroutines)
	if shutErr != nil {
		fmt.Fprintf(&b, "; shutdown: %v", shutErr)
	}
	b.WriteString("\n")
	s.errMu.Lock()
	for load, e := range s.firstErr {
		fmt.Fprintf(&b, "  first %s error: %s\n", load, e)
	}
	s.errMu.Unlock()

	pass := true
	k := max(len(rows)/3, 1)
	fmt.Fprintf(&b, "\nflatness: mean of the last %d rows vs the first %d; rule: last ≤ first × %.1f + slack\n", k, k, soakRatio)
	for _, j := range judge(rows) {
		verdict := "PASS"
		if !j.pass() {
			verdict, pass = "FAIL", false
		}
		ratio := 0.0
		if j.first > 0 {
			ratio = j.last / j.first
		}
		fmt.Fprintf(&b, "  %s  %-12s first %8.1f%s  last %8.1f%s  ratio %5.2f  (rule: ≤ %.1f × %.1f + %g = %.1f)\n",
			verdict, j.name, j.first, j.unit, j.last, j.unit, ratio, j.first, soakRatio, j.slack, j.limit())
	}
	errs := n.errs()
	verdict := "PASS"
	if errs > 0 {
		verdict, pass = "FAIL", false
	}
	fmt.Fprintf(&b, "  %s  %-12s %d unexpected (refused or dropped slow readers are expected, not counted)\n", verdict, "errors", errs)
	if pass {
		b.WriteString("\nPASS  flat\n")
	} else {
		b.WriteString("\nFAIL  not flat, or errors (see above)\n")
	}
	io.WriteString(w, b.String())
	return pass
}
