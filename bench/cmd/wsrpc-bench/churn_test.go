package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestChurn runs the -churn mode end to end, small: 50 cycles (FIN and RST
// in turn) and one killed child of 20 connections, and checks the table and
// the verdict: every dropped connection gives back its fd and goroutines.
func TestChurn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	args := []string{"-churn", "50", "-churn-rounds", "1", "-churn-killed", "20"}
	code := run(ctx, args, strings.NewReader(""), &stdout, &stderr)
	out := stdout.String()
	for _, want := range []string{
		"wsrpc-bench -churn ",
		"rule: after each drop, fds ≤ baseline+2 and goroutines ≤ baseline+2 within 1s",
		"baseline before the first drop: fds ",
		"\nFIN: TCP socket closed, no close frame ",
		"\nRST: SO_LINGER 0, closed, no close frame ",
		"\nkilled: child of 20 conns, SIGKILL ",
		"\ntotal ",
		"\nfinal: fds ",
		"\nRSS ",
		"run time ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the output:\n%s", want, out)
		}
	}
	// One row per kind of drop: runs, then how many got back in time.
	rows := map[string][]string{}
	for line := range strings.SplitSeq(out, "\n") {
		if name, _, ok := strings.Cut(line, ":"); ok && (name == "FIN" || name == "RST" || name == "killed") {
			rows[name] = strings.Fields(line[strings.Index(line, "  "):])
		}
	}
	for name, want := range map[string]string{"FIN": "25", "RST": "25", "killed": "1"} {
		if r := rows[name]; len(r) < 3 || r[0] != want {
			t.Errorf("%s row: runs %v, want %s", name, r, want)
		}
	}
	if code != 0 || !strings.Contains(out, "\nPASS  every drop returned to baseline within 1s\n") {
		t.Errorf("exit %d, want 0 and PASS: a dropped connection kept an fd or a goroutine\n%s\n%s", code, out, stderr.String())
	}
}

// TestChurnReportsALeak leaks a file descriptor after every drop on purpose
// and checks that the run fails, stops after -churn-max-fail drops, and
// says what stayed.
func TestChurnReportsALeak(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var leaked []*os.File
	defer func() {
		for _, f := range leaked {
			f.Close()
		}
	}()
	cfg := churnConfig{cycles: 100, settle: 50 * time.Millisecond, slack: 2, maxFail: 3,
		afterDrop: func() {
			f, err := os.Open(os.DevNull)
			if err != nil {
				t.Error(err)
				return
			}
			leaked = append(leaked, f)
		}}
	var progress bytes.Buffer
	res, err := measureChurn(ctx, cfg, &progress)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if res.pass() || !res.stoppedEarly || res.cyclesDone != 5 || res.failed != 3 {
		t.Errorf("pass %v, stopped early %v after %d cycles with %d failed; want a failure after 5 cycles, 3 failed (2 within the slack)",
			res.pass(), res.stoppedEarly, res.cyclesDone, res.failed)
	}
	var out bytes.Buffer
	if err := res.writeTable(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\nFAIL  3 of 5 drops did not return to baseline within 50ms; the cycles stopped after 3 failed (-churn-max-fail) at 5 of 100\n",
		"  cycle 3 (FIN): after 50ms fds ",
		"(this drop +1), goroutines ",
		"  5 fds kept and no goroutine: the sockets of dropped connections are not closed\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in the output:\n%s", want, out.String())
		}
	}
}
