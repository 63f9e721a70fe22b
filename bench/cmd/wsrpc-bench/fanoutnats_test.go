package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/natstest"
)

// needNATSServer skips t without nats-server, or fails it when CI is set
// (natstest's rule).
func needNATSServer(t *testing.T) {
	t.Helper()
	if _, err := natstest.Binary(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v (CI is set: the binary is required)", err)
		}
		t.Skipf("skipped: %v", err)
	}
}

// runNatsMode runs the -nats mode with args and returns its report.
func runNatsMode(t *testing.T, args ...string) *natsReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args = append([]string{"-nats", "-fanout-sizes", "64", "-d", "200ms", "-warm", "20ms", "-fanout-rate", "3000", "-json"}, args...)
	var rep natsReport
	runJSON(t, ctx, args, &rep)
	checkNothingLeft(t, &rep)
	return &rep
}

// checkNothingLeft checks that the run stopped every process it started
// and removed its temporary directory.
func checkNothingLeft(t *testing.T, rep *natsReport) {
	t.Helper()
	if _, err := os.Stat(rep.Dir); rep.Dir == "" || !os.IsNotExist(err) {
		t.Errorf("temporary directory %q: %v", rep.Dir, err)
	}
	dirs, _ := os.ReadDir("/proc")
	me := strconv.Itoa(os.Getpid())
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		if i := bytes.LastIndexByte(b, ')'); i >= 0 {
			if f := strings.Fields(string(b[i+1:])); len(f) > 1 && f[1] == me {
				t.Errorf("a child process is left: %s", b[:i+1])
			}
		}
	}
}

// TestNats runs -nats end to end at a tiny size (6 subscribers, a few
// hundred publications a phase): every system delivers every publication,
// and nothing it started is left.
func TestNats(t *testing.T) {
	needNATSServer(t)
	rep := runNatsMode(t, "-fanout-subs", "6")
	if len(rep.Rows) != 4 {
		t.Fatalf("%d rows, want 4: %+v", len(rep.Rows), rep.Rows)
	}
	for _, r := range rep.Rows {
		for _, p := range []fanPhase{r.Sat, r.Fixed} {
			if p.Publications == 0 || p.Deliveries != 6*p.Publications || p.Lost != 0 || p.Disconnected != 0 || p.PerSec <= 0 {
				t.Errorf("%s: implausible phase %+v", r.System, p)
			}
		}
		if r.Fixed.P50 <= 0 || r.Fixed.P99 < r.Fixed.P50 {
			t.Errorf("%s: latency p50 %v p99 %v", r.System, r.Fixed.P50, r.Fixed.P99)
		}
		if r.VsNATS == nil || r.VsMemory == nil || r.VsNATS.PerSec <= 0 {
			t.Errorf("%s: ratios %+v %+v", r.System, r.VsNATS, r.VsMemory)
		}
		if strings.HasPrefix(r.System, "wsrpc-") && r.Sat.ServerWrites == 0 {
			t.Errorf("%s: no write system calls counted in the serve processes", r.System)
		}
		if r.Leak != "" {
			t.Errorf("%s: left %s", r.System, r.Leak)
		}
	}
	if len(rep.Targets) != 2 || !strings.Contains(rep.Targets[0].Name, "vs nats.go") {
		t.Errorf("targets: %+v", rep.Targets)
	}
	var table bytes.Buffer
	if err := rep.writeTable(&table); err != nil || !strings.Contains(table.String(), "nats-per-sub") {
		t.Errorf("table: %v\n%s", err, table.String())
	}
}

// TestNatsProfile runs wsrpc-nats alone on two profiled serve processes
// (this test binary as the child) and checks the profiles are written.
func TestNatsProfile(t *testing.T) {
	needNATSServer(t)
	dir := t.TempDir()
	rep := runNatsMode(t, "-fanout-subs", "2", "-nats-systems", "wsrpc-nats", "-nats-procs", "2", "-nats-profile", dir)
	if len(rep.Rows) != 1 || rep.Rows[0].Sat.Deliveries == 0 {
		t.Fatalf("rows: %+v", rep.Rows)
	}
	for _, name := range []string{"bench.cpu.pprof", "wsrpc-nats-2subs-64B-proc1.cpu.pprof", "wsrpc-nats-2subs-64B-proc2.cpu.pprof"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Size() == 0 {
			t.Errorf("profile %s: %v", name, err)
		}
	}
}

func TestNatsFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-nats", "-nats-procs", "0"},
		{"-nats", "-fanout-sizes", "8192"},
		{"-nats", "-nats-systems", "centrifuge"},
		{"-nats", "-nats-wsrpc", "x", "-nats-profile", "y"},
		{"-nats", "-fanout"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2 (%s)", args, code, stderr.String())
		}
	}
}
