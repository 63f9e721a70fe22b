package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/internal/histogram"
	"github.com/wsrpc/wsrpc/internal/logtext"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

var benchHelp = help{
	usage: "bench [flags] URL METHOD [PARAMS]",
	about: `
Calls METHOD with -c workers, each making one call at a time (as hey's and
ghz's -c), spread over --connections connections, for -n calls in all or for
-d, then prints a summary: calls, errors by code and message, duration, calls
per second, latency percentiles and a histogram in log-scale rows.

Without -r the workers call as fast as the server answers (a closed loop). With
-r/--rate R the calls follow a fixed schedule, R a second (an open loop): call i
is due at i/R seconds after the start, whether or not the calls before it have
returned, and is started by the first free worker. When every worker is busy,
calls start late: their latency is measured from when they were due, not from
when they started, so a stalled server is not hidden (no coordinated omission),
and the summary reports how many started more than 1ms late and by how much.
Give -c enough workers for the rate times the latency.

PARAMS is JSON, or - for stdin; --payload-size N sends instead a JSON array of
one string, N bytes in all (which echo sends back). The latencies include every
call, failed ones too; they are counted in a histogram of constant size (within
0.4%), whatever the length of the run. A live progress line with the rate of the
last second is drawn on stderr when it is a terminal.

--json prints the summary as JSON on stdout: method, connections, concurrency
(the workers), rate (0: none), calls, ok, errors {code: count} (past 64
distinct codes, the rest under "other", code -2147483648 in error_messages),
error_messages [{code, message, count}] (past 64 distinct messages, the rest
as "(other messages)"; each cut to 256 bytes), duration_ms, rps, interrupted,
latency_ms {min, mean, p50, p90, p99, p999, max}, histogram [{le_ms, count}]
(the calls of latency in (previous le_ms, le_ms]) and, with -r, schedule
{late, late_after_ms, lateness_ms {p50, p99, max}}.

The exit status is 1 when no call succeeded or a connection was lost. SIGINT
stops the run: the summary of what was measured is printed, marked as
interrupted, and the exit status is 130.

Changed: -c used to count connections, with --concurrency calls in flight on
each; -c now counts the calls in flight in all and --connections the
connections: '-c 4 --concurrency 32' is now '-c 128 --connections 4'.`,
	examples: `
wsrpc bench ws://127.0.0.1:8080/rpc echo '["hello"]'
wsrpc bench -c 128 --connections 4 -d 10s ws://127.0.0.1:8080/rpc add '[1,2]'
wsrpc bench -r 2000 -c 50 -d 30s ws://127.0.0.1:8080/rpc echo '["hi"]'
wsrpc bench -n 100000 --payload-size 1024 --codec json --json ws://127.0.0.1:8080/rpc echo`,
}

// lateAfter is how late a call of a scheduled run (-r) may start before it
// counts as late.
const lateAfter = time.Millisecond

// maxErrorMessages bounds the distinct error messages a run counts one by
// one; the others are counted together.
const maxErrorMessages = 64

// otherMessages stands for the error messages beyond maxErrorMessages.
const otherMessages = "(other messages)"

// maxErrorCodes bounds the distinct error codes a run counts one by one
// (the server chooses them); the others are counted as handler.OtherCodes,
// "other" in the summary.
const maxErrorCodes = 64

// benchConfig is one load test.
type benchConfig struct {
	url     string
	method  string
	params  any // nil or rpc.Raw
	conns   int
	workers int
	rate    float64         // calls a second on a fixed schedule; 0: as fast as the server answers
	total   int             // calls in all; 0 when duration is set
	dur     time.Duration   // how long calls are started (or scheduled); 0 when total is set
	timeout time.Duration   // per call; 0: none
	dial    []client.Option // for client.Dial, beside the bench's own
}

// errorKey is what errors are counted by: their code and message.
type errorKey struct {
	code rpc.Code
	msg  string
}

// benchResult is what a load test measured.
type benchResult struct {
	calls       int
	errors      map[rpc.Code]int
	messages    map[errorKey]int // bounded by maxErrorMessages (+1 for the others)
	elapsed     time.Duration
	latency     histogram.Histogram
	lateness    histogram.Histogram // with a rate: how late each call started
	late        int                 // with a rate: calls that started more than lateAfter late
	lost        error               // why a connection ended before the test did, if one did
	interrupted bool                // the command's ctx ended the test
}

func (r *benchResult) ok() int {
	n := r.calls
	for _, c := range r.errors {
		n -= c
	}
	return n
}

// errConcurrencyGone explains the flag that changed meaning.
var errConcurrencyGone = errors.New("--concurrency is gone: -c now counts the calls in flight in all (as in hey and ghz), and --connections the connections; '-c 4 --concurrency 32' is now '-c 128 --connections 4'")

func runBench(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("bench")
	var (
		d           dialFlags
		codec       codecFlag
		cfg         benchConfig
		payloadSize int
		asJSON      bool
	)
	d.register(fs)
	codec.register(fs)
	fs.IntVar(&cfg.workers, "c", 1, "run `n` workers: calls in flight at once, in all")
	fs.IntVar(&cfg.conns, "connections", 1, "spread the workers over `n` connections (at most -c)")
	fs.Float64Var(&cfg.rate, "r", 0, "make `rate` calls a second on a fixed schedule (open loop; see above)")
	fs.Float64Var(&cfg.rate, "rate", 0, "the same as -r: `rate` calls a second")
	fs.Func("concurrency", "", func(string) error { return errConcurrencyGone })
	fs.IntVar(&cfg.total, "n", 1000, "make `n` calls in all (or use -d)")
	fs.DurationVar(&cfg.dur, "d", 0, "make calls for this `duration` instead of -n calls")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "give up on a call after this `duration` (0: never)")
	fs.IntVar(&payloadSize, "payload-size", 0, "send params of `n` bytes: a JSON array of one string (instead of PARAMS)")
	fs.BoolVar(&asJSON, "json", false, "print the summary as JSON on stdout")
	pos, err := parseArgs(fs, args, e, &benchHelp)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	t, err := parseTarget(e, pos, &codec)
	if err != nil {
		return err
	}
	switch {
	case cfg.workers < 1:
		return usagef("-c must be at least 1")
	case cfg.conns < 1:
		return usagef("--connections must be at least 1")
	case cfg.conns > cfg.workers:
		return usagef("--connections (%d) must not exceed -c (%d): a connection needs a worker", cfg.conns, cfg.workers)
	case cfg.rate < 0 || math.IsNaN(cfg.rate) || math.IsInf(cfg.rate, 0):
		return usagef("-r must be a positive number of calls a second")
	case set["r"] && set["rate"]:
		return usagef("-r and --rate are the same flag: give one")
	case (set["r"] || set["rate"]) && cfg.rate == 0:
		return usagef("-r must be a positive number of calls a second")
	case set["n"] && set["d"]:
		return usagef("-n and -d exclude each other")
	case set["d"] && cfg.dur <= 0:
		return usagef("-d must be positive")
	case !set["d"] && cfg.total < 1:
		return usagef("-n must be at least 1")
	case set["payload-size"] && t.params != nil:
		return usagef("--payload-size and PARAMS exclude each other")
	case set["payload-size"] && payloadSize < 4:
		return usagef("--payload-size must be at least 4 (the size of [\"\"])")
	}
	if set["d"] {
		cfg.total = 0
	}
	cfg.url, cfg.method, cfg.params = t.url, t.method, t.params
	if payloadSize > 0 {
		cfg.params = payload(payloadSize)
	}
	opts, err := d.clientOptions(e, "bench")
	if err != nil {
		return err
	}
	cfg.dial = append(opts, codec.options()...)

	var progress func(p benchProgress)
	if e.stderrTTY && !asJSON {
		progress = func(p benchProgress) { fmt.Fprintf(e.stderr, "\r\033[K%s", p.line(cfg.rate > 0)) }
	}
	res, err := benchLoad(ctx, &cfg, progress)
	if progress != nil {
		fmt.Fprint(e.stderr, "\r\033[K")
	}
	if err != nil {
		return err
	}
	if asJSON {
		b, _ := json.MarshalIndent(res.summary(&cfg), "", "  ")
		fmt.Fprintf(e.stdout, "%s\n", b)
	} else {
		res.print(e.stdout, &cfg)
	}
	switch {
	case res.interrupted:
		fmt.Fprintf(e.stderr, "wsrpc bench: interrupted after %s; the summary is of the calls made until then\n", res.elapsed.Round(time.Millisecond))
		return exitCode(interruptedStatus(ctx))
	case res.lost != nil:
		return fmt.Errorf("a connection was lost during the test: %s", closeText(res.lost))
	case res.calls > 0 && res.ok() == 0:
		return errors.New("no call succeeded")
	}
	return nil
}

// payload returns a JSON array of one string, n bytes in all.
func payload(n int) rpc.Raw {
	b := make([]byte, 0, n)
	b = append(b, `["`...)
	for len(b) < n-2 {
		b = append(b, 'x')
	}
	return append(b, `"]`...)
}

// benchProgress is what the progress line shows.
type benchProgress struct {
	done, failed, late int64
	elapsed            time.Duration
	rate               float64 // calls a second over the last second or so
}

// line is the progress line: "12000 calls, 3 errors, 2.3s, 5321 calls/s".
func (p benchProgress) line(scheduled bool) string {
	s := fmt.Sprintf("%d calls, %d errors, %s, %.0f calls/s", p.done, p.failed, p.elapsed.Round(100*time.Millisecond), p.rate)
	if scheduled {
		s += fmt.Sprintf(", %d late", p.late)
	}
	return s
}

// rateMeter is the rate of a counter over its last few samples.
type rateMeter struct {
	at    [5]time.Duration // a ring of samples: when, and the count then
	count [5]int64
	n     int // samples taken
}

// sample records count at elapsed and returns the rate since the oldest
// sample kept (about a second ago at four samples a second).
func (m *rateMeter) sample(elapsed time.Duration, count int64) float64 {
	i := m.n % len(m.at)
	m.at[i], m.count[i] = elapsed, count
	m.n++
	oldest := 0
	if m.n > len(m.at) {
		oldest = m.n % len(m.at)
	}
	dt := elapsed - m.at[oldest]
	if dt <= 0 {
		if elapsed <= 0 {
			return 0
		}
		return float64(count) / elapsed.Seconds()
	}
	return float64(count-m.count[oldest]) / dt.Seconds()
}

// schedule hands out the calls of a run: which call comes next, and when it
// is due. It is safe for concurrent use.
type schedule struct {
	start    time.Time
	total    int64     // calls in all; 0: until deadline
	deadline time.Time // zero when total is set
	rate     float64   // calls a second; 0: each call is due when claimed
	next     atomic.Int64
}

// claim returns the next call's due time, or ok false when the run has made
// all its calls.
func (s *schedule) claim() (due time.Time, ok bool) {
	i := s.next.Add(1) - 1
	if s.total > 0 && i >= s.total {
		return time.Time{}, false
	}
	if s.rate == 0 {
		now := time.Now()
		return now, s.deadline.IsZero() || now.Before(s.deadline)
	}
	due = s.start.Add(time.Duration(float64(i) * float64(time.Second) / s.rate))
	return due, s.deadline.IsZero() || due.Before(s.deadline)
}

// waitUntil sleeps until t, or until ctx ends (false).
func waitUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// benchWorker is what one worker measured; only its goroutine touches it
// until the run is over.
type benchWorker struct {
	calls    int
	errors   map[rpc.Code]int
	messages map[errorKey]int
	latency  histogram.Histogram
	lateness histogram.Histogram
	late     int
	lost     error
}

// countError counts err by code, and by message while fewer than
// maxErrorMessages distinct ones have been seen.
func countError(errs map[rpc.Code]int, msgs map[errorKey]int, k errorKey, n int) {
	if _, ok := errs[k.code]; !ok && len(errs) >= maxErrorCodes {
		k.code = handler.OtherCodes
	}
	errs[k.code] += n
	if _, ok := msgs[k]; !ok && len(msgs) >= maxErrorMessages {
		k.msg = otherMessages
	}
	msgs[k] += n
}

// benchLoad runs the load test. progress, if not nil, is called a few
// times a second from another goroutine.
func benchLoad(ctx context.Context, cfg *benchConfig, progress func(benchProgress)) (*benchResult, error) {
	// One client per connection, which does not reconnect: a connection
	// lost is a result of the test. The call timeout applies to every call.
	opts := append(slices.Clip(cfg.dial), client.WithReconnect(false))
	if cfg.timeout > 0 {
		opts = append(opts, client.WithCallTimeout(cfg.timeout))
	}
	clients := make([]*client.Client, cfg.conns)
	var g errgroup.Group
	for i := range clients {
		g.Go(func() error {
			dctx, cancel := context.WithTimeout(ctx, transport.DefaultHandshakeTimeout)
			defer cancel()
			c, err := dialClient(dctx, cfg.url, opts...)
			clients[i] = c
			return err
		})
	}
	err := g.Wait()
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
	}()
	if err != nil {
		return nil, timeoutError(ctx, err, transport.DefaultHandshakeTimeout)
	}
	// Each client's one connection, whose end, if it comes, is reported.
	peers := make([]*rpc.Peer, len(clients))
	for i, c := range clients {
		if peers[i] = c.Peer(); peers[i] == nil {
			return nil, errors.New("a connection ended before the test started")
		}
	}

	var (
		done, failed, late atomic.Int64
		wg                 sync.WaitGroup
		start              = time.Now()
		sched              = &schedule{start: start, total: int64(cfg.total), rate: cfg.rate}
		workers            = make([]*benchWorker, cfg.workers)
	)
	if cfg.dur > 0 {
		sched.deadline = start.Add(cfg.dur)
	}
	work := func(w *benchWorker, c *client.Client, p *rpc.Peer) {
		defer wg.Done()
		for ctx.Err() == nil {
			due, ok := sched.claim()
			if !ok || !waitUntil(ctx, due) {
				return
			}
			t0 := time.Now()
			err := c.Call(ctx, cfg.method, cfg.params, nil)
			end := time.Now()
			if err != nil && ctx.Err() != nil {
				return // interrupted: not a result
			}
			w.calls++
			done.Add(1)
			if cfg.rate > 0 {
				// Measured from when the call was due: the wait for a
				// free worker is part of what a caller would see.
				w.latency.Record(end.Sub(due))
				lateness := t0.Sub(due)
				w.lateness.Record(lateness)
				if lateness > lateAfter {
					w.late++
					late.Add(1)
				}
			} else {
				w.latency.Record(end.Sub(t0))
			}
			if err == nil {
				continue
			}
			failed.Add(1)
			countError(w.errors, w.messages, errorKey{rpc.CodeOf(err), errorMessage(err)}, 1)
			select {
			case <-p.Done():
				w.lost = p.Err()
			case <-p.GoingAway():
				w.lost = errGoingAway // every further call would fail at once
			default:
			}
			if w.lost != nil {
				return
			}
		}
	}
	for i := range workers {
		workers[i] = &benchWorker{errors: map[rpc.Code]int{}, messages: map[errorKey]int{}}
		wg.Add(1)
		go work(workers[i], clients[i%len(clients)], peers[i%len(clients)])
	}
	if progress != nil {
		stop := make(chan struct{})
		var pw sync.WaitGroup
		pw.Add(1)
		go func() { // owned: stopped and waited for below
			defer pw.Done()
			tick := time.NewTicker(250 * time.Millisecond)
			defer tick.Stop()
			var m rateMeter
			for {
				select {
				case <-tick.C:
					el, n := time.Since(start), done.Load()
					progress(benchProgress{done: n, failed: failed.Load(), late: late.Load(), elapsed: el, rate: m.sample(el, n)})
				case <-stop:
					return
				}
			}
		}()
		defer func() { close(stop); pw.Wait() }()
	}
	wg.Wait()
	res := &benchResult{
		errors:      map[rpc.Code]int{},
		messages:    map[errorKey]int{},
		elapsed:     time.Since(start),
		interrupted: ctx.Err() != nil,
	}
	for _, w := range workers {
		res.calls += w.calls
		res.latency.Merge(&w.latency)
		res.lateness.Merge(&w.lateness)
		res.late += w.late
		for k, n := range w.messages {
			countError(res.errors, res.messages, k, n)
		}
		if w.lost != nil && res.lost == nil {
			res.lost = w.lost
		}
	}
	return res, nil
}

var errGoingAway = errors.New("the server is shutting down")

// errorMessage is the message of an *rpc.Error, or the error's text.
// codeKey is a code as the keys of --json's errors: its number, or "other"
// for the codes beyond maxErrorCodes.
func codeKey(c rpc.Code) string {
	if c == handler.OtherCodes {
		return "other"
	}
	return strconv.Itoa(int(c))
}

// errorMessage is the message of err, cut as the logs cut a peer's text.
func errorMessage(err error) string {
	var e *rpc.Error
	if errors.As(err, &e) && e.Message != "" {
		return logtext.Clip(e.Message)
	}
	return logtext.Clip(err.Error())
}

// benchSummary is the --json output. Its field names are stable.
type benchSummary struct {
	Method        string          `json:"method"`
	Connections   int             `json:"connections"`
	Concurrency   int             `json:"concurrency"`
	Rate          float64         `json:"rate"`
	Calls         int             `json:"calls"`
	OK            int             `json:"ok"`
	Errors        map[string]int  `json:"errors"`
	ErrorMessages []errorCount    `json:"error_messages"`
	DurationMS    float64         `json:"duration_ms"`
	RPS           float64         `json:"rps"`
	Interrupted   bool            `json:"interrupted"`
	LatencyMS     latencySummary  `json:"latency_ms"`
	Histogram     []histogramRow  `json:"histogram"`
	Schedule      *scheduleReport `json:"schedule,omitempty"`
}

type errorCount struct {
	Code    int32  `json:"code"`
	Message string `json:"message"`
	Count   int    `json:"count"`
}

type latencySummary struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

type histogramRow struct {
	LeMS  float64 `json:"le_ms"`
	Count uint64  `json:"count"`
}

type scheduleReport struct {
	Late        int     `json:"late"`
	LateAfterMS float64 `json:"late_after_ms"`
	LatenessMS  struct {
		P50 float64 `json:"p50"`
		P99 float64 `json:"p99"`
		Max float64 `json:"max"`
	} `json:"lateness_ms"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func (r *benchResult) rps() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return math.Round(float64(r.calls)/r.elapsed.Seconds()*10) / 10
}

// errorCounts lists the errors by code, then by message, the others last.
func (r *benchResult) errorCounts() []errorCount {
	out := make([]errorCount, 0, len(r.messages))
	for k, n := range r.messages {
		out = append(out, errorCount{Code: int32(k.code), Message: k.msg, Count: n})
	}
	slices.SortFunc(out, func(a, b errorCount) int {
		if a.Code != b.Code {
			return int(a.Code) - int(b.Code)
		}
		if (a.Message == otherMessages) != (b.Message == otherMessages) {
			if a.Message == otherMessages {
				return 1
			}
			return -1
		}
		return strings.Compare(a.Message, b.Message)
	})
	return out
}

func (r *benchResult) summary(cfg *benchConfig) benchSummary {
	s := benchSummary{
		Method:        cfg.method,
		Connections:   cfg.conns,
		Concurrency:   cfg.workers,
		Rate:          cfg.rate,
		Calls:         r.calls,
		OK:            r.ok(),
		Errors:        map[string]int{},
		ErrorMessages: r.errorCounts(),
		DurationMS:    ms(r.elapsed),
		RPS:           r.rps(),
		Interrupted:   r.interrupted,
		Histogram:     []histogramRow{},
	}
	for c, n := range r.errors {
		s.Errors[codeKey(c)] = n
	}
	h := &r.latency
	if h.Count() > 0 {
		s.LatencyMS = latencySummary{
			Min:  ms(h.Min()),
			Mean: ms(h.Mean()),
			P50:  ms(h.Quantile(0.50)),
			P90:  ms(h.Quantile(0.90)),
			P99:  ms(h.Quantile(0.99)),
			P999: ms(h.Quantile(0.999)),
			Max:  ms(h.Max()),
		}
		limits, counts := histogramRows(h)
		for i, le := range limits {
			s.Histogram = append(s.Histogram, histogramRow{LeMS: ms(le), Count: counts[i]})
		}
	}
	if cfg.rate > 0 {
		sr := &scheduleReport{Late: r.late, LateAfterMS: ms(lateAfter)}
		sr.LatenessMS.P50 = ms(r.lateness.Quantile(0.5))
		sr.LatenessMS.P99 = ms(r.lateness.Quantile(0.99))
		sr.LatenessMS.Max = ms(r.lateness.Max())
		s.Schedule = sr
	}
	return s
}

// histogramRows cuts the range of h at 1, 2 and 5 times the powers of ten
// (of nanoseconds): the limits from the first at or above h's smallest value
// to the first at or above its largest, and the count of each row.
func histogramRows(h *histogram.Histogram) ([]time.Duration, []uint64) {
	var limits []time.Duration
	for decade := time.Duration(1); ; decade *= 10 {
		for _, m := range []time.Duration{1, 2, 5} {
			le := decade * m
			if le < h.Min() && len(limits) == 0 {
				continue
			}
			limits = append(limits, le)
			if le >= h.Max() {
				return limits, h.Distribute(limits)[:len(limits)]
			}
		}
		if decade > math.MaxInt64/100 {
			limits = append(limits, math.MaxInt64)
			return limits, h.Distribute(limits)[:len(limits)]
		}
	}
}

// fmtMS formats a latency for people: milliseconds, three decimals.
func fmtMS(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/1e6) }

// print writes the summary for people.
func (r *benchResult) print(w io.Writer, cfg *benchConfig) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if r.interrupted {
		fmt.Fprintf(tw, "Summary (interrupted: the calls made until then):\n")
	} else {
		fmt.Fprintf(tw, "Summary:\n")
	}
	fmt.Fprintf(tw, "  calls:\t%d (%d ok, %d errors)\n", r.calls, r.ok(), r.calls-r.ok())
	fmt.Fprintf(tw, "  duration:\t%s\n", r.elapsed.Round(time.Microsecond))
	if cfg.rate > 0 {
		fmt.Fprintf(tw, "  rate:\t%.1f calls/s (scheduled: %g/s)\n", r.rps(), cfg.rate)
	} else {
		fmt.Fprintf(tw, "  rate:\t%.1f calls/s\n", r.rps())
	}
	fmt.Fprintf(tw, "  load:\t%d worker(s) on %d connection(s), method %s\n", cfg.workers, cfg.conns, cfg.method)
	if cfg.rate > 0 {
		fmt.Fprintf(tw, "  late:\t%d started more than %s after they were due (lateness p50 %s, p99 %s, max %s)\n",
			r.late, lateAfter, fmtMS(r.lateness.Quantile(0.5)), fmtMS(r.lateness.Quantile(0.99)), fmtMS(r.lateness.Max()))
	}
	tw.Flush()
	if len(r.errors) > 0 {
		fmt.Fprintf(w, "\nErrors:\n")
		for _, ec := range r.errorCounts() {
			if c := rpc.Code(ec.Code); c == handler.OtherCodes {
				fmt.Fprintf(tw, "  other codes\t%d\t(%s)\n", ec.Count, ec.Message)
			} else {
				fmt.Fprintf(tw, "  %d %s\t%d\t(%s)\n", ec.Code, c, ec.Count, ec.Message)
			}
		}
		tw.Flush()
	}
	h := &r.latency
	if h.Count() == 0 {
		return
	}
	if cfg.rate > 0 {
		fmt.Fprintf(w, "\nLatency (from when each call was due):\n")
	} else {
		fmt.Fprintf(w, "\nLatency:\n")
	}
	for _, row := range []struct {
		name string
		d    time.Duration
	}{
		{"min", h.Min()},
		{"mean", h.Mean()},
		{"p50", h.Quantile(0.50)},
		{"p90", h.Quantile(0.90)},
		{"p99", h.Quantile(0.99)},
		{"p99.9", h.Quantile(0.999)},
		{"max", h.Max()},
	} {
		fmt.Fprintf(tw, "  %s\t%10s\n", row.name, fmtMS(row.d))
	}
	tw.Flush()
	fmt.Fprintf(w, "\nHistogram (calls by latency, log scale):\n")
	writeHistogram(w, h)
}

// writeHistogram draws h in rows cut at 1, 2 and 5 times the powers of ten,
// each labelled with its upper bound: the calls of latency in (the row
// above's bound, this row's bound].
func writeHistogram(w io.Writer, h *histogram.Histogram) {
	const width = 40
	limits, counts := histogramRows(h)
	top := slices.Max(counts)
	digits := len(strconv.FormatUint(top, 10))
	for i, n := range counts {
		bar := strings.Repeat("■", int((n*width+top-1)/top))
		line := fmt.Sprintf("  ≤ %10s [%*d] %s", fmtMS(limits[i]), digits, n, bar)
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
}
