package main

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// attackRowRE matches a scenario's row of the -attack table and captures its
// name and verdict.
var attackRowRE = regexp.MustCompile(`(?m)^([a-z]+) +\S+ +[0-9.]+ MiB +[0-9.]+ +(?:[0-9.]+|-) +[0-9.]+ +\d+ → \d+ +\d+ → \d+ +(PASS|FAIL) +\S.*$`)

// TestAttack runs every scenario of the -attack mode scaled down (2 slow
// readers, 10 listeners, 10 unfinished messages with a 1 s message timeout,
// 50 plain requests, 2 pipelined runs of 500 calls) and checks the table,
// each scenario's figures and that every one passes. The peak RSS target is
// raised to 1 GiB: under -race the shadow memory is resident and never given
// back, and a memory claim belongs in the bench run, not in a unit test
// (TestAttackVerdict checks how the target is judged).
func TestAttack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	args := []string{"-attack", "-attack-scale", "small", "-attack-message-timeout", "1s", "-attack-rss-limit", "1024"}
	code := run(ctx, args, strings.NewReader(""), &stdout, &stderr)
	out := stdout.String()
	for _, want := range []string{
		"wsrpc-bench -attack (scale small) ",
		"server: default options (WithMaxConns 10000, ",
		"but MessageTimeout 1s (-attack-message-timeout; the default is 30s)",
		"\nscenario      time  RSS base    peak     HWM   after        fds  goroutines  verdict  target\n",
		"  PASS     peak < 1024 MiB; callers 0 errors\n",
		"  PASS     peak < 1024 MiB; every broadcast done within 15s\n",
		fmt.Sprintf("\n    2 slow readers (raw JSON-RPC, 4 KiB SO_RCVBUF, never read) sent %d calls for 512 KiB replies each", slowAttackCalls()),
		"\n    closed by the server: 2 of 2, ended ",
		`2× 1008 "slow reader: outgoing queue full"`,
		"\n    2 callers (client.Dial, reconnect off) during the attack: ",
		"\n    10 listeners (5 binary, 5 JSON-RPC; 4 KiB SO_RCVBUF, never read), 20 broadcasts of 512 KiB params",
		"\n    broadcasts: 20 of 20 ran in ",
		"\n    listeners closed by the server: 10 of 10: 10× 1008",
		"\n    RSS while held (500.0ms after the first frame): ",
		`; the clients read: 10× 1008 "message not finished in time"; server: 10 of 10 ended with ErrMessageTimeout`,
		"\n    answered 50× 426, 50 with Connection: close; closed by the server: 50 of 50\n",
		"\n    refused with -32003 (busy) per run: 0, 0; answered ok: 500, 500; ",
		"\n    Go heap: live at most ",
		"\nPASS  5 of 5 scenarios bounded\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the output", want)
		}
	}
	rows := attackRowRE.FindAllStringSubmatch(out, -1)
	var names []string
	for _, r := range rows {
		names = append(names, r[1])
		if r[2] != "PASS" {
			t.Errorf("%s: %s", r[1], r[2])
		}
	}
	if got, want := strings.Join(names, ","), "slow,fanout,unfinished,keepalive,pipelined"; got != want {
		t.Errorf("rows %s, want %s", got, want)
	}
	if code != 0 || t.Failed() {
		t.Errorf("exit %d\n%s\n%s", code, out, stderr.String())
	}
}

// TestAttackChoose runs two scenarios by name, and refuses an unknown one.
func TestAttackChoose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"-attack=pipelined,keepalive", "-attack-scale=small"}, strings.NewReader(""), &stdout, &stderr)
	if !strings.Contains(stdout.String(), "but MessageTimeout 5s (-attack-message-timeout; the default is 30s)") {
		t.Errorf("not the default message timeout:\n%s", stdout.String())
	}
	var names []string
	for _, r := range attackRowRE.FindAllStringSubmatch(stdout.String(), -1) {
		names = append(names, r[1])
	}
	if code != 0 || strings.Join(names, ",") != "pipelined,keepalive" {
		t.Errorf("exit %d, rows %v; want 0 and pipelined,keepalive\n%s\n%s", code, names, stdout.String(), stderr.String())
	}

	tests := []struct {
		give []string
		want string // in stderr
	}{
		{give: []string{"-attack=slow,flood"}, want: `unknown "flood"`},
		{give: []string{"-attack", "slow"}, want: "choose scenarios with -attack=name,name"},
		{give: []string{"-attack", "-attack-scale", "huge"}, want: "-attack-scale is full or small"},
		{give: []string{"-attack", "-soak", "1m"}, want: "separate runs"},
	}
	for _, tt := range tests {
		stdout.Reset()
		stderr.Reset()
		if code := run(ctx, tt.give, strings.NewReader(""), &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tt.give, code, stderr.String(), tt.want)
		}
	}
}

// TestAttackVerdict checks how a row is judged: against the RSS limit on
// the higher of the sampled peak and VmHWM, and on the scenario's own checks.
func TestAttackVerdict(t *testing.T) {
	const mib = 1024 // KiB
	tests := []struct {
		name string
		give attackRow
		want bool
	}{
		{name: "under", give: attackRow{peak: 90 * mib, hwm: 91 * mib, res: attackResult{rssLimit: 100, ok: true}}, want: true},
		{name: "sampled over", give: attackRow{peak: 101 * mib, hwm: -1, res: attackResult{rssLimit: 100, ok: true}}, want: false},
		{name: "HWM over", give: attackRow{peak: 99 * mib, hwm: 100 * mib, res: attackResult{rssLimit: 100, ok: true}}, want: false},
		{name: "no limit", give: attackRow{peak: 900 * mib, res: attackResult{ok: true}}, want: true},
		{name: "check failed", give: attackRow{peak: 10 * mib, res: attackResult{rssLimit: 100}}, want: false},
		{name: "leftovers", give: attackRow{res: attackResult{ok: true}, cleanup: context.DeadlineExceeded}, want: false},
	}
	for _, tt := range tests {
		if got := tt.give.pass(); got != tt.want {
			t.Errorf("%s: pass %v, want %v", tt.name, got, tt.want)
		}
	}
	var out bytes.Buffer
	r := attackRow{name: "fanout", elapsed: time.Second, base: 20 * mib, peak: 120 * mib, hwm: 121 * mib, after: 21 * mib,
		fdsBefore: 11, fdsAfter: 11, gsBefore: 4, gsAfter: 4,
		res: attackResult{target: "peak < 100 MiB", rssLimit: 100, ok: true, figures: []string{"a figure"}}}
	writeAttackRow(&out, &r)
	if m := attackRowRE.FindStringSubmatch(out.String()); m == nil || m[2] != "FAIL" || !strings.Contains(out.String(), "\n    a figure\n") {
		t.Errorf("row:\n%s", out.String())
	}
}
