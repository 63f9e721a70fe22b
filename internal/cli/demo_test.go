package cli

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
		`^services: add, broadcast, callback, countdown, echo, sleep, tail, time, whoami$`,
		`^# 2\. A client connects$`,
		`^client connected; subprotocol wsrpc\.v1 `,
		`^whoami → \{"conn_id":"[0-9a-f]+","remote_addr":"127\.0\.0\.1:\d+","subprotocol":"wsrpc\.v1","principal":null\}  \([\d.]+ms\)$`,
		`^# 3\. Calls`,
		`^echo \{"hello":"world"\} → \{"hello":"world"\}  \([\d.]+ms\)$`,
		`^add \[1,2,3\.5\] → 6\.5  \([\d.]+ms\)$`,
		`^client\.Go: sleep \{"ms":50\}, then add \[2,3\], both in flight`,
		// The replies come in the order the handlers finish.
		`^← (add \[2,3\] → 5|sleep \{"ms":50\} → \{"slept_ms":50\})  \(after [\d.]+ms\)$`,
		`^← (add \[2,3\] → 5|sleep \{"ms":50\} → \{"slept_ms":50\})  \(after [\d.]+ms\)$`,
		`^# 4\. Metadata`,
		`^whoami with client\.WithMetadata\(\{"request-id":"demo-42"\}\)$`,
		`^→ the handler read req\.Metadata: \{"request-id":"demo-42"\}$`,
		`^# 5\. Notifications`,
		`^client\.Notify: broadcast \{"text":"hello, everyone"\} \(no reply comes back\)$`,
		`^client received the notification: broadcast \{"text":"hello, everyone"\}$`,
		`^# 6\. Server → client`,
		`^  server → client: client\.greet \{"name":"demo"\}$`,
		`^callback → \{"greeting":"hello demo, from the client"\}$`,
		`^# 7\. Cancellation`,
		`^→ error -32001 \(canceled\) after [\d.]+ms$`,
		`^server: the sleep handler returned: context canceled$`,
		`^# 8\. Streams`,
		`^client\.Stream countdown \{"from":3,"interval_ms":20\}, rpc\.WithWindow\(2\)`,
		`^← s\.Recv\(\): 3  \(after [\d.]+ms\)$`,
		`^← s\.Recv\(\): 2  \(after [\d.]+ms\)$`,
		`^← s\.Recv\(\): 1  \(after [\d.]+ms\)$`,
		`^→ s\.Recv\(\): io\.EOF, the stream ended; s\.Result: "liftoff"  \(after [\d.]+ms\)$`,
		`^client\.Stream countdown \{"from":10000,"interval_ms":0\}, rpc\.WithWindow\(4\)`,
		`^← s\.Recv\(\) ×3: 10000, 9999, 9998$`,
		`^s\.Close\(\): the call is cancelled on the server, mid-stream$`,
		`^server: the countdown handler returned: context canceled$`,
		`^# 9\. Errors`,
		`^add \{"a":1\} → error -32602 \(invalid params\): `,
		`^nope → error -32601 \(method not found\): `,
		`^# 10\. JSON-RPC 2\.0`,
		`^subprotocol jsonrpc2\.0$`,
		`^← \[ \(3 replies`,
		`^    \{"jsonrpc":"2\.0","id":1,"result":3\},$`,
		`^    \{"jsonrpc":"2\.0","id":2,"result":\["hi"\]\},$`,
		`^    \{"jsonrpc":"2\.0","id":3,"error":\{"code":-32601,`,
		`^# 11\. A short load test`,
		`^200 calls, 0 errors in \S+: \d+ calls/s; latency p50 [\d.]+ms, p99 [\d.]+ms, max [\d.]+ms$`,
		`^# 12\. Publish/subscribe`,
		`^client\.Subscribe chat\.demo, with client\.Echo\(\)`,
		`^client\.Publish chat\.demo \{"text":"hello"\} → position 1:([0-9a-f]+) \(offset:epoch\)$`,
		`^← sub\.C\(\): chat\.demo 1:([0-9a-f]+) \{"text":"hello"\}$`,
		`^client\.Publish time "noon" → error -32005 \(permission denied\): \$/publish: clients may not publish on "time"$`,
		`^server: drops the client's connection without a closing handshake`,
		`^client: status reconnecting$`,
		`^server: srv\.Publish chat\.demo \{"text":"missed 1"\} → 2:([0-9a-f]+), while the client is away$`,
		`^server: srv\.Publish chat\.demo \{"text":"missed 2"\} → 3:([0-9a-f]+), while the client is away$`,
		`^client: reconnected, and subscribed again from 1:([0-9a-f]+), the last position it had seen$`,
		// No gap: both publications made while the client was away come
		// back, once each and in order, from the topic's history.
		`^← sub\.C\(\): chat\.demo 2:([0-9a-f]+) \{"text":"missed 1"\}  \(recovered from the topic's history\)$`,
		`^← sub\.C\(\): chat\.demo 3:([0-9a-f]+) \{"text":"missed 2"\}  \(recovered from the topic's history\)$`,
		`^the last position seen, 3:([0-9a-f]+), is what client\.Since `,
		`^# 13\. Graceful restart`,
		`^client\.Go: a call to sleep \{"ms":200\} is in flight`,
		`^client: the server announced it is going away; status reconnecting`,
		`^client\.Go: add \[4,5\], queued$`,
		`^→ the call in flight finished on the old connection: \{"slept_ms":200\}$`,
		// Both sides drain, then close: the server with 1012, the client,
		// moving to a new connection, with 1000; whichever goes first is
		// the code. Nothing else (1006, say) is right.
		`^client: the old connection closed: (1012 service restart "server shutting down"|1000 normal closure "client moved to a new connection")$`,
		`^server: stopped; no call was lost$`,
		`^server: a new instance listens on the same address$`,
		`^client: reconnected; the queued add \[4,5\] → 9$`,
		`^whoami → conn_id [0-9a-f]{16}, a new connection \(the first was [0-9a-f]{16}\)$`,
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
		i++ // the next pattern matches a later line
	}
	// Both asynchronous calls were answered, in either order.
	for _, reply := range []string{"\n← add [2,3] → 5  ", "\n← sleep {\"ms\":50} → {\"slept_ms\":50}  "} {
		if !strings.Contains(r.stdout, reply) {
			t.Errorf("no reply %q in the output:\n%s", strings.TrimSpace(reply), r.stdout)
		}
	}
	// One epoch throughout the pub/sub step: the topic's stream went on.
	positions := regexp.MustCompile(`\b\d+:([0-9a-f]{8})\b`).FindAllStringSubmatch(section(r.stdout, "# 12.", "# 13."), -1)
	if len(positions) != 8 {
		t.Errorf("%d positions in the pub/sub step, want 8", len(positions))
	}
	for _, m := range positions {
		if m[1] != positions[0][1] {
			t.Errorf("epoch %s differs from %s: the topic's stream started again", m[1], positions[0][1])
		}
	}
	// The client reconnected: a connection of its own on the new instance.
	m := regexp.MustCompile(`(?m)^whoami → conn_id ([0-9a-f]+), a new connection \(the first was ([0-9a-f]+)\)$`).FindStringSubmatch(r.stdout)
	if m == nil || m[1] == m[2] {
		t.Errorf("the connection after the restart is not a new one: %q", m)
	}
}

// section returns the part of out from the line starting with from to the
// one starting with to.
func section(out, from, to string) string {
	i := strings.Index(out, "\n"+from)
	j := strings.Index(out, "\n"+to)
	if i < 0 || j < i {
		return ""
	}
	return out[i:j]
}
