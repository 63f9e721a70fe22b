package cli

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

func TestBenchJSON(t *testing.T) {
	ts := newTestServer(t)
	r := runCmd(t, "", "bench", "-n", "200", "--concurrency", "4", "-c", "2", "--json", ts.url, "echo", `["hello"]`)
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	var s benchSummary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("%v in %q", err, r.stdout)
	}
	if s.Calls != 200 || s.OK != 200 || len(s.Errors) != 0 || s.Connections != 2 || s.Concurrency != 4 {
		t.Errorf("summary = %+v, want 200 calls, all ok", s)
	}
	l := s.LatencyMS
	if !(l.Min > 0 && l.Min <= l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		t.Errorf("latencies out of order: %+v", l)
	}
	if s.DurationMS <= 0 || s.RPS <= 0 {
		t.Errorf("duration %v ms, rps %v", s.DurationMS, s.RPS)
	}
	// The field names are a promise to scripts.
	var raw map[string]any
	json.Unmarshal([]byte(r.stdout), &raw)
	for _, k := range []string{"calls", "errors", "duration_ms", "rps", "latency_ms"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("the JSON lacks %q", k)
		}
	}
	for _, k := range []string{"min", "p50", "p90", "p99", "p999", "max"} {
		if _, ok := raw["latency_ms"].(map[string]any)[k]; !ok {
			t.Errorf("latency_ms lacks %q", k)
		}
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
		`(?m)^Latency:$`,
		`(?m)^  p99\.9 +[\d.]+ms$`,
		`(?m)^Histogram:$`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("the summary does not match %s:\n%s", re, r.stdout)
		}
	}
	if n := len(regexp.MustCompile(`(?m)^ +[\d.]+ms \[ *\d+\]( ■+)?$`).FindAllString(r.stdout, -1)); n != 10 {
		t.Errorf("%d histogram rows, want 10:\n%s", n, r.stdout)
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
	r := runCmd(t, "", "bench", "-d", "100ms", "--concurrency", "2", "--json", ts.url, "add", "[1,2]")
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

func TestPercentile(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 1000; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	tests := []struct {
		give float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.9, 900 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {0.999, 999 * time.Millisecond}, {1, 1000 * time.Millisecond}, {0, time.Millisecond}}
	for _, tt := range tests {
		if got := percentile(lat, tt.give); got != tt.want {
			t.Errorf("percentile(%v) = %v, want %v", tt.give, got, tt.want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile of nothing = %v", got)
	}
	if got := percentile(lat[:1], 0.999); got != time.Millisecond {
		t.Errorf("percentile of one = %v", got)
	}
}

func TestHistogram(t *testing.T) {
	var b strings.Builder
	writeHistogram(&b, []time.Duration{time.Millisecond, time.Millisecond}) // all equal: no division by zero
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 10 || !strings.HasSuffix(lines[9], "[2] "+strings.Repeat("■", 40)) {
		t.Errorf("histogram of equal latencies:\n%s", b.String())
	}
	b.Reset()
	writeHistogram(&b, []time.Duration{0, 5 * time.Millisecond, 10 * time.Millisecond})
	golden(t, "histogram", b.String())
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
