package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
	"github.com/wsrpc/wsrpc/transport"
)

// The attack mode reproduces the attacks of the reliability issue against
// one server in this process, server.New with its default options, and
// prints for each the figures that show the server now bounds it: this
// process's peak RSS (sampled every 50 ms from a baseline taken after a GC,
// and the kernel's VmHWM where it can be reset) and what each attack names.
// The scenarios run one after another against the same server, each
// waiting for the server's registry to be empty first, so each also shows
// that the server came through the one before:
//
//   - slow (attackslow.go): raw clients pipeline calls for large replies
//     and never read, while client.Dial callers keep calling echo;
//   - fanout (attackfanout.go): listeners that never read, and broadcasts
//     of large params;
//   - unfinished (attackunfinished.go): fragmented messages never finished;
//   - keepalive (attackkeepalive.go): plain HTTP requests, then silence;
//   - pipelined (attackpipelined.go): a raw JSON-RPC client sends a burst of
//     calls before reading any reply.
//
// The raw clients (wsraw.go) hold no payload of their own, so what the
// process holds beyond the baseline is the server's.

// attackSize is how big each attack is.
type attackSize struct {
	slowReaders, callers int
	slowHold             time.Duration // the callers run at least this long
	listeners            int
	broadcasts           int
	unfinished           int
	unfinishedBytes      int // of each unfinished message
	keepalive            int
	pipelinedCalls       int
	pipelinedRuns        int
}

// attackSizes are the -attack-scale values.
var attackSizes = map[string]attackSize{
	"full": {slowReaders: 10, callers: 4, slowHold: 2 * time.Second, listeners: 100, broadcasts: 20,
		unfinished: 200, unfinishedBytes: 1000 << 10, keepalive: 500, pipelinedCalls: 2000, pipelinedRuns: 5},
	"small": {slowReaders: 2, callers: 2, slowHold: 300 * time.Millisecond, listeners: 10, broadcasts: 20,
		unfinished: 10, unfinishedBytes: 1000 << 10, keepalive: 50, pipelinedCalls: 500, pipelinedRuns: 2},
}

// Fixed figures of the attacks.
const (
	attackReply      = 512 << 10 // bytes of the "big" reply and of each broadcast's params
	attackRSSLimit   = 100       // MiB: the default bound on the peak RSS of slow and fanout
	attackSample     = 50 * time.Millisecond
	attackCallParams = "attack: an echo call of sixty-four bytes, give or take some bytes"
	// defaultAttackMessageTimeout is the server's MessageTimeout in the
	// attack mode unless -attack-message-timeout says otherwise: short, so
	// that the unfinished attack ends in seconds.
	defaultAttackMessageTimeout = 5 * time.Second
)

type attackConfig struct {
	scenarios      []attackScenario
	scale          string
	size           attackSize
	messageTimeout time.Duration // given to the server; 0: the transport's default
	slowCalls      int           // calls each slow reader sends; 0: slowAttackCalls
	rssLimit       float64       // MiB: the bound on the peak RSS of slow and fanout
}

// attackScenario is one attack. run makes it against a.srv, closes every
// connection it opened, and says what it found.
type attackScenario struct {
	name string
	run  func(a *attackRun, ctx context.Context) attackResult
}

var attackScenarios = []attackScenario{
	{name: "slow", run: (*attackRun).slow},
	{name: "fanout", run: (*attackRun).fanout},
	{name: "unfinished", run: (*attackRun).unfinished},
	{name: "keepalive", run: (*attackRun).keepalive},
	{name: "pipelined", run: (*attackRun).pipelined},
}

// attackFlag is -attack: alone it means every scenario; -attack=a,b names
// some.
type attackFlag struct {
	on    bool
	names string
}

func (f *attackFlag) String() string {
	if f == nil || !f.on {
		return ""
	}
	if f.names == "" {
		return "true"
	}
	return f.names
}

func (f *attackFlag) Set(s string) error {
	switch s {
	case "true":
		f.on, f.names = true, ""
	case "false":
		f.on, f.names = false, ""
	default:
		if _, err := pick(attackScenarios, s, scenarioName); err != nil {
			return err
		}
		f.on, f.names = true, s
	}
	return nil
}

func (f *attackFlag) IsBoolFlag() bool { return true }

func scenarioName(s attackScenario) string { return s.name }

// attackResult is what a scenario reports.
type attackResult struct {
	target   string  // the target in words; "" when none is named
	rssLimit float64 // MiB; > 0: the peak RSS must stay below it
	ok       bool    // the scenario's own checks passed (RSS apart)
	figures  []string
	err      error // the attack could not be made
}

// attackRow is one scenario's line of the table.
type attackRow struct {
	name                string
	res                 attackResult
	elapsed             time.Duration
	base, peak, hwm     int64 // KiB; hwm -1: unknown
	heap                heapPeak
	after               int64 // KiB, after a GC once the server has let go of everything
	fdsBefore, fdsAfter int
	gsBefore, gsAfter   int
	cleanup             error // the server still had connections after the scenario
}

// peakKiB is the higher of the sampled peak and the kernel's.
func (r *attackRow) peakKiB() int64 { return max(r.peak, r.hwm) }

func (r *attackRow) pass() bool {
	return r.res.err == nil && r.cleanup == nil && r.res.ok &&
		(r.res.rssLimit <= 0 || mib(r.peakKiB()) < r.res.rssLimit)
}

// attackRun is one run of the mode: the server and what it records.
type attackRun struct {
	cfg      attackConfig
	ls       *liveServer
	addr     string // host:port of the server
	ends     serverEnds
	progress io.Writer
	big      []byte // the reply of "big": a JSON string of attackReply bytes
}

func runAttack(ctx context.Context, cfg attackConfig, stdout, stderr io.Writer) int {
	if _, err := raiseNoFile(); err != nil {
		fmt.Fprintf(stderr, "wsrpc-bench: attack: raise RLIMIT_NOFILE: %v\n", err)
		return 1
	}
	a := &attackRun{cfg: cfg, progress: &lockedWriter{w: stderr},
		big: []byte(`"` + strings.Repeat("x", attackReply-2) + `"`)}
	a.ends.byAddr = map[string]*serverEnd{}
	var err error
	if a.ls, err = startServer(a.handler(), a.options()...); err != nil {
		fmt.Fprintf(stderr, "wsrpc-bench: attack: %v\n", err)
		return 1
	}
	u, _ := url.Parse(a.ls.url)
	a.addr = u.Host
	a.writeHeader(stdout)
	failed := 0
	for _, sc := range cfg.scenarios {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(a.progress, "attack: %s …\n", sc.name)
		row := a.measure(ctx, sc)
		writeAttackRow(stdout, &row)
		if !row.pass() {
			failed++
		}
	}
	shutErr := a.ls.shutdown(5 * time.Second)
	if ctx.Err() != nil {
		fmt.Fprintf(stderr, "wsrpc-bench: attack: %v\n", ctx.Err())
		return 1
	}
	if shutErr != nil {
		fmt.Fprintf(stdout, "\nserver shutdown: %v\n", shutErr)
		failed++
	}
	if failed > 0 {
		fmt.Fprintf(stdout, "\nFAIL  %d of %d scenarios\n", failed, len(cfg.scenarios))
		return 1
	}
	fmt.Fprintf(stdout, "\nPASS  %d of %d scenarios bounded\n", len(cfg.scenarios), len(cfg.scenarios))
	return 0
}

func (a *attackRun) handler() handler.Handler {
	mux := handler.NewMux()
	mux.HandleFunc("echo", func(_ context.Context, req *rpc.Request) ([]byte, error) { return req.Params, nil })
	mux.HandleFunc("big", func(context.Context, *rpc.Request) ([]byte, error) { return a.big, nil })
	return mux
}

// options are server.New's defaults but for the message timeout, and a
// disconnect hook that only records why each connection ended.
func (a *attackRun) options() []server.Option {
	return []server.Option{
		rpc.WithTransport(transport.ConnOptions{MessageTimeout: a.cfg.messageTimeout}),
		server.WithOnDisconnect(a.ends.ended),
	}
}

// measure runs one scenario between two readings of the process.
func (a *attackRun) measure(ctx context.Context, sc attackScenario) attackRow {
	row := attackRow{name: sc.name, hwm: -1}
	fail := func(err error) attackRow {
		row.res.err = err
		return row
	}
	if err := waitNoConns(ctx, a.ls.srv, 5*time.Second); err != nil {
		return fail(fmt.Errorf("before: %w", err))
	}
	debug.FreeOSMemory() // a GC, and the memory of earlier scenarios given back
	var err error
	if row.fdsBefore, err = countFDs(); err != nil {
		return fail(err)
	}
	row.gsBefore = runtime.NumGoroutine()
	if row.base, err = vmRSS(); err != nil {
		return fail(err)
	}
	peak, err := startRSSPeak(attackSample)
	if err != nil {
		return fail(err)
	}
	start := time.Now()
	row.res = sc.run(a, ctx)
	row.elapsed = time.Since(start)
	row.cleanup = waitNoConns(ctx, a.ls.srv, 5*time.Second)
	if row.peak, row.hwm, row.heap, err = peak.stop(); err != nil && row.res.err == nil {
		row.res.err = err
	}
	settle(ctx, row.fdsBefore, row.gsBefore, 2*time.Second)
	debug.FreeOSMemory()
	row.after, _ = vmRSS()
	row.fdsAfter, _ = countFDs()
	row.gsAfter = runtime.NumGoroutine()
	return row
}

// settle waits, at most d, until the fds and goroutines are back to fds and
// gs (plus 2, the churn mode's slack): connections the server has let go
// of may still be winding down.
func settle(ctx context.Context, fds, gs int, d time.Duration) {
	w := &baselineWatch{fds: fds + 2, gs: gs + 2}
	w.wait(ctx, time.Now(), d)
}

func (a *attackRun) writeHeader(w io.Writer) {
	m, cfg := newMeta(), a.cfg
	mt := fmt.Sprintf("%s (-attack-message-timeout; the default is %s)", cfg.messageTimeout, transport.DefaultMessageTimeout)
	if cfg.messageTimeout <= 0 {
		mt = fmt.Sprintf("%s (the transport's default)", transport.DefaultMessageTimeout)
	}
	fmt.Fprintf(w, "wsrpc-bench -attack (scale %s)  %s %s/%s, %d CPUs; one server.New in this process, loopback\n",
		cfg.scale, m.Go, m.OS, m.Arch, m.CPUs)
	fmt.Fprintf(w, "server: default options (WithMaxConns %d, MaxInFlight %d, backlog %d calls/%s; per connection: read limit %s,\n"+
		"  send queue bound %s, write timeout %s, heartbeat %s/%s), but MessageTimeout %s;\n"+
		"  WithOnDisconnect records why each connection ended. Mux: echo, and big (a %s reply)\n",
		server.DefaultMaxConns, rpc.DefaultMaxInFlight, rpc.DefaultMaxBacklog, fmtBytes(rpc.DefaultMaxBacklogBytes),
		fmtBytes(transport.DefaultReadLimit), fmtBytes(transport.DefaultMaxQueuedBytes), transport.DefaultWriteTimeout,
		transport.DefaultHeartbeatInterval, transport.DefaultPongTimeout, mt, fmtSize(attackReply))
	fmt.Fprintf(w, "RSS: VmRSS of this process (the server, and clients that hold no payload), base after GC and FreeOSMemory,\n"+
		"  peak sampled every %s, HWM the kernel's VmHWM reset at the start (a target is judged on the higher),\n"+
		"  after: once the server has let go of every connection, after GC; fds and goroutines before → after; GOGC %s\n\n",
		attackSample, gogc())
	fmt.Fprintf(w, attackRowFormat, "scenario", "time", "RSS base", "peak", "HWM", "after", "fds", "goroutines", "verdict", "target")
}

const attackRowFormat = "%-10s  %6s  %8s  %6s  %6s  %6s  %9s  %10s  %-7s  %s\n"

func writeAttackRow(w io.Writer, r *attackRow) {
	var b strings.Builder
	mb := func(kib int64) string {
		if kib < 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f", mib(kib))
	}
	verdict := "PASS"
	if !r.pass() {
		verdict = "FAIL"
	}
	target := r.res.target
	if target == "" {
		target = "none named"
	}
	fmt.Fprintf(&b, attackRowFormat, r.name, fmtSpan(r.elapsed.Round(time.Millisecond)), mb(r.base)+" MiB", mb(r.peak), mb(r.hwm),
		mb(r.after), fmt.Sprintf("%d → %d", r.fdsBefore, r.fdsAfter), fmt.Sprintf("%d → %d", r.gsBefore, r.gsAfter),
		verdict, target)
	for _, f := range r.res.figures {
		fmt.Fprintf(&b, "    %s\n", f)
	}
	fmt.Fprintf(&b, "    Go heap: live at most %.1f MiB (as marked by a GC), objects at most %.1f MiB (live and garbage not yet swept)\n",
		r.heap.liveMiB(), r.heap.objectsMiB())
	if r.res.err != nil {
		fmt.Fprintf(&b, "    error: %v\n", r.res.err)
	}
	if r.cleanup != nil {
		fmt.Fprintf(&b, "    after the scenario: %v\n", r.cleanup)
	}
	io.WriteString(w, b.String())
}

// serverEnds records why the server ended the connections the scenarios
// watch, by the client's address, from the server's disconnect hook.
type serverEnds struct {
	mu     sync.Mutex
	byAddr map[string]*serverEnd
}

// serverEnd is one watched connection; done is closed when it has ended,
// and err and at are set before.
type serverEnd struct {
	done chan struct{}
	err  error
	at   time.Time
}

// watch starts watching the connection from the client address addr.
func (e *serverEnds) watch(addr string) *serverEnd {
	se := &serverEnd{done: make(chan struct{})}
	e.mu.Lock()
	e.byAddr[addr] = se
	e.mu.Unlock()
	return se
}

// forget stops watching addr.
func (e *serverEnds) forget(addr string) {
	e.mu.Lock()
	delete(e.byAddr, addr)
	e.mu.Unlock()
}

// ended is the server's disconnect hook.
func (e *serverEnds) ended(c *rpc.Peer, err error) {
	addr := c.RemoteAddr()
	if addr == nil {
		return
	}
	e.mu.Lock()
	se, ok := e.byAddr[addr.String()]
	delete(e.byAddr, addr.String())
	e.mu.Unlock()
	if ok {
		se.err, se.at = err, time.Now()
		close(se.done)
	}
}

// ended reports whether the server has ended the connection.
func (se *serverEnd) ended() bool {
	select {
	case <-se.done:
		return true
	default:
		return false
	}
}

// waitEnded waits until every one of ses has ended, or until deadline.
func waitEnded(ctx context.Context, ses []*serverEnd, deadline time.Time) {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	for _, se := range ses {
		select {
		case <-se.done:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// endReason is how the server says a connection ended: its close code and
// reason, and the cause when it is a timeout.
func endReason(err error) string {
	var ce *transport.CloseError
	if !errors.As(err, &ce) {
		return fmt.Sprint(err)
	}
	s := fmt.Sprintf("%d %q", int(ce.Code), ce.Reason)
	if ce.Reason == "" {
		s = fmt.Sprintf("%d %s", int(ce.Code), transport.StatusText(ce.Code))
	}
	switch {
	case errors.Is(err, transport.ErrWriteTimeout):
		s += " (write timeout)"
	case errors.Is(err, transport.ErrPeerUnresponsive):
		s += " (pong timeout)"
	}
	return s
}

// tally counts strings and prints them most frequent first: `10× 1008 "…"`.
type tally map[string]int

func (t tally) String() string {
	if len(t) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if t[keys[i]] != t[keys[j]] {
			return t[keys[i]] > t[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d× %s", t[k], k)
	}
	return strings.Join(parts, ", ")
}

// closeAllWS closes raw connections, nil ones skipped.
// release closes a scenario's raw connections and stops expecting their
// server ends.
func (a *attackRun) release(conns []*rawWS) {
	closeAllWS(conns)
	for _, c := range conns {
		if c != nil {
			a.ends.forget(c.localAddr())
		}
	}
}

func closeAllWS(cs []*rawWS) {
	for _, c := range cs {
		if c != nil {
			c.close()
		}
	}
}

// durRange is "1.2ms–3.4ms", or one figure when both print the same.
func durRange(lo, hi time.Duration) string {
	if fmtSpan(lo) == fmtSpan(hi) {
		return fmtSpan(hi)
	}
	return fmtSpan(lo) + "–" + fmtSpan(hi)
}

// fmtBytes is fmtSize, in MiB for whole MiB.
func fmtBytes(n int) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmtSize(n)
}

// gogc is the GOGC setting: the heap may grow to live × (1 + GOGC/100)
// before the next collection.
func gogc() string {
	if v := os.Getenv("GOGC"); v != "" {
		return v
	}
	return "100"
}

// fmtSpan is fmtDur, in seconds from one second on.
func fmtSpan(d time.Duration) string {
	if d < time.Second {
		return fmtDur(d)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}
