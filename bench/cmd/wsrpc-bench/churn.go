package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
)

// The churn mode checks that a connection dropped without a close frame
// gives back everything it held on the server. It runs the server in this
// process, counts the process's file descriptors and goroutines before the
// first drop (the baseline), and after every drop waits until both are back
// at the baseline (plus a small slack), for at most settle.
//
// Drops, one after another:
//   - cycles: connect (transport.Dial + rpc.New), one call, then the TCP
//     socket under the WebSocket is closed, alternately plainly (FIN) and
//     with SO_LINGER 0 (RST). The client's own goroutines are then stopped,
//     so what stays above the baseline is the server's;
//   - rounds: a child process opens many connections, makes a call on each
//     and is killed with SIGKILL (see killed.go).

const defaultChurnCycles = 20000

type churnConfig struct {
	cycles  int           // connect, call, drop; FIN and RST alternately
	rounds  int           // killed-client rounds after the cycles
	killed  int           // connections in each killed child
	settle  time.Duration // how long the server has to get back to the baseline after each drop
	slack   int           // fds and goroutines allowed above the baseline
	maxFail int           // stop the cycles after this many failed ones
	// kinds are the drops the cycles make, in turn; nil means FIN, RST.
	kinds []dropKind
	// afterDrop, when set, runs after each cycle's drop: tests use it to
	// leak on purpose.
	afterDrop func()
}

// churnStep gathers the drops of one kind.
type churnStep struct {
	name     string
	runs     int
	ok       int
	took     hist          // time to baseline of the drops that got there
	worst    time.Duration // of those
	failed   int
	kept     counts         // Σ of what each drop left above the level just before it (see keptGrace)
	failures []churnFailure // the first few
}

// churnFailure is a drop after which the server did not get back to the
// baseline in time, or that could not be made.
type churnFailure struct {
	what       string // "cycle 17 (RST)", "killed round 2 (500 conns)"
	err        error  // the connection could not be made or used
	fds, gs    int    // after settle
	fdsBefore  int    // just before this drop
	gsBefore   int
	connsAfter int // in the server's registry
}

type churnResult struct {
	meta         meta
	cfg          churnConfig
	maxConns     int
	base, final  resources
	finalConns   int
	steps        []*churnStep // one per kind of cycle, then killed
	failed       int
	failedCycles int // when the cycles stopped early
	cyclesDone   int
	roundsDone   int
	stoppedEarly bool
	elapsed      time.Duration
}

// keptGrace is how long a drop that is within the rule, but not back to
// the level just before it, is given to get there before what is left is
// counted as kept.
const keptGrace = 10 * time.Millisecond

// maxListedFailures bounds the failures the report lists one by one, per
// kind of drop.
const maxListedFailures = 4

var stepNames = map[dropKind]string{
	dropFIN:   "FIN: TCP socket closed, no close frame",
	dropRST:   "RST: SO_LINGER 0, closed, no close frame",
	dropClean: "clean: closing handshake (1000)",
}

func (r *churnResult) pass() bool {
	return r.failed == 0 && r.cyclesDone == r.cfg.cycles && r.roundsDone == r.cfg.rounds &&
		r.final.FDs <= r.base.FDs+r.cfg.slack && r.final.Goroutines <= r.base.Goroutines+r.cfg.slack
}

func runChurn(ctx context.Context, cfg churnConfig, stdout, stderr io.Writer) int {
	res, err := measureChurn(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "wsrpc-bench: churn: %v\n", err)
		return 1
	}
	if err := res.writeTable(stdout); err != nil {
		fmt.Fprintf(stderr, "wsrpc-bench: %v\n", err)
		return 1
	}
	if !res.pass() {
		return 1
	}
	return 0
}

func measureChurn(ctx context.Context, cfg churnConfig, progress io.Writer) (*churnResult, error) {
	start := time.Now()
	if _, err := raiseNoFile(); err != nil {
		return nil, fmt.Errorf("raise RLIMIT_NOFILE: %w", err)
	}
	if cfg.kinds == nil {
		cfg.kinds = []dropKind{dropFIN, dropRST}
	}
	res := &churnResult{meta: newMeta(), cfg: cfg, maxConns: cfg.killed + 64}
	for _, k := range cfg.kinds {
		res.steps = append(res.steps, &churnStep{name: stepNames[k]})
	}
	killedStep := &churnStep{name: fmt.Sprintf("killed: child of %d conns, SIGKILL", cfg.killed)}
	res.steps = append(res.steps, killedStep)
	ls, err := startServer(echoHandler, server.WithMaxConns(res.maxConns))
	if err != nil {
		return nil, err
	}
	defer ls.shutdown(5 * time.Second)
	params := make(rpc.Raw, 16)

	// Warm up with clean closes, which the bug under test does not
	// concern: whatever the first connections create once is in the baseline.
	for range 5 {
		c, err := dialTCP(ctx, ls.url)
		if err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
		err = c.echo(ctx, params)
		c.drop(dropClean)
		if err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	if err := waitNoConns(ctx, ls.srv, 5*time.Second); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	runtime.GC()
	if res.base, err = readResources(); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "churn: baseline fds %d, goroutines %d; %s, then %s of %s\n",
		res.base.FDs, res.base.Goroutines, plural(cfg.cycles, "cycle"), plural(cfg.rounds, "killed round"), plural(cfg.killed, "conn"))
	w := &baselineWatch{fds: res.base.FDs + cfg.slack, gs: res.base.Goroutines + cfg.slack}

	// check waits for the baseline after one drop and files the outcome.
	check := func(step *churnStep, what string, since time.Time, before counts, dropErr error) error {
		step.runs++
		took, now, ok, err := w.wait(ctx, since, cfg.settle)
		if err != nil {
			return err
		}
		if ok && (now.fds > before.fds || now.gs > before.gs) {
			// Within the rule, not yet back to the level before the drop:
			// give what is still winding down a moment, to count only
			// what stays.
			exact := &baselineWatch{fds: before.fds, gs: before.gs}
			if _, now, _, err = exact.wait(ctx, time.Now(), keptGrace); err != nil {
				return err
			}
		}
		step.kept.fds += max(now.fds-before.fds, 0)
		step.kept.gs += max(now.gs-before.gs, 0)
		if ok && dropErr == nil {
			step.ok++
			step.took.add(took)
			step.worst = max(step.worst, took)
			return nil
		}
		step.failed++
		res.failed++
		if len(step.failures) < maxListedFailures {
			step.failures = append(step.failures, churnFailure{what: what, err: dropErr, fds: now.fds, gs: now.gs,
				fdsBefore: before.fds, gsBefore: before.gs, connsAfter: len(ls.srv.Conns())})
		}
		return nil
	}

	every := max(cfg.cycles/10, 1)
	for i := range cfg.cycles {
		if res.failed >= cfg.maxFail {
			res.stoppedEarly, res.failedCycles = true, res.failed
			fmt.Fprintf(progress, "churn: stopping the cycles after %d failures (-churn-max-fail)\n", res.failed)
			break
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		j := i % len(cfg.kinds)
		kind := cfg.kinds[j]
		before, err := w.read()
		if err != nil {
			return nil, err
		}
		since, cerr := churnCycle(ctx, ls.url, params, kind)
		if cfg.afterDrop != nil {
			cfg.afterDrop()
		}
		if err := check(res.steps[j], fmt.Sprintf("cycle %d (%s)", i+1, kind), since, before, cerr); err != nil {
			return nil, err
		}
		res.cyclesDone++
		if (i+1)%every == 0 {
			fmt.Fprintf(progress, "churn: %d/%d cycles, %d failed, %s\n", i+1, cfg.cycles, res.failed,
				time.Since(start).Round(time.Millisecond))
		}
	}

	for r := range cfg.rounds {
		before, err := w.read()
		if err != nil {
			return nil, err
		}
		killedAt, kerr := killClients(ctx, ls.url, cfg.killed, progress)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err := check(killedStep, fmt.Sprintf("killed round %d (%d conns)", r+1, cfg.killed), killedAt, before, kerr); err != nil {
			return nil, err
		}
		res.roundsDone++
		fmt.Fprintf(progress, "churn: killed round %d/%d, %d failed\n", r+1, cfg.rounds, res.failed)
	}

	runtime.GC() // as before the baseline
	if res.final, err = readResources(); err != nil {
		return nil, err
	}
	res.finalConns = len(ls.srv.Conns())
	res.elapsed = time.Since(start)
	return res, nil
}

// churnCycle connects, makes one call and drops the connection. It returns
// when the drop was made (the time from which the server's clean-up is
// timed) and any error on the way; the connection is dropped in any case.
func churnCycle(ctx context.Context, url string, params rpc.Raw, kind dropKind) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := dialTCP(ctx, url)
	if err != nil {
		return time.Now(), fmt.Errorf("dial: %w", err)
	}
	err = c.echo(ctx, params)
	c.drop(kind)
	return time.Now(), err
}

// counts are the two figures the churn watches.
type counts struct{ fds, gs int }

// baselineWatch polls the process's fds and goroutines against limits.
type baselineWatch struct{ fds, gs int }

func (w *baselineWatch) read() (counts, error) {
	gs := runtime.NumGoroutine()
	fds, err := countFDs()
	return counts{fds: fds, gs: gs}, err
}

// wait polls until both counts are within the limits, or until settle has
// passed since since. For the first 2 ms (a drop is usually cleaned up by
// then) it polls in a loop that yields to the other goroutines, a few
// microseconds apart: a timer shorter than a millisecond fires only after
// about one when the process is idle. Then it polls every millisecond, so
// that thousands of drops cost little. It returns how long after since the
// counts were within the limits (to within a poll), and the last reading.
func (w *baselineWatch) wait(ctx context.Context, since time.Time, settle time.Duration) (time.Duration, counts, bool, error) {
	deadline := since.Add(settle)
	for {
		c, err := w.read()
		if err != nil {
			return 0, c, false, err
		}
		now := time.Now()
		if c.fds <= w.fds && c.gs <= w.gs {
			return now.Sub(since), c, true, nil
		}
		if !now.Before(deadline) {
			return now.Sub(since), c, false, nil
		}
		if now.Sub(since) < 2*time.Millisecond {
			runtime.Gosched()
			if ctx.Err() != nil {
				return 0, c, false, ctx.Err()
			}
			continue
		}
		t := time.NewTimer(min(time.Millisecond, deadline.Sub(now)))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return 0, c, false, ctx.Err()
		}
	}
}

// waitNoConns polls until the server's registry is empty.
func waitNoConns(ctx context.Context, srv *server.Server, d time.Duration) error {
	deadline := time.Now().Add(d)
	for len(srv.Conns()) > 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("the server still has %d connections after %s", len(srv.Conns()), d)
		}
		t := time.NewTimer(time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	return nil
}

func (r *churnResult) writeTable(w io.Writer) error {
	var b strings.Builder
	m, cfg := r.meta, r.cfg
	fmt.Fprintf(&b, "wsrpc-bench -churn  %s %s/%s, %d CPUs; server.New in this process (defaults, WithMaxConns %d), loopback\n",
		m.Go, m.OS, m.Arch, m.CPUs, r.maxConns)
	fmt.Fprintf(&b, "rule: after each drop, fds ≤ baseline+%d and goroutines ≤ baseline+%d within %s (polled continuously for 2ms, then every 1ms)\n",
		cfg.slack, cfg.slack, cfg.settle)
	fmt.Fprintf(&b, "baseline before the first drop: fds %d, goroutines %d, RSS %.1f MiB, heap in use %.1f MiB (after GC)\n",
		r.base.FDs, r.base.Goroutines, mib(r.base.RSSKiB), mib(int64(r.base.HeapInuse/1024)))
	fmt.Fprintf(&b, "kept: Σ over the drops of the fds / goroutines still above the level just before each drop (given up to %s more\n"+
		"than the rule to get back to it: transients wind down, leaks stay)\n\n", keptGrace)
	row := func(cols ...string) {
		fmt.Fprintf(&b, "%-42s  %6s  %7s  %6s  %11s  %11s  %9s  %9s  %8s\n",
			cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7], cols[8])
	}
	row("drop", "runs", "ok≤"+cfg.settle.String(), "failed", "p50 to base", "p99 to base", "worst ok", "fds kept", "gs kept")
	total := churnStep{name: "total"}
	line := func(s *churnStep) {
		p50, p99, worst := "", "", ""
		if s.ok > 0 {
			p50, p99, worst = fmtDur(s.took.quantile(0.5)), fmtDur(s.took.quantile(0.99)), fmtDur(s.worst)
		}
		row(s.name, fmt.Sprint(s.runs), fmt.Sprint(s.ok), fmt.Sprint(s.failed), p50, p99, worst,
			fmt.Sprint(s.kept.fds), fmt.Sprint(s.kept.gs))
	}
	for _, s := range r.steps {
		line(s)
		total.runs += s.runs
		total.ok += s.ok
		total.failed += s.failed
		total.took.merge(&s.took)
		total.worst = max(total.worst, s.worst)
		total.kept.fds += s.kept.fds
		total.kept.gs += s.kept.gs
	}
	line(&total)

	fmt.Fprintf(&b, "\nfinal: fds %d (baseline %d, %+d), goroutines %d (baseline %d, %+d), server conns %d\n",
		r.final.FDs, r.base.FDs, r.final.FDs-r.base.FDs, r.final.Goroutines, r.base.Goroutines,
		r.final.Goroutines-r.base.Goroutines, r.finalConns)
	fmt.Fprintf(&b, "RSS %.1f MiB before, %.1f MiB after; heap in use %.1f → %.1f MiB (both after GC)\n",
		mib(r.base.RSSKiB), mib(r.final.RSSKiB), mib(int64(r.base.HeapInuse/1024)), mib(int64(r.final.HeapInuse/1024)))
	perDrop := ""
	if total.runs > 0 {
		perDrop = fmt.Sprintf(" (%s per drop)", fmtDur(r.elapsed/time.Duration(total.runs)))
	}
	fmt.Fprintf(&b, "run time %s: %d of %d cycles, %d of %d killed rounds%s\n\n",
		r.elapsed.Round(time.Millisecond), r.cyclesDone, cfg.cycles, r.roundsDone, cfg.rounds, perDrop)

	if r.pass() {
		fmt.Fprintf(&b, "PASS  every drop returned to baseline within %s\n", cfg.settle)
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "FAIL  %d of %d drops did not return to baseline within %s", r.failed, total.runs, cfg.settle)
	if r.stoppedEarly {
		fmt.Fprintf(&b, "; the cycles stopped after %d failed (-churn-max-fail) at %d of %d", r.failedCycles, r.cyclesDone, cfg.cycles)
	}
	b.WriteString("\n")
	if r.failed == 0 {
		b.WriteString("  the final figures are above the baseline\n")
	}
	for _, s := range r.steps {
		for _, f := range s.failures {
			fmt.Fprintf(&b, "  %s: ", f.what)
			if f.err != nil {
				fmt.Fprintf(&b, "%v; ", f.err)
			}
			fmt.Fprintf(&b, "after %s fds %d = baseline%+d (this drop %+d), goroutines %d = baseline%+d (this drop %+d), server conns %d\n",
				cfg.settle, f.fds, f.fds-r.base.FDs, f.fds-f.fdsBefore, f.gs, f.gs-r.base.Goroutines, f.gs-f.gsBefore, f.connsAfter)
		}
		if s.failed > len(s.failures) {
			fmt.Fprintf(&b, "  … %d more %s\n", s.failed-len(s.failures), strings.SplitN(s.name, ":", 2)[0])
		}
	}
	if total.kept.fds > 0 && total.kept.gs == 0 {
		fmt.Fprintf(&b, "  %d fds kept and no goroutine: the sockets of dropped connections are not closed\n", total.kept.fds)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
