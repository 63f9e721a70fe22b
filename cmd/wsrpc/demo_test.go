package main

import (
	"regexp"
	"strings"
	"testing"
)

func TestDemo(t *testing.T) {
	r := runCmd(t, "", "demo", "--bench", "200")
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("code %d, stderr %q\nstdout:\n%s", r.code, r.stderr, r.stdout)
	}
	// Lines in order; only timings, ids, ports and addresses vary.
	want := []string{
		`^wsrpc demo: `,
		`^# 1\. Server$`,
		`^listening on ws://127\.0\.0\.1:\d+/rpc$`,
		`^services: add, broadcast, callback, echo, sleep, time, whoami$`,
		`^# 2\. A client connects$`,
		`^client connected; subprotocol wsrpc\.v1 `,
		`^whoami → \{"conn_id":"[0-9a-f]+","remote_addr":"127\.0\.0\.1:\d+","subprotocol":"wsrpc\.v1","principal":null\}  \([\d.]+ms\)$`,
		`^# 3\. Calls`,
		`^echo \{"hello":"world"\} → \{"hello":"world"\}  \([\d.]+ms\)$`,
		`^add \[1,2,3\.5\] → 6\.5  \([\d.]+ms\)$`,
		`^# 4\. Notifications`,
		`^broadcast \{"text":"hello, everyone"\} → 1  \([\d.]+ms\)$`,
		`^client received the notification: broadcast \{"text":"hello, everyone"\}$`,
		`^# 5\. Server → client`,
		`^  server → client: client\.greet \{"name":"demo"\}$`,
		`^callback → \{"greeting":"hello demo, from the client"\}$`,
		`^# 6\. Cancellation`,
		`^→ error -32001 \(canceled\) after [\d.]+ms$`,
		`^server: the sleep handler returned: context canceled$`,
		`^# 7\. Errors`,
		`^add \{"a":1\} → error -32602 \(invalid params\): `,
		`^nope → error -32601 \(method not found\): `,
		`^# 8\. JSON-RPC 2\.0`,
		`^subprotocol jsonrpc2\.0$`,
		`^← \[ \(3 replies`,
		`^    \{"jsonrpc":"2\.0","id":1,"result":3\},$`,
		`^    \{"jsonrpc":"2\.0","id":2,"result":\["hi"\]\},$`,
		`^    \{"jsonrpc":"2\.0","id":3,"error":\{"code":-32601,`,
		`^# 9\. A short load test`,
		`^200 calls, 0 errors in \S+: \d+ calls/s; latency p50 [\d.]+ms, p99 [\d.]+ms, max [\d.]+ms$`,
		`^# 10\. Graceful shutdown`,
		`^client: the server announced it is going away`,
		`^→ the call in flight finished: \{"slept_ms":200\}$`,
		`^client: connection closed: 1012 service restart "server shutting down"$`,
		`^server: stopped; no call was lost$`,
	}
	lines := strings.Split(r.stdout, "\n")
	i := 0
	for _, w := range want {
		re := regexp.MustCompile(w)
		for i < len(lines) && !re.MatchString(lines[i]) {
			i++
		}
		if i == len(lines) {
			t.Fatalf("no line matching %s (in order); output:\n%s", w, r.stdout)
		}
	}
}
