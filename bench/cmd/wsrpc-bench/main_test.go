package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The idle test re-executes this test binary as the child server, the
	// churn and soak tests as the child of killed clients, and the -nats
	// profile test as the serve processes.
	if len(os.Args) > 1 && (os.Args[1] == "-idle-server" || os.Args[1] == "-killed-clients" || os.Args[1] == natsChildFlag) {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

// runJSON runs the program with args, which ask for -json, and decodes
// what it prints into rep; it returns the output, for messages.
func runJSON(t *testing.T, ctx context.Context, args []string, rep any) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, args, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), rep); err != nil {
		t.Fatalf("%v in %s", err, stdout.String())
	}
	return stdout.String()
}

// TestMeasureEachImpl runs one quick cell of every implementation, each in
// another mode, so every implementation and every mode is exercised.
func TestMeasureEachImpl(t *testing.T) {
	for i, im := range allImpls {
		m := modes[i%len(modes)]
		t.Run(im.name+"/"+modeKey(m), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cfg := config{d: 100 * time.Millisecond, warm: 20 * time.Millisecond, sizes: []int{64}, modes: []mode{m}, impls: []impl{im}}
			var progress bytes.Buffer
			cells, err := measure(ctx, cfg, &progress)
			if err != nil {
				t.Fatal(err)
			}
			if len(cells) != 1 {
				t.Fatalf("got %d cells, want 1", len(cells))
			}
			c := cells[0]
			if c.Calls == 0 || c.ReqPerSec <= 0 || c.P50 <= 0 || c.P99 < c.P50 || c.AllocsPerCall <= 0 {
				t.Errorf("implausible cell: %+v", c)
			}
			if im.name == rawEcho.name && m.callers > 1 && !c.Pipelined {
				t.Error("raw echo with many callers should be pipelined")
			}
		})
	}
}

// TestRunQuick runs the program end to end on two implementations, with the
// JSON output, and checks that the ratios and targets are filled in.
func TestRunQuick(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args := []string{"-quick", "-d", "50ms", "-json", "-sizes", "64", "-modes", "seq", "-impls", "raw-echo,wsrpc-binary"}
	var rep report
	runJSON(t, ctx, args, &rep)
	if len(rep.Cells) != 2 || rep.Cells[1].VsRaw == nil || rep.Cells[1].VsRaw.P50 <= 0 {
		t.Fatalf("cells: %+v", rep.Cells)
	}
	if len(rep.Targets) != 1 || !strings.Contains(rep.Targets[0].Name, "p50") {
		t.Fatalf("targets: %+v", rep.Targets)
	}
}

// TestRunInterleaved runs two implementations interleaved in rounds: each
// gets a result over all its slices, and the report says how it was run.
func TestRunInterleaved(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args := []string{"-quick", "-d", "120ms", "-rounds", "3", "-json", "-sizes", "64", "-modes", "seq,conns", "-impls", "raw-echo,wsrpc-binary"}
	var rep report
	runJSON(t, ctx, args, &rep)
	if rep.Meta.Rounds != 3 || len(rep.Cells) != 4 {
		t.Fatalf("rounds %d, %d cells", rep.Meta.Rounds, len(rep.Cells))
	}
	for _, c := range rep.Cells {
		// Three slices of 40ms each, not one of 120ms: the elapsed time
		// adds up (a little over, for calls in flight when a slice ends).
		if c.Calls == 0 || c.Elapsed < 120*time.Millisecond || c.Elapsed > 2*time.Second {
			t.Errorf("%s %s: %d calls in %s", c.Impl, c.Mode, c.Calls, c.Elapsed)
		}
	}
	if rep.Cells[1].VsRaw == nil {
		t.Errorf("no ratio to raw-echo: %+v", rep.Cells[1])
	}
	var stderr bytes.Buffer
	if code := run(ctx, []string{"-rounds", "0"}, strings.NewReader(""), io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "-rounds") {
		t.Errorf("-rounds 0: exit %d, %q", code, stderr.String())
	}
}

// TestIdle opens a few idle connections to the child server and checks the
// figures it reports, the CPU of its heartbeat rounds among them.
func TestIdle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var progress bytes.Buffer
	res, err := measureIdle(ctx, idleConfig{conns: 20, heartbeat: 200 * time.Millisecond, wait: time.Second}, &progress)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if res.AfterWait.Conns != 20 || res.ClientsDropped != 0 {
		t.Errorf("conns %d, dropped %d", res.AfterWait.Conns, res.ClientsDropped)
	}
	if res.GoroutinesPerConn < 1 || res.RSSPerConnKiB <= 0 || len(res.GoroutineStacks) == 0 {
		t.Errorf("implausible: %+v", res)
	}
	if res.Heartbeat != "200ms" || res.HeartbeatRounds != 5 || res.WaitCPUSeconds <= 0 || res.CPUPerConnRoundUs <= 0 {
		t.Errorf("heartbeat %s, %.1f rounds, %.3f s CPU, %.2f µs a connection a round", res.Heartbeat, res.HeartbeatRounds, res.WaitCPUSeconds, res.CPUPerConnRoundUs)
	}
	var out bytes.Buffer
	if err := res.writeTable(&out); err != nil || !strings.Contains(out.String(), "Targets") {
		t.Errorf("table: %v\n%s", err, out.String())
	}
}

func TestCountFlag(t *testing.T) {
	tests := []struct {
		give string
		want int
	}{
		{give: "true", want: defaultIdleConns}, // -idle alone
		{give: "300", want: 300},
		{give: "false", want: 0},
	}
	for _, tt := range tests {
		f := countFlag{def: defaultIdleConns}
		if err := f.Set(tt.give); err != nil || f.n != tt.want {
			t.Errorf("Set(%q): n = %d, err = %v; want %d", tt.give, f.n, err, tt.want)
		}
	}
	f := countFlag{def: defaultIdleConns}
	if err := f.Set("many"); err == nil {
		t.Error("Set(many) succeeded")
	}
}

func TestHistQuantile(t *testing.T) {
	var h hist
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Microsecond)
	}
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}} {
		got := h.quantile(tt.q)
		if d := got - tt.want; d < -tt.want/100 || d > tt.want/100 {
			t.Errorf("q%.2f = %v, want %v ±1%%", tt.q, got, tt.want)
		}
	}
}
