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
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

var benchHelp = help{
	usage: "bench [flags] URL METHOD [PARAMS]",
	about: `
Calls METHOD as fast as the server answers, over -c connections with
--concurrency calls in flight on each, for -n calls in all or for -d, then
prints a summary: calls, errors by code, duration, calls per second, latency
percentiles and a histogram (--json: the same as JSON on stdout, with the
fields calls, ok, errors {code: count}, duration_ms, rps and latency_ms
{min, p50, p90, p99, p999, max}).

PARAMS is JSON, or - for stdin; --payload-size N sends instead a JSON array of
one string, N bytes in all (which echo sends back). The latencies include every
call, failed ones too. The exit status is 1 when no call succeeded or
a connection was lost. A live progress line is drawn on stderr when it is a
terminal. SIGINT stops early and prints what was measured.`,
	examples: `
wsrpc bench ws://127.0.0.1:8080/rpc echo '["hello"]'
wsrpc bench -c 4 --concurrency 32 -d 10s ws://127.0.0.1:8080/rpc add '[1,2]'
wsrpc bench -n 100000 --payload-size 1024 --codec json --json ws://127.0.0.1:8080/rpc echo`,
}

// benchConfig is one load test.
type benchConfig struct {
	url         string
	method      string
	params      any // nil or rpc.Raw
	conns       int
	concurrency int
	total       int             // calls in all; 0 when duration is set
	duration    time.Duration   // how long calls are started; 0 when total is set
	timeout     time.Duration   // per call; 0: none
	dial        []client.Option // for client.Dial, beside the bench's own
}

// benchResult is what a load test measured.
type benchResult struct {
	calls     int
	errors    map[rpc.Code]int
	messages  map[rpc.Code]string // the first error message of each code
	elapsed   time.Duration
	latencies []time.Duration // sorted
	lost      error           // why a connection ended before the test did, if one did
}

func (r *benchResult) ok() int {
	n := r.calls
	for _, c := range r.errors {
		n -= c
	}
	return n
}

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
	fs.IntVar(&cfg.conns, "c", 1, "open `n` connections")
	fs.IntVar(&cfg.concurrency, "concurrency", 1, "keep `n` calls in flight on each connection")
	fs.IntVar(&cfg.total, "n", 1000, "make `n` calls in all (or use -d)")
	fs.DurationVar(&cfg.duration, "d", 0, "start calls for this `duration` instead of making -n calls")
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
	case cfg.conns < 1:
		return usagef("-c must be at least 1")
	case cfg.concurrency < 1:
		return usagef("--concurrency must be at least 1")
	case set["n"] && set["d"]:
		return usagef("-n and -d exclude each other")
	case set["d"] && cfg.duration <= 0:
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
	cfg.dial = append(d.clientOptions(e, "bench"), codec.options()...)

	var progress func(done, failed int64, elapsed time.Duration)
	if e.stderrTTY && !asJSON {
		progress = func(done, failed int64, elapsed time.Duration) {
			fmt.Fprintf(e.stderr, "\r\033[K%d calls, %d errors, %s", done, failed, elapsed.Round(100*time.Millisecond))
		}
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

// benchLoad runs the load test. progress, if not nil, is called a few
// times a second from another goroutine.
func benchLoad(ctx context.Context, cfg *benchConfig, progress func(done, failed int64, elapsed time.Duration)) (*benchResult, error) {
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
		issued, done, failed atomic.Int64
		wg                   sync.WaitGroup
		mu                   sync.Mutex
		res                  = &benchResult{errors: map[rpc.Code]int{}, messages: map[rpc.Code]string{}}
	)
	start := time.Now()
	var deadline time.Time
	if cfg.duration > 0 {
		deadline = start.Add(cfg.duration)
	}
	worker := func(c *client.Client, p *rpc.Peer) {
		defer wg.Done()
		lat := make([]time.Duration, 0, 1024)
		errs := map[rpc.Code]int{}
		msgs := map[rpc.Code]string{}
		var lost error
		for ctx.Err() == nil {
			if cfg.total > 0 && issued.Add(1) > int64(cfg.total) {
				break
			}
			if !deadline.IsZero() && !time.Now().Before(deadline) {
				break
			}
			t0 := time.Now()
			err := c.Call(ctx, cfg.method, cfg.params, nil)
			d := time.Since(t0)
			if err != nil && ctx.Err() != nil {
				break // interrupted: not a result
			}
			lat = append(lat, d)
			done.Add(1)
			if err != nil {
				failed.Add(1)
				code := rpc.CodeOf(err)
				errs[code]++
				if _, ok := msgs[code]; !ok {
					msgs[code] = errorMessage(err)
				}
				select {
				case <-p.Done():
					lost = p.Err()
				case <-p.GoingAway():
					lost = errGoingAway // every further call would fail at once
				default:
				}
				if lost != nil {
					break
				}
			}
		}
		mu.Lock()
		defer mu.Unlock()
		res.latencies = append(res.latencies, lat...)
		for c, n := range errs {
			res.errors[c] += n
			if _, ok := res.messages[c]; !ok {
				res.messages[c] = msgs[c]
			}
		}
		if lost != nil && res.lost == nil {
			res.lost = lost
		}
	}
	for i, c := range clients {
		for range cfg.concurrency {
			wg.Add(1)
			go worker(c, peers[i])
		}
	}
	if progress != nil {
		stop := make(chan struct{})
		var pw sync.WaitGroup
		pw.Add(1)
		go func() { // owned: stopped and waited for below
			defer pw.Done()
			tick := time.NewTicker(250 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-tick.C:
					progress(done.Load(), failed.Load(), time.Since(start))
				case <-stop:
					return
				}
			}
		}()
		defer func() { close(stop); pw.Wait() }()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.calls = len(res.latencies)
	slices.Sort(res.latencies)
	return res, nil
}

var errGoingAway = errors.New("the server is shutting down")

// errorMessage is the message of an *rpc.Error, or the error's text.
func errorMessage(err error) string {
	var e *rpc.Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return err.Error()
}

// percentile returns the q-quantile of sorted latencies (nearest rank).
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// benchSummary is the --json output. Its field names are stable.
type benchSummary struct {
	Method      string         `json:"method"`
	Connections int            `json:"connections"`
	Concurrency int            `json:"concurrency"`
	Calls       int            `json:"calls"`
	OK          int            `json:"ok"`
	Errors      map[string]int `json:"errors"`
	DurationMS  float64        `json:"duration_ms"`
	RPS         float64        `json:"rps"`
	LatencyMS   latencySummary `json:"latency_ms"`
}

type latencySummary struct {
	Min  float64 `json:"min"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func (r *benchResult) rps() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return math.Round(float64(r.calls)/r.elapsed.Seconds()*10) / 10
}

func (r *benchResult) summary(cfg *benchConfig) benchSummary {
	s := benchSummary{
		Method:      cfg.method,
		Connections: cfg.conns,
		Concurrency: cfg.concurrency,
		Calls:       r.calls,
		OK:          r.ok(),
		Errors:      map[string]int{},
		DurationMS:  ms(r.elapsed),
		RPS:         r.rps(),
	}
	for c, n := range r.errors {
		s.Errors[strconv.Itoa(int(c))] = n
	}
	if len(r.latencies) > 0 {
		s.LatencyMS = latencySummary{
			Min:  ms(r.latencies[0]),
			P50:  ms(percentile(r.latencies, 0.50)),
			P90:  ms(percentile(r.latencies, 0.90)),
			P99:  ms(percentile(r.latencies, 0.99)),
			P999: ms(percentile(r.latencies, 0.999)),
			Max:  ms(r.latencies[len(r.latencies)-1]),
		}
	}
	return s
}

// fmtMS formats a latency for people: milliseconds, three decimals.
func fmtMS(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/1e6) }

// print writes the summary for people.
func (r *benchResult) print(w io.Writer, cfg *benchConfig) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Summary:\n")
	fmt.Fprintf(tw, "  calls:\t%d (%d ok, %d errors)\n", r.calls, r.ok(), r.calls-r.ok())
	fmt.Fprintf(tw, "  duration:\t%s\n", r.elapsed.Round(time.Microsecond))
	fmt.Fprintf(tw, "  rate:\t%.1f calls/s\n", r.rps())
	fmt.Fprintf(tw, "  load:\t%d connection(s) × %d in flight, method %s\n", cfg.conns, cfg.concurrency, cfg.method)
	tw.Flush()
	if len(r.errors) > 0 {
		fmt.Fprintf(w, "\nErrors:\n")
		codes := make([]rpc.Code, 0, len(r.errors))
		for c := range r.errors {
			codes = append(codes, c)
		}
		slices.Sort(codes)
		for _, c := range codes {
			fmt.Fprintf(tw, "  %d %s\t%d\t(%s)\n", int32(c), c, r.errors[c], r.messages[c])
		}
		tw.Flush()
	}
	if len(r.latencies) == 0 {
		return
	}
	lat := r.latencies
	fmt.Fprintf(w, "\nLatency:\n")
	for _, row := range []struct {
		name string
		d    time.Duration
	}{
		{"min", lat[0]},
		{"p50", percentile(lat, 0.50)},
		{"p90", percentile(lat, 0.90)},
		{"p99", percentile(lat, 0.99)},
		{"p99.9", percentile(lat, 0.999)},
		{"max", lat[len(lat)-1]},
	} {
		fmt.Fprintf(tw, "  %s\t%10s\n", row.name, fmtMS(row.d))
	}
	tw.Flush()
	fmt.Fprintf(w, "\nHistogram:\n")
	writeHistogram(w, lat)
}

// writeHistogram draws the latencies in ten buckets of equal width between
// the fastest and the slowest call, each labelled with its upper bound.
func writeHistogram(w io.Writer, sorted []time.Duration) {
	const buckets, width = 10, 40
	lo, hi := sorted[0], sorted[len(sorted)-1]
	step := (hi - lo) / buckets
	counts := make([]int, buckets)
	for _, d := range sorted {
		i := buckets - 1
		if step > 0 {
			i = min(int((d-lo)/step), buckets-1)
		}
		counts[i]++
	}
	top := slices.Max(counts)
	for i, n := range counts {
		bound := lo + step*time.Duration(i+1)
		if i == buckets-1 {
			bound = hi
		}
		bar := strings.Repeat("■", (n*width+top-1)/top)
		line := fmt.Sprintf("  %10s [%*d] %s", fmtMS(bound), len(strconv.Itoa(top)), n, bar)
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
}
