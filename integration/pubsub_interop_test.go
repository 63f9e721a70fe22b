package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
)

// script is a third-party client driven line by line: commands on its
// stdin, one JSON event per line on its stdout.
type script struct {
	t      *testing.T
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stdin  io.WriteCloser
	lines  chan []byte // closed once stdout is at its end
	stderr bytes.Buffer
	ended  bool
}

func startScript(t *testing.T, timeout time.Duration, name string, args ...string) *script {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	s := &script{t: t, cancel: cancel, lines: make(chan []byte, 256)}
	s.cmd = exec.CommandContext(ctx, name, args...)
	s.cmd.Stderr = &s.stderr
	var err error
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			s.lines <- bytes.Clone(sc.Bytes())
		}
	}()
	t.Cleanup(func() { s.end() })
	return s
}

// end stops the script (if it has not exited) and waits for it; it returns
// what the script wrote on stderr.
func (s *script) end() string {
	if !s.ended {
		s.ended = true
		s.stdin.Close()
		s.cancel()
		for range s.lines { // the reader must finish before Wait
		}
		s.cmd.Wait()
	}
	return s.stderr.String()
}

// fatalf stops the script and fails with what it wrote on stderr.
func (s *script) fatalf(format string, args ...any) {
	s.t.Helper()
	stderr := s.end()
	s.t.Fatalf("%s\nscript stderr:\n%s", fmt.Sprintf(format, args...), stderr)
}

func (s *script) send(line string) {
	s.t.Helper()
	if _, err := io.WriteString(s.stdin, line+"\n"); err != nil {
		s.fatalf("writing %q to the script: %v", line, err)
	}
}

// event is one line the script printed.
type event struct {
	Event       string          `json:"event"`
	Conn        int             `json:"conn"`
	Subprotocol *string         `json:"subprotocol"`
	Packed      int             `json:"packed"`
	Params      pyPublication   `json:"params"`
	Reply       json.RawMessage `json:"reply"`
	Subscribe   json.RawMessage `json:"subscribe"`
	Last        pubsub.Position `json:"last"`
	Raw         []byte          `json:"-"`
}

// pyPublication is $/publication's params as the script received them.
type pyPublication struct {
	Sub    uint64          `json:"sub"`
	Topic  string          `json:"topic"`
	Offset uint64          `json:"offset"`
	Epoch  string          `json:"epoch"`
	Data   json.RawMessage `json:"data"`
}

// next returns the script's next event; an event named "unexpected" (a
// message it could not place) fails the test.
func (s *script) next() event {
	s.t.Helper()
	select {
	case line, ok := <-s.lines:
		if !ok {
			s.fatalf("the script exited early")
		}
		var ev event
		if err := json.Unmarshal(line, &ev); err != nil {
			s.fatalf("bad line from the script %q: %v", line, err)
		}
		ev.Raw = line
		if ev.Event == "unexpected" || ev.Event == "unknown command" {
			s.fatalf("script: %s", line)
		}
		return ev
	case <-time.After(10 * time.Second):
		s.fatalf("no line from the script in 10s")
	}
	panic("unreachable")
}

// expect returns the next event, which must be named name.
func (s *script) expect(name string) event {
	s.t.Helper()
	ev := s.next()
	if ev.Event != name {
		s.fatalf("script printed %s, want a %q event", ev.Raw, name)
	}
	return ev
}

// jsonrpcReply is a JSON-RPC response as the script received it.
type jsonrpcReply[T any] struct {
	Result *T `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

type subscribeResult struct {
	Sub          uint64          `json:"sub"`
	Topic        string          `json:"topic"`
	Position     pubsub.Position `json:"position"`
	Recovered    *bool           `json:"recovered"`
	Publications []pyPublication `json:"publications"`
}

func decodeReply[T any](s *script, what string, raw json.RawMessage) T {
	s.t.Helper()
	var r jsonrpcReply[T]
	if err := json.Unmarshal(raw, &r); err != nil || r.Result == nil {
		s.fatalf("%s: reply %s, want a result", what, raw)
	}
	return *r.Result
}

// TestPubSubPythonWebsocketsClient subscribes, receives, drops the
// connection, recovers and publishes from a plain JSON-RPC client written
// with Python's websockets package (testdata/pubsub.py), following
// docs/PROTOCOL.md only.
func TestPubSubPythonWebsocketsClient(t *testing.T) {
	const python = "/usr/bin/python3" // Debian's, where python3-websockets installs
	needTool(t, exec.Command(python, "-c", "import websockets").Run(), "apt-get install -y python3-websockets")

	hub, err := pubsub.New(
		pubsub.WithRule("news.>", pubsub.Rule{HistorySize: 100}),
		pubsub.WithRule("chat.>", pubsub.Rule{Publish: func(context.Context, *rpc.Peer, *pubsub.Message) error { return nil }}),
	)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(handler.NewMux(), server.WithHub(hub))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
		hub.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	const topic = "news.sport"
	var published []pubsub.Position // published[i] is the position of {"n": i}
	publish := func(n int) {
		t.Helper()
		for range n {
			pos, err := hub.Publish(ctx, topic, map[string]int{"n": len(published)})
			if err != nil {
				t.Fatal(err)
			}
			published = append(published, pos)
		}
	}
	// got records every publication of topic the script saw, live or
	// recovered, by offset.
	got := map[uint64]pyPublication{}
	packedSizes := map[int]int{} // array length (0: a lone object) → publications that came so
	record := func(s *script, how string, p pyPublication, sub uint64) {
		t.Helper()
		if p.Topic != topic || p.Sub != sub {
			s.fatalf("%s publication %+v: want topic %q, sub %d", how, p, topic, sub)
		}
		if prev, dup := got[p.Offset]; dup {
			s.fatalf("%s publication %+v: offset %d already received as %+v", how, p, p.Offset, prev)
		}
		got[p.Offset] = p
	}
	// live reads n publications on connection c, in offset order.
	live := func(s *script, c int, sub uint64, n int) {
		t.Helper()
		s.send(fmt.Sprintf("wait %d", n))
		prev := uint64(0)
		for range n {
			ev := s.expect("publication")
			if ev.Conn != c {
				s.fatalf("publication %s on connection %d, want %d", ev.Raw, ev.Conn, c)
			}
			if prev != 0 && ev.Params.Offset != prev+1 {
				s.fatalf("live offsets not consecutive: %d after %d", ev.Params.Offset, prev)
			}
			prev = ev.Params.Offset
			packedSizes[ev.Packed]++
			record(s, "live", ev.Params, sub)
		}
		s.expect("received")
	}

	publish(3) // history from before the client came
	url := "ws" + strings.TrimPrefix(hs.URL, "http")
	s := startScript(t, 20*time.Second, python, "testdata/pubsub.py", url, topic)

	// 1. Subscribe without a position: the reply says where the topic is.
	ev := s.expect("subscribed")
	if ev.Subprotocol != nil {
		s.fatalf("first connection offered no subprotocol, got %q", *ev.Subprotocol)
	}
	first := decodeReply[subscribeResult](s, "$/subscribe", ev.Reply)
	if first.Topic != topic || first.Position != published[2] || first.Recovered != nil || first.Publications != nil {
		s.fatalf("$/subscribe result %s: want topic %q, position %+v, no recovery", ev.Reply, topic, published[2])
	}

	// 2. Live publications, published back to back so that several are
	// queued together and packed into one message (a JSON array).
	publish(40)
	live(s, 1, first.Sub, 40)

	// 3. Drop the connection; what is published meanwhile is recovered.
	s.send("drop")
	var extra []pyPublication
	for {
		ev = s.next()
		if ev.Event == "dropped" {
			break
		}
		if ev.Event != "publication" {
			s.fatalf("script printed %s, want dropped", ev.Raw)
		}
		extra = append(extra, ev.Params)
	}
	if len(extra) > 0 {
		s.fatalf("the script received publications nobody published: %+v", extra)
	}
	if want := published[len(published)-1]; ev.Last != want {
		s.fatalf("script's last position %+v, want %+v", ev.Last, want)
	}
	before := len(published)
	publish(7)
	missed := published[before:]

	// 4. Reconnect (offering jsonrpc2.0 this time) and subscribe with the
	// last position seen: the reply carries exactly what was missed.
	s.send("reconnect")
	ev = s.expect("resubscribed")
	if ev.Subprotocol == nil || *ev.Subprotocol != "jsonrpc2.0" {
		s.fatalf("second connection: subprotocol %v, want jsonrpc2.0", ev.Subprotocol)
	}
	again := decodeReply[subscribeResult](s, "$/subscribe with since", ev.Reply)
	if again.Recovered == nil || !*again.Recovered {
		s.fatalf("$/subscribe with since: %s, want recovered: true", ev.Reply)
	}
	if again.Position != published[len(published)-1] {
		s.fatalf("$/subscribe with since: position %+v, want %+v", again.Position, published[len(published)-1])
	}
	if len(again.Publications) != len(missed) {
		s.fatalf("recovered %d publications %s, want the %d published while disconnected", len(again.Publications), ev.Reply, len(missed))
	}
	for i, p := range again.Publications {
		if p.Offset != missed[i].Offset || p.Epoch != missed[i].Epoch {
			s.fatalf("recovered[%d] at %d/%s, want %+v", i, p.Offset, p.Epoch, missed[i])
		}
		var d struct{ N int }
		if err := json.Unmarshal(p.Data, &d); err != nil || d.N != before+i {
			s.fatalf("recovered[%d] data %s, want {\"n\":%d}", i, p.Data, before+i)
		}
		record(s, "recovered", p, again.Sub)
	}

	// 5. Live again after the recovery, continuing where it left off.
	publish(5)
	live(s, 2, again.Sub, 5)

	// Every publication reached the client once: offsets 1..N, one epoch.
	epoch := published[0].Epoch
	for i, pos := range published {
		if pos.Offset != uint64(i+1) || pos.Epoch != epoch {
			t.Fatalf("published[%d] at %+v: want offset %d, epoch %q", i, pos, i+1, epoch)
		}
		if i < 3 {
			continue // before the first subscribe
		}
		p, ok := got[pos.Offset]
		if !ok {
			s.fatalf("publication at offset %d never reached the client", pos.Offset)
		}
		var d struct{ N int }
		if err := json.Unmarshal(p.Data, &d); err != nil || d.N != i || p.Epoch != epoch {
			s.fatalf("offset %d: got %+v, want data {\"n\":%d}, epoch %q", pos.Offset, p, i, epoch)
		}
	}
	if len(got) != len(published)-3 {
		s.fatalf("client received %d publications, want %d", len(got), len(published)-3)
	}
	t.Logf("live publications by the length of the JSON array they came in (0: alone): %v", packedSizes)

	// 6. A client publication where a rule allows it: the result is its
	// position, and with echo the client gets it back.
	s.send(`publish chat.room {"text":"hello from python"}`)
	ev = s.expect("published")
	sub := decodeReply[subscribeResult](s, "$/subscribe chat.room", ev.Subscribe)
	pos := decodeReply[pubsub.Position](s, "$/publish", ev.Reply)
	if pos.Offset == 0 || pos.Epoch == "" {
		s.fatalf("$/publish result %s: want an offset and an epoch", ev.Reply)
	}
	if ev.Params.Sub != sub.Sub || ev.Params.Topic != "chat.room" || ev.Params.Offset != pos.Offset ||
		ev.Params.Epoch != pos.Epoch || !bytes.Equal(compactJSON(ev.Params.Data), []byte(`{"text":"hello from python"}`)) {
		s.fatalf("echoed publication %+v: want sub %d at %+v with the data sent", ev.Params, sub.Sub, pos)
	}

	// 7. Where no rule allows client publish: permission denied.
	for _, tp := range []string{topic, "other.topic"} {
		s.send("deny " + tp)
		ev = s.expect("denied")
		var r jsonrpcReply[json.RawMessage]
		if err := json.Unmarshal(ev.Reply, &r); err != nil || r.Result != nil || r.Error == nil || r.Error.Code != int(rpc.CodePermissionDenied) {
			s.fatalf("$/publish on %s: reply %s, want error %d", tp, ev.Reply, rpc.CodePermissionDenied)
		}
	}

	s.send("quit")
	s.expect("done")
}

func compactJSON(b []byte) []byte {
	var out bytes.Buffer
	if json.Compact(&out, b) != nil {
		return b
	}
	return out.Bytes()
}
