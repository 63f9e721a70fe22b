package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/internal/histogram"

	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

func TestBenchJSON(t *testing.T) {
	ts := newTestServer(t)
	r := runCmd(t, "", "bench", "-n", "200", "-c", "8", "--connections", "2", "--json", ts.url, "echo", `["hello"]`)
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	var s benchSummary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("%v in %q", err, r.stdout)
	}
	if s.Calls != 200 || s.OK != 200 || len(s.Errors) != 0 || s.Connections != 2 || s.Concurrency != 8 || s.Interrupted || s.Schedule != nil {
		t.Errorf("summary = %+v, want 200 calls, all ok", s)
	}
	l := s.LatencyMS
	if !(l.Min > 0 && l.Min <= l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max && l.Min <= l.Mean && l.Mean <= l.Max) {
		t.Errorf("latencies out of order: %+v", l)
	}
	if s.DurationMS <= 0 || s.RPS <= 0 {
		t.Errorf("duration %v ms, rps %v", s.DurationMS, s.RPS)
	}
	// The histogram counts every call, in rows of increasing bounds that
	// cover the slowest.
	var n uint64
	for i, row := range s.Histogram {
		n += row.Count
		if i > 0 && row.LeMS <= s.Histogram[i-1].LeMS {
			t.Errorf("histogram rows out of order: %+v", s.Histogram)
		}
	}
	if n != 200 || len(s.Histogram) == 0 || s.Histogram[len(s.Histogram)-1].LeMS < l.Max {
		t.Errorf("histogram %+v counts %d calls, want 200 up to %v ms", s.Histogram, n, l.Max)
	}
	// The field names are a promise to scripts.
	var raw map[string]any
	json.Unmarshal([]byte(r.stdout), &raw)
	for _, k := range []string{"calls", "errors", "error_messages", "duration_ms", "rps", "latency_ms", "histogram", "interrupted", "rate", "concurrency", "connections"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("the JSON lacks %q", k)
		}
	}
	for _, k := range []string{"min", "mean", "p50", "p90", "p99", "p999", "max"} {
		if _, ok := raw["latency_ms"].(map[string]any)[k]; !ok {
			t.Errorf("latency_ms lacks %q", k)
		}
	}
}

// newRPCServer serves h on bare rpc peers, one a connection, each open
// until the client ends it; onConnect, if not nil, runs first. It returns
// the server's ws:// URL.
func newRPCServer(t *testing.T, onConnect func(), h rpc.HandlerFunc) string {
	t.Helper()
	return newWSServer(t, &transport.AcceptOptions{Subprotocols: rpc.Subprotocols()}, func(c *transport.Conn) {
		if onConnect != nil {
			onConnect()
		}
		p, err := rpc.New(c, rpc.WithHandler(h))
		if err != nil {
			return
		}
		<-p.Done()
	})
}

// TestBenchWorkersAndConnections: -c counts the calls in flight at once,
// --connections the connections they share (hey's and ghz's meaning).
func TestBenchWorkersAndConnections(t *testing.T) {
	const workers, conns = 6, 3
	var (
		connected atomic.Int32
		inFlight  atomic.Int32
		mu        sync.Mutex
		peak      int32
		all       = make(chan struct{}) // closed once every worker has a call in flight
		once      sync.Once
	)
	url := newRPCServer(t, func() { connected.Add(1) }, func(ctx context.Context, _ *rpc.Request) ([]byte, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		mu.Lock()
		peak = max(peak, n)
		mu.Unlock()
		if n == workers {
			once.Do(func() { close(all) })
		}
		select { // hold the first calls until all the workers are in
		case <-all:
		case <-ctx.Done():
		}
		return []byte("1"), nil
	})
	r := runCmd(t, "", "bench", "-n", "60", "-c", strconv.Itoa(workers), "--connections", strconv.Itoa(conns), "--json", url, "m")
	if r.code != exitOK {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	var s benchSummary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if s.OK != 60 || connected.Load() != conns || peak != workers {
		t.Errorf("%d ok, %d connections, at most %d calls in flight; want 60, %d, %d", s.OK, connected.Load(), peak, conns, workers)
	}
}

func TestBenchText(t *testing.T) {
	ts := newTestServer(t)
	r := runCmd(t, "", "bench", "-n", "100", "--payload-size", "256", "--codec", "json", ts.url, "echo")
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	for _, re := range []string{
		`(?m)^Summary:$`,
		`(?m)^  calls: +100 \(100 ok, 0 errors\)$`,
		`(?m)^  rate: +[\d.]+ calls/s$`,
		`(?m)^  load: +1 worker\(s\) on 1 connection\(s\), method echo$`,
		`(?m)^Latency:$`,
		`(?m)^  mean +[\d.]+ms$`,
		`(?m)^  p99\.9 +[\d.]+ms$`,
		`(?m)^Histogram \(calls by latency, log scale\):$`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("the summary does not match %s:\n%s", re, r.stdout)
		}
	}
	rows := regexp.MustCompile(`(?m)^  ≤ +[\d.]+ms \[ *(\d+)\]( ■+)?$`).FindAllStringSubmatch(r.stdout, -1)
	n := 0
	for _, row := range rows {
		c, _ := strconv.Atoi(row[1])
		n += c
	}
	if len(rows) == 0 || n != 100 {
		t.Errorf("%d histogram rows counting %d calls, want 100:\n%s", len(rows), n, r.stdout)
	}
}

// TestBenchRate: with -r the calls follow the schedule: the last of n calls
// is due (n-1)/rate after the start, so the run cannot end sooner.
func TestBenchRate(t *testing.T) {
	ts := newTestServer(t)
	r := runCmd(t, "", "bench", "-r", "200", "-n", "40", "-c", "4", "--json", ts.url, "echo", `["hi"]`)
	if r.code != exitOK {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	var s benchSummary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatal(err)
	}
	if s.Calls != 40 || s.OK != 40 || s.Rate != 200 || s.Schedule == nil {
		t.Fatalf("summary = %+v", s)
	}
	if s.DurationMS < 195 {
		t.Errorf("40 calls at 200/s took %v ms: the schedule was not followed (want at least 195 ms)", s.DurationMS)
	}
	if s.Schedule.LateAfterMS != 1 || s.Schedule.Late < 0 || s.Schedule.Late > 40 {
		t.Errorf("schedule = %+v", *s.Schedule)
	}
}

// TestBenchRateShowsStalls: one worker, a server taking 50ms a call, and a
// schedule of one call each 10ms: the calls start later and later, and the
// latency, measured from when each was due, shows the wait (no coordinated
// omission). Lower bounds only: the calls cannot go faster than the sleep.
func TestBenchRateShowsStalls(t *testing.T) {
	ts := newTestServer(t)
	r := runCmd(t, "", "bench", "-r", "100", "-n", "5", "-c", "1", "--json", ts.url, "sleep", `{"ms":50}`)
	if r.code != exitOK {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	var s benchSummary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatal(err)
	}
	// Call i (0-4) is due at 10i ms and starts after the i calls before it,
	// at 50i ms or later: calls 1-4 are at least 40i ms late, and the last
	// one's latency from when it was due is at least 200 - 40 + 50 ms.
	if s.Schedule == nil || s.Schedule.Late < 4 || s.Schedule.LatenessMS.Max < 160*0.99 {
		t.Errorf("schedule = %+v, want 4 calls late, the last by at least 160ms", s.Schedule)
	}
	if s.LatencyMS.Max < 210*0.99 || s.LatencyMS.Min < 50*0.99 {
		t.Errorf("latency = %+v, want at least 50ms and a max of at least 210ms", s.LatencyMS)
	}

	r = runCmd(t, "", "bench", "-r", "100", "-n", "5", "-c", "1", ts.url, "sleep", `{"ms":50}`)
	for _, re := range []string{
		`(?m)^  rate: +[\d.]+ calls/s \(scheduled: 100/s\)$`,
		`(?m)^  late: +[45] started more than 1ms after they were due \(lateness p50 [\d.]+ms, p99 [\d.]+ms, max [\d.]+ms\)$`,
		`(?m)^Latency \(from when each call was due\):$`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("the summary does not match %s:\n%s", re, r.stdout)
		}
	}
}

// TestBenchInterrupted: SIGINT (the end of the command's ctx) stops the run;
// what was measured is printed, marked as interrupted, and the exit
// status is 130.
func TestBenchInterrupted(t *testing.T) {
	for _, asJSON := range []bool{true, false} {
		var calls atomic.Int32
		twenty := make(chan struct{})
		url := newRPCServer(t, nil, func(context.Context, *rpc.Request) ([]byte, error) {
			if calls.Add(1) == 20 {
				close(twenty)
			}
			return []byte("1"), nil
		})
		args := []string{"bench", "-d", "1m", "-c", "2", url, "m"}
		if asJSON {
			args = append(args, "--json")
		}
		b := start(t, strings.NewReader(""), args...)
		select {
		case <-twenty:
		case <-b.ended:
			t.Fatalf("bench ended: %s", b.stderr.String())
		}
		b.cancel()
		if code := b.wait(t); code != exitInterrupted {
			t.Errorf("code = %d, want 130", code)
		}
		if !regexp.MustCompile(`^wsrpc bench: interrupted after [\d.]+m?s; the summary is of the calls made until then\n$`).MatchString(b.stderr.String()) {
			t.Errorf("stderr = %q", b.stderr.String())
		}
		if !asJSON {
			if !strings.HasPrefix(b.stdout.String(), "Summary (interrupted: the calls made until then):\n") {
				t.Errorf("stdout = %q", b.stdout.String())
			}
			continue
		}
		var s benchSummary
		if err := json.Unmarshal([]byte(b.stdout.String()), &s); err != nil {
			t.Fatalf("%v in %q", err, b.stdout.String())
		}
		// The server answered 20 calls; the (at most 2) in flight when the
		// run stopped are not results.
		if !s.Interrupted || s.Calls < 18 || s.OK != s.Calls {
			t.Errorf("summary = %+v, want interrupted after at least 18 calls", s)
		}
	}
}

// TestBenchErrorMessages: errors are counted by code and message.
func TestBenchErrorMessages(t *testing.T) {
	var n atomic.Int32
	url := newRPCServer(t, nil, func(context.Context, *rpc.Request) ([]byte, error) {
		switch i := n.Add(1); i % 3 {
		case 0:
			return []byte("1"), nil
		case 1:
			return nil, rpc.Errorf(rpc.CodeInvalidParams, "odd")
		default:
			return nil, rpc.Errorf(rpc.CodeInvalidParams, "even")
		}
	})
	r := runCmd(t, "", "bench", "-n", "30", "--json", url, "m")
	if r.code != exitOK {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	var s benchSummary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatal(err)
	}
	want := []errorCount{{-32602, "even", 10}, {-32602, "odd", 10}}
	if s.OK != 10 || s.Errors["-32602"] != 20 || !slices.Equal(s.ErrorMessages, want) {
		t.Errorf("ok %d, errors %v, messages %+v; want 10, 20, %+v", s.OK, s.Errors, s.ErrorMessages, want)
	}
}

func TestBenchErrors(t *testing.T) {
	ts := newTestServer(t)
	r := runCmd(t, "", "bench", "-n", "50", "--json", ts.url, "nope")
	if r.code != exitFailure {
		t.Errorf("code = %d, want 1 when no call succeeds", r.code)
	}
	if got := oneLine(t, result{stderr: r.stderr}); got != "wsrpc bench: no call succeeded" {
		t.Errorf("stderr = %q", got)
	}
	var s benchSummary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatal(err)
	}
	if s.Calls != 50 || s.OK != 0 || s.Errors["-32601"] != 50 {
		t.Errorf("summary = %+v, want 50 method-not-found errors", s)
	}

	r = runCmd(t, "", "bench", "-n", "10", ts.url, "nope")
	if !regexp.MustCompile(`(?m)^  -32601 method not found +10 +\(method "nope" not found\)$`).MatchString(r.stdout) {
		t.Errorf("the text summary does not count the errors by code:\n%s", r.stdout)
	}
}

func TestBenchDuration(t *testing.T) {
	ts := newTestServer(t)
	r := runCmd(t, "", "bench", "-d", "100ms", "-c", "2", "--json", ts.url, "add", "[1,2]")
	if r.code != exitOK {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	var s benchSummary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatal(err)
	}
	if s.Calls == 0 || s.OK != s.Calls {
		t.Errorf("summary = %+v", s)
	}
}

func TestBenchConnectionLost(t *testing.T) {
	url := newWSServer(t, &transport.AcceptOptions{Subprotocols: rpc.Subprotocols()}, func(c *transport.Conn) {
		var n atomic.Int32
		tenth := make(chan struct{})
		p, err := rpc.New(c, rpc.WithHandler(rpc.HandlerFunc(func(context.Context, *rpc.Request) ([]byte, error) {
			if n.Add(1) == 10 {
				close(tenth)
			}
			return []byte("1"), nil
		})))
		if err != nil {
			return
		}
		select {
		case <-tenth:
		case <-p.Done():
		}
		p.CloseNow() // the server drops the connection mid-test
	})
	r := runCmd(t, "", "bench", "-d", "10s", "--json", url, "m")
	if r.code != exitFailure {
		t.Errorf("code = %d, want 1", r.code)
	}
	if got := oneLine(t, result{stderr: r.stderr}); !strings.HasPrefix(got, "wsrpc bench: a connection was lost during the test: 1006 abnormal closure") {
		t.Errorf("stderr = %q", got)
	}
	var s benchSummary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("no summary: %v in %q", err, r.stdout)
	}
	if s.OK < 9 {
		t.Errorf("summary = %+v, want the calls made before the loss", s)
	}
}

func TestBenchUnreachable(t *testing.T) {
	r := runCmd(t, "", "bench", "-c", "3", "ws://127.0.0.1:1/rpc", "echo")
	if r.code != exitFailure {
		t.Errorf("code = %d, want 1", r.code)
	}
	if got, want := oneLine(t, r), "wsrpc bench: dial ws://127.0.0.1:1/rpc: connection refused"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
}

func TestHistogram(t *testing.T) {
	var h histogram.Histogram
	h.Record(time.Millisecond)
	h.Record(time.Millisecond)
	var b strings.Builder
	writeHistogram(&b, &h) // all equal: one row
	if got, want := b.String(), "  ≤    1.000ms [2] "+strings.Repeat("■", 40)+"\n"; got != want {
		t.Errorf("histogram of equal latencies:\n%q, want\n%q", got, want)
	}
	h = histogram.Histogram{}
	for _, d := range []time.Duration{30 * time.Microsecond, 400 * time.Microsecond, 450 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond, 1500 * time.Millisecond} {
		h.Record(d)
	}
	b.Reset()
	writeHistogram(&b, &h)
	golden(t, "histogram", b.String())
}

func TestBenchProgressLine(t *testing.T) {
	p := benchProgress{done: 12000, failed: 3, late: 7, elapsed: 2345 * time.Millisecond, rate: 5321.4}
	if got, want := p.line(false), "12000 calls, 3 errors, 2.3s, 5321 calls/s"; got != want {
		t.Errorf("line = %q, want %q", got, want)
	}
	if got, want := p.line(true), "12000 calls, 3 errors, 2.3s, 5321 calls/s, 7 late"; got != want {
		t.Errorf("line with a rate = %q, want %q", got, want)
	}
	// The rate is that of the last second or so, not of the whole run.
	var m rateMeter
	tests := []struct {
		at    time.Duration
		count int64
		want  float64
	}{
		{250 * time.Millisecond, 250, 1000}, // since the start
		{500 * time.Millisecond, 500, 1000},
		{750 * time.Millisecond, 750, 1000},
		{time.Second, 1000, 1000},
		{1250 * time.Millisecond, 1250, 1000}, // over the last second
		{1500 * time.Millisecond, 1250, 750},  // a stall
		{1750 * time.Millisecond, 1250, 500},
		{2000 * time.Millisecond, 1250, 250},
		{2250 * time.Millisecond, 1250, 0},
		{2500 * time.Millisecond, 3250, 2000}, // 2000 in the last second
	}
	for _, tt := range tests {
		if got := m.sample(tt.at, tt.count); math.Abs(got-tt.want) > 0.01 {
			t.Errorf("rate at %v = %v, want %v", tt.at, got, tt.want)
		}
	}
}

func TestCountErrorIsBounded(t *testing.T) {
	errs, msgs := map[rpc.Code]int{}, map[errorKey]int{}
	for i := range 200 {
		countError(errs, msgs, errorKey{rpc.CodeInvalidParams, fmt.Sprintf("bad id %d", i)}, 1)
	}
	countError(errs, msgs, errorKey{rpc.CodeInvalidParams, "bad id 3"}, 1) // seen: counted by itself
	other := errorKey{rpc.CodeInvalidParams, otherMessages}
	if len(msgs) != maxErrorMessages+1 || errs[rpc.CodeInvalidParams] != 201 || msgs[other] != 200-maxErrorMessages || msgs[errorKey{rpc.CodeInvalidParams, "bad id 3"}] != 2 {
		t.Errorf("%d messages, %d errors, %d others", len(msgs), errs[rpc.CodeInvalidParams], msgs[other])
	}
}

// TestCountErrorCodesBounded: the codes are the server's to choose, so they
// are bounded too, and so are the messages' bytes.
func TestCountErrorCodesBounded(t *testing.T) {
	errs, msgs := map[rpc.Code]int{}, map[errorKey]int{}
	for i := range 1000 {
		countError(errs, msgs, errorKey{rpc.Code(-31000 - i), "app"}, 1)
	}
	if len(errs) != maxErrorCodes+1 || errs[handler.OtherCodes] != 1000-maxErrorCodes || len(msgs) > maxErrorMessages+maxErrorCodes+1 {
		t.Errorf("%d codes (%d other), %d messages", len(errs), errs[handler.OtherCodes], len(msgs))
	}
	r := &benchResult{errors: errs, messages: msgs}
	if sum := r.summary(&benchConfig{}); sum.Errors["other"] != 1000-maxErrorCodes {
		t.Errorf("--json errors: other %d", sum.Errors["other"])
	}
	long := errorMessage(rpc.NewError(-32050, strings.Repeat("x", 1<<20)))
	if len(long) > 300 {
		t.Errorf("an error message of 1 MiB kept as %d bytes", len(long))
	}
}

func TestPayload(t *testing.T) {
	for _, n := range []int{4, 5, 100} {
		p := payload(n)
		var v []string
		if len(p) != n || json.Unmarshal(p, &v) != nil || len(v) != 1 {
			t.Errorf("payload(%d) = %q", n, p)
		}
	}
}
