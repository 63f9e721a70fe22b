package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestSoak runs the -soak mode for 2 s with every load, small (one caller,
// one slow reader, a killed child of 10 connections every second), and
// checks the rows and the verdict. Memory over 2 s is noise, so only the
// structure of those lines is checked; fds, goroutines and errors must pass.
func TestSoak(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	args := []string{"-soak", "2s", "-soak-callers", "1", "-soak-slow", "1", "-soak-killed", "10", "-soak-kill-every", "1s"}
	code := run(ctx, args, strings.NewReader(""), &stdout, &stderr)
	out := stdout.String()
	if code != 0 && code != 1 {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr.String())
	}
	for _, want := range []string{
		"wsrpc-bench -soak 2s ",
		"a row every 250ms",
		"server: WithMaxConns ",
		" elapsed  RSS MiB  heap MiB  goroutines    fds  conns   calls/s  notes/s  churn/s  killed  slow drop  errors\n",
		"\ntotals over 2s:\n",
		"\n  after shutdown fds ",
		"\nflatness: mean of the last 2 rows vs the first 2; rule: last ≤ first × 1.2 + slack\n",
		"\n  PASS  goroutines ",
		"\n  PASS  fds ",
		"\n  PASS  errors       0 unexpected",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the output:\n%s\n%s", want, out, stderr.String())
		}
	}
	if !regexp.MustCompile(`\n  slow readers +\d+ opened, `).MatchString(out) {
		t.Errorf("no slow readers line in the output:\n%s", out)
	}
	row := regexp.MustCompile(`(?m)^ +[0-9.]+m?s +[0-9.]+ +[0-9.]+ +\d+ +\d+ +\d+ +\d+ +\d+ +\d+ +\d+ +\d+ +\d+$`)
	if rows := row.FindAllString(out, -1); len(rows) != 8 {
		t.Errorf("%d rows, want 8 (2s / 250ms):\n%s", len(rows), out)
	}
	for _, fig := range []string{"RSS", "heap in use"} {
		if !regexp.MustCompile(`\n  (PASS|FAIL)  ` + fig + ` +first +[0-9.]+ MiB  last +[0-9.]+ MiB  ratio +[0-9.]+  \(rule: `).MatchString(out) {
			t.Errorf("no judgement of %s:\n%s", fig, out)
		}
	}
	if verdict := strings.Contains(out, "\nPASS  flat\n"); verdict != (code == 0) {
		t.Errorf("exit %d but PASS flat is %v:\n%s", code, verdict, out)
	}
	if !strings.Contains(out, "  killed         ") || strings.Contains(out, "killed         0 children") {
		t.Errorf("no killed child in 2s with -soak-kill-every 1s:\n%s", out)
	}
}

func TestSoakConfig(t *testing.T) {
	tests := []struct {
		give soakConfig
		want time.Duration // the interval; 0: an error
	}{
		{give: soakConfig{d: 10 * time.Minute}, want: 5 * time.Second},
		{give: soakConfig{d: 30 * time.Second}, want: time.Second},
		{give: soakConfig{d: 2 * time.Second}, want: 250 * time.Millisecond},
		{give: soakConfig{d: 30 * time.Second, interval: 2 * time.Second}, want: 2 * time.Second},
		{give: soakConfig{d: 2 * time.Second, interval: time.Second}, want: 0}, // fewer than 3 rows
		{give: soakConfig{d: time.Minute, reply: 10}, want: 0},
	}
	for _, tt := range tests {
		cfg := tt.give
		if cfg.reply == 0 {
			cfg.reply = 384 << 10
		}
		cfg.killEvery = time.Second
		err := cfg.check()
		if tt.want == 0 {
			if err == nil {
				t.Errorf("%+v: no error", tt.give)
			}
			continue
		}
		if err != nil || cfg.interval != tt.want {
			t.Errorf("%+v: interval %s, err %v; want %s", tt.give, cfg.interval, err, tt.want)
		}
	}
}

func TestJudge(t *testing.T) {
	rows := make([]soakRow, 9)
	for i := range rows {
		rows[i].res = resources{RSSKiB: 40 << 10, HeapInuse: 10 << 20, Goroutines: 100, FDs: 30}
	}
	for i := 6; i < 9; i++ { // the last third leaks fds
		rows[i].res.FDs = 30 + 40*(i-5)
	}
	got := map[string]bool{}
	for _, j := range judge(rows) {
		got[j.name] = j.pass()
	}
	want := map[string]bool{"RSS": true, "heap in use": true, "goroutines": true, "fds": false}
	for name, pass := range want {
		if got[name] != pass {
			t.Errorf("%s: pass %v, want %v", name, got[name], pass)
		}
	}
}
