package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestStream runs -stream tiny, end to end with the JSON output: every
// system, both stream counts, a few thousand results each, and checks that
// every figure is there (TestMain checks that no goroutine is left).
func TestStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := []string{"-stream", "-d", "100ms", "-warm", "20ms", "-sizes", "64,4096", "-streams", "1,3", "-stream-window", "16", "-json"}
	var rep streamReport
	runJSON(t, ctx, args, &rep)
	if len(rep.Rows) != 2*2*len(streamSystems) {
		t.Fatalf("%d rows, want %d: %+v", len(rep.Rows), 2*2*len(streamSystems), rep.Rows)
	}
	for _, r := range rep.Rows {
		t.Logf("%-18s %4d B %d streams: %d results", r.System, r.Size, r.Streams, r.Results)
		if r.Results == 0 || r.PerSec <= 0 || r.MBPerSec <= 0 || r.AllocsPerResult <= 0 || r.CPUPerResult <= 0 {
			t.Errorf("implausible row: %+v", r)
		}
		if wantWindow := isWSRPC(r.System); wantWindow != (r.Window == 16) || (r.System != grpcEcho.name && r.System != grpcOwn.name) != (r.VsGRPC > 0) || (r.VsGRPC > 0) != (r.Ref == streamRef(r.System)) {
			t.Errorf("%s: window %d, ÷gRPC %.2f ÷ %q", r.System, r.Window, r.VsGRPC, r.Ref)
		}
	}
	if len(rep.Targets) != 4 { // 2 sizes × 2 stream counts, wsrpc-binary-value's
		t.Fatalf("targets: %+v", rep.Targets)
	}
	var table bytes.Buffer
	if err := rep.writeTable(&table); err != nil || !strings.Contains(table.String(), "Targets (issue 16)") {
		t.Errorf("table: %v\n%s", err, table.String())
	}
}
