package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestFanout runs the -fanout mode end to end on a tiny cell (2
// subscribers, 64 B, 200 ms phases) of every system, with the JSON output,
// and checks the figures are plausible.
func TestFanout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := []string{"-fanout", "-fanout-subs", "2", "-fanout-sizes", "64", "-d", "200ms", "-warm", "20ms",
		"-fanout-rate", "2000", "-json"}
	var rep fanReport
	out := runJSON(t, ctx, args, &rep)
	if len(rep.Rows) != len(fanSystems) {
		t.Fatalf("%d rows, want %d: %s", len(rep.Rows), len(fanSystems), out)
	}
	for _, r := range rep.Rows {
		if r.Skipped != "" {
			if r.System != "wsrpc" {
				t.Errorf("%s skipped: %s", r.System, r.Skipped)
			}
			continue
		}
		for _, p := range []fanPhase{r.Sat, r.Fixed} {
			if p.Publications == 0 || p.Deliveries != 2*p.Publications || p.Lost != 0 || p.Disconnected != 0 ||
				p.PerSec <= 0 || p.CPUPerDlv <= 0 {
				t.Errorf("%s: implausible phase %+v", r.System, p)
			}
		}
		if r.Fixed.P50 <= 0 || r.Fixed.P99 < r.Fixed.P50 {
			t.Errorf("%s: latency p50 %v p99 %v", r.System, r.Fixed.P50, r.Fixed.P99)
		}
		if r.VsCentrifuge == nil || r.VsCentrifuge.PerSec <= 0 {
			t.Errorf("%s: no ratios to centrifuge", r.System)
		}
		if r.Leak != "" {
			t.Errorf("%s: left %s", r.System, r.Leak)
		}
	}
	var table bytes.Buffer
	if err := newFanReport(fanoutConfig{d: time.Second, rate: 1, window: 2}, rep.Rows).writeTable(&table); err != nil ||
		!strings.Contains(table.String(), "raw-batch") {
		t.Errorf("table: %v\n%s", err, table.String())
	}
}

func TestFanoutFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-fanout", "-fanout-subs", "0"},
		{"-fanout", "-fanout-sizes", "8"},
		{"-fanout", "-fanout-systems", "nats"},
		{"-fanout", "-soak", "1s"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2 (%s)", args, code, stderr.String())
		}
	}
}

// TestFanoutScan checks that a subscriber finds every stamp however the
// publications are packed, and reads the times back.
func TestFanoutScan(t *testing.T) {
	tmpl := newPayload(fanMinSize)
	if len(tmpl) != fanMinSize || !json.Valid(tmpl) {
		t.Fatalf("template %q", tmpl)
	}
	now := time.Now().UnixNano()
	p := stamped(tmpl, now)
	if ts, ok := parseStamp(p[2 : 2+stampDigits]); !json.Valid(p) || !ok || ts != now {
		t.Fatalf("stamped %q, want %d", p, now)
	}
	var h hist
	s := &fanSub{run: &fanRun{}, lat: &h}
	packed := []byte(`[{"params":{"data":` + string(p) + `}},{"params":{"data":` + string(stamped(tmpl, now+1)) + `}}]` + "\n" +
		`{"push":{"channel":"bench","pub":{"data":` + string(stamped(tmpl, now+2)) + `}}}`)
	if k := s.scan(packed); k != 3 || h.n != 0 {
		t.Errorf("scan: %d publications, %d latencies; want 3, 0", k, h.n)
	}
	s.run.rec.Store(true)
	if k := s.scan(packed); k != 3 || h.n != 3 {
		t.Errorf("scan recording: %d publications, %d latencies; want 3, 3", k, h.n)
	}
	if k := s.scan([]byte(`{"id":2,"subscribe":{"x":"@1234567890123456789:"}}@1234567890123456789:"@12345678901234567890`)); k != 1 {
		t.Errorf("a bare or short stamp counted: %d publications, want 1", k)
	}
	if k := s.scan([]byte(`{"id":2,"subscribe":{}}`)); k != 0 {
		t.Errorf("a reply counted as %d publications", k)
	}
	for msg, want := range map[string]bool{"{}": true, "{}\n{\"push\":{}}": true, "{\"push\":{}}\n{}": true, "{\"push\":{\"pub\":{}}}": false} {
		if centrifugePing([]byte(msg)) != want {
			t.Errorf("centrifugePing(%q) = %v", msg, !want)
		}
	}
}
