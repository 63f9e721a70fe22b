package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
	"github.com/wsrpc/wsrpc/transport"
)

var demoHelp = help{
	usage: "demo [flags]",
	about: `
Starts a server with the demo services on a free loopback port and runs
a scripted session of the wsrpc client against it, printing what happens:
calls (blocking and asynchronous), metadata, a notification, a server→client
call, a cancelled call, a stream of results (and one cancelled part way),
errors, a JSON-RPC 2.0 batch, a short load test, publish/subscribe with a
recovery after a dropped connection, and a graceful restart with a call in
flight, which the client rides out.
Everything runs in this process and takes a few seconds.`,
	examples: `
wsrpc demo
go run ./cmd/wsrpc demo`,
}

// demoStepTimeout bounds each wait of the demo, so that a bug shows as an
// error instead of a hang.
const demoStepTimeout = 5 * time.Second

func runDemo(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("demo")
	benchCalls := fs.Int("bench", 2000, "calls in the load-test step (0 skips it)")
	pos, err := parseArgs(fs, args, e, &demoHelp)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if *benchCalls < 0 {
		return usagef("--bench must not be negative")
	}
	d := &demo{
		w:            e.stdout,
		benchCalls:   *benchCalls,
		serverEvents: make(chan string, 8),
		notes:        make(chan string, 1),
		callbacks:    make(chan string, 1),
		statuses:     make(chan client.Status, 8),
	}
	return d.run(ctx)
}

// demo is one scripted session. Only run's goroutine prints; the server's
// hooks, the client's handler and its status hook report through the
// channels.
type demo struct {
	w          io.Writer
	benchCalls int

	serverEvents chan string        // what the server's hooks saw (sleep started, ended)
	notes        chan string        // notifications the client received
	callbacks    chan string        // server→client calls the client answered
	statuses     chan client.Status // the client's changes of status

	r       *running    // the server; nil once a step owns its shutdown
	hub     *pubsub.Hub // every instance of the server mounts it
	streams *streaming  // the streaming services of every instance
	addr    string      // host:port it listens on
	url     string
	c       *client.Client
	connID  string // the server's id of the client's first connection

	// away, while set, turns the handshakes away with 503: the client
	// cannot reconnect.
	away atomic.Bool
}

func (d *demo) printf(format string, args ...any) { fmt.Fprintf(d.w, format, args...) }

func (d *demo) section(title string) { d.printf("\n# %s\n", title) }

func (d *demo) run(ctx context.Context) (err error) {
	d.printf("wsrpc demo: a server and a client in one process, talking over a real WebSocket.\n")
	var tap *brokerTap
	if d.hub, tap, err = demoHub(nil, nil); err != nil {
		return err
	}
	defer d.hub.Close() // after the server's shutdown below
	d.streams = newStreaming(d.hub, tap)
	defer d.streams.Stop()
	if err := d.startServer(); err != nil {
		return fmt.Errorf("start the server: %w", err)
	}
	defer func() {
		if d.c != nil {
			d.c.Close()
		}
		if d.r != nil {
			sctx, cancel := context.WithTimeout(context.Background(), demoStepTimeout)
			defer cancel()
			if serr := d.r.shutdown(sctx); serr != nil && err == nil {
				err = fmt.Errorf("stop the server: %w", serr)
			}
		}
	}()
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"connect", d.connect},
		{"calls", d.calls},
		{"metadata", d.metadata},
		{"notification", d.notification},
		{"callback", d.callback},
		{"cancellation", d.cancellation},
		{"stream", d.stream},
		{"errors", d.errors},
		{"batch", d.batch},
		{"bench", d.bench},
		{"pub/sub", d.pubsub},
		{"restart", d.restart},
	}
	for _, s := range steps {
		if err := s.run(ctx); err != nil {
			if ctx.Err() != nil {
				return errors.New("interrupted")
			}
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	d.printf("\nThat was wsrpc. Next: 'wsrpc serve' in one terminal, then\n")
	d.printf("  wsrpc call ws://127.0.0.1:8080/rpc add '[1,2,3]'\n")
	d.printf("  wsrpc call --stream ws://127.0.0.1:8080/rpc countdown '{\"from\":5}'\n")
	d.printf("  wsrpc subscribe ws://127.0.0.1:8080/rpc time 'chat.>'\n")
	d.printf("  wsrpc publish ws://127.0.0.1:8080/rpc chat.room '{\"text\":\"hello\"}'\n")
	d.printf("  wsrpc connect ws://127.0.0.1:8080/rpc\n")
	return nil
}

// event is called by the server's hooks; it never blocks a handler.
func (d *demo) event(s string) {
	select {
	case d.serverEvents <- s:
	default:
	}
}

// status is the client's status hook; it never blocks the client.
func (d *demo) status(s client.Status) {
	select {
	case d.statuses <- s:
	default:
	}
}

// drain empties ch of what earlier steps left there.
func drain[T any](ch <-chan T) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// wait receives from ch, giving up after demoStepTimeout.
func wait[T any](ctx context.Context, ch <-chan T, what string) (T, error) {
	t := time.NewTimer(demoStepTimeout)
	defer t.Stop()
	select {
	case v := <-ch:
		return v, nil
	case <-t.C:
		var zero T
		return zero, fmt.Errorf("no %s within %s", what, demoStepTimeout)
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// waitStatus waits until the client reports status want.
func (d *demo) waitStatus(ctx context.Context, want client.Status) error {
	for {
		s, err := wait(ctx, d.statuses, "client status "+want.String())
		if err != nil {
			return err
		}
		if s == want {
			return nil
		}
	}
}

// newServer starts a server with the demo services on addr.
func (d *demo) newServer(addr string) (*running, error) {
	mux := services(true, nil, d.streams)
	mux.Use(
		handler.Before(func(_ context.Context, req *rpc.Request) error {
			if req.Method == "sleep" {
				d.event("sleep started")
			}
			return nil
		}),
		handler.AfterError(func(_ context.Context, req *rpc.Request, err error) {
			if req.Method == "sleep" || req.Method == "countdown" {
				d.event(req.Method + " stopped: " + err.Error())
			}
		}),
	)
	srv, err := server.New(mux, server.WithHub(d.hub))
	if err != nil {
		return nil, err
	}
	return listen(srv, &serveConfig{addr: addr, path: "/rpc", wrap: d.gate})
}

// gate wraps the RPC endpoint: while d.away is set, every handshake is
// turned away with 503.
func (d *demo) gate(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.away.Load() {
			http.Error(w, "the demo keeps the client away for now", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (d *demo) startServer() error {
	r, err := d.newServer("127.0.0.1:0")
	if err != nil {
		return err
	}
	d.r, d.url = r, r.url
	d.addr = strings.TrimPrefix(r.base, "ws://")
	d.section("1. Server")
	d.printf("listening on %s\n", d.url)
	d.printf("services: %s\n", strings.Join(serviceNames, ", "))
	return nil
}

// clientHandler serves the calls the server makes to the demo client.
func (d *demo) clientHandler(_ context.Context, req *rpc.Request) ([]byte, error) {
	switch req.Method {
	case "broadcast":
		select {
		case d.notes <- fmt.Sprintf("%s %s", req.Method, req.Params):
		default:
		}
		return nil, nil
	case "client.greet":
		var p struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(req.Params, &p); err != nil {
			return nil, rpc.Errorf(rpc.CodeInvalidParams, "want {\"name\": ...}: %v", err)
		}
		select {
		case d.callbacks <- fmt.Sprintf("%s %s", req.Method, req.Params):
		default:
		}
		return json.Marshal(map[string]string{"greeting": "hello " + p.Name + ", from the client"})
	}
	return nil, rpc.Errorf(rpc.CodeMethodNotFound, "method not found: %s", req.Method)
}

func (d *demo) connect(ctx context.Context) error {
	d.section("2. A client connects")
	dctx, cancel := context.WithTimeout(ctx, demoStepTimeout)
	defer cancel()
	// The default subprotocols: binary first, then JSON-RPC. The handler
	// serves the server's calls; the short backoff makes the reconnect of
	// the last step quick.
	c, err := dialClient(dctx, d.url,
		rpc.WithHandler(rpc.HandlerFunc(d.clientHandler)),
		client.WithStatusHook(d.status),
		client.WithBackoff(10*time.Millisecond, 200*time.Millisecond))
	if err != nil {
		return err
	}
	d.c = c
	d.printf("client connected; subprotocol %s (the compact binary codec, offered first)\n", c.Peer().Subprotocol())
	out, err := d.show(ctx, "whoami", nil)
	if err != nil {
		return err
	}
	var id identity
	if err := json.Unmarshal(out, &id); err != nil {
		return fmt.Errorf("whoami: %w", err)
	}
	d.connID = id.ConnID
	return nil
}

// show makes one call and prints it: "method params → result (time)". It
// returns the result (nil for an error the server answered with).
func (d *demo) show(ctx context.Context, method string, params any, opts ...client.CallOption) (rpc.Raw, error) {
	cctx, cancel := context.WithTimeout(ctx, demoStepTimeout)
	defer cancel()
	start := time.Now()
	var out rpc.Raw
	err := d.c.Call(cctx, method, params, &out, opts...)
	took := time.Since(start)
	call := method
	if params != nil {
		call += fmt.Sprintf(" %s", params)
	}
	var re *rpc.Error
	switch {
	case err == nil:
		d.printf("%s → %s  (%s)\n", call, out, fmtMS(took))
	case errors.As(err, &re):
		d.printf("%s → error %d (%s): %s\n", call, int32(re.Code), re.Code, re.Message)
		return nil, nil
	default:
		return nil, err
	}
	return out, nil
}

func (d *demo) calls(ctx context.Context) error {
	d.section("3. Calls: the reply comes back on the call's channel, matched by id")
	if _, err := d.show(ctx, "echo", rpc.Raw(`{"hello":"world"}`)); err != nil {
		return err
	}
	if _, err := d.show(ctx, "add", rpc.Raw(`[1,2,3.5]`)); err != nil {
		return err
	}

	// Go sends and returns; the reply arrives on the channel, in whatever
	// order the server answers.
	cctx, cancel := context.WithTimeout(ctx, demoStepTimeout)
	defer cancel()
	type inFlight struct {
		call  string
		reply chan *rpc.Response
	}
	start := time.Now()
	calls := []inFlight{
		{`sleep {"ms":50}`, make(chan *rpc.Response, 1)},
		{`add [2,3]`, make(chan *rpc.Response, 1)},
	}
	if err := d.c.Go(cctx, "sleep", rpc.Raw(`{"ms":50}`), calls[0].reply); err != nil {
		return err
	}
	if err := d.c.Go(cctx, "add", rpc.Raw(`[2,3]`), calls[1].reply); err != nil {
		return err
	}
	d.printf("client.Go: %s, then %s, both in flight on one connection\n", calls[0].call, calls[1].call)
	for range calls {
		var done inFlight
		var resp *rpc.Response
		select {
		case resp = <-calls[0].reply:
			done = calls[0]
		case resp = <-calls[1].reply:
			done = calls[1]
		case <-cctx.Done():
			return cctx.Err()
		}
		if resp.Err != nil {
			return fmt.Errorf("%s: %w", done.call, resp.Err)
		}
		d.printf("← %s → %s  (after %s)\n", done.call, resp.Result, fmtMS(time.Since(start)))
	}
	return nil
}

func (d *demo) metadata(ctx context.Context) error {
	d.section("4. Metadata: key-value pairs that travel with a call, for the handler")
	cctx, cancel := context.WithTimeout(ctx, demoStepTimeout)
	defer cancel()
	md := rpc.Metadata{"request-id": "demo-42"}
	var id identity
	if err := d.c.Call(cctx, "whoami", nil, &id, client.WithMetadata(md)); err != nil {
		return err
	}
	sent, _ := json.Marshal(md)
	seen, _ := json.Marshal(id.Metadata)
	d.printf("whoami with client.WithMetadata(%s)\n", sent)
	d.printf("→ the handler read req.Metadata: %s\n", seen)
	return nil
}

func (d *demo) notification(ctx context.Context) error {
	d.section("5. Notifications: no reply; here the server notifies every connection")
	nctx, cancel := context.WithTimeout(ctx, demoStepTimeout)
	defer cancel()
	params := rpc.Raw(`{"text":"hello, everyone"}`)
	if err := d.c.Notify(nctx, "broadcast", params); err != nil {
		return err
	}
	d.printf("client.Notify: broadcast %s (no reply comes back)\n", params)
	note, err := wait(ctx, d.notes, "notification")
	if err != nil {
		return err
	}
	d.printf("client received the notification: %s\n", note)
	return nil
}

func (d *demo) callback(ctx context.Context) error {
	d.section("6. Server → client: the server calls the client while serving its call")
	cctx, cancel := context.WithTimeout(ctx, demoStepTimeout)
	defer cancel()
	params := rpc.Raw(`{"method":"client.greet","params":{"name":"demo"}}`)
	var out rpc.Raw
	if err := d.c.Call(cctx, "callback", params, &out); err != nil {
		return err
	}
	cb, err := wait(ctx, d.callbacks, "callback")
	if err != nil {
		return err
	}
	d.printf("client → server: callback %s\n", params)
	d.printf("  server → client: %s\n", cb)
	d.printf("  the client's handler (rpc.WithHandler) answers; the server returns its answer\n")
	d.printf("callback → %s\n", out)
	return nil
}

func (d *demo) cancellation(ctx context.Context) error {
	d.section("7. Cancellation travels: the server's handler stops too")
	drain(d.serverEvents) // the sleep of step 3
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t := time.AfterFunc(100*time.Millisecond, cancel)
	defer t.Stop()
	start := time.Now()
	err := d.c.Call(cctx, "sleep", rpc.Raw(`{"ms":5000}`), nil)
	took := time.Since(start)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		return errors.New("sleep was not cancelled")
	}
	code := rpc.CodeOf(err)
	d.printf(`sleep {"ms":5000}, cancelled by the client after 100ms` + "\n")
	d.printf("→ error %d (%s) after %s\n", int32(code), code, fmtMS(took))
	for _, want := range []string{"sleep started", "sleep stopped"} {
		ev, err := wait(ctx, d.serverEvents, "server report")
		if err != nil {
			return err
		}
		if !strings.HasPrefix(ev, want) {
			return fmt.Errorf("the server reported %q, want %q", ev, want)
		}
		if want == "sleep stopped" {
			d.printf("server: the sleep handler returned: %s\n", strings.TrimPrefix(ev, "sleep stopped: "))
		}
	}
	return nil
}

func (d *demo) stream(ctx context.Context) error {
	d.section("8. Streams: one call, many results, paced by the caller's credit")
	drain(d.serverEvents)
	cctx, cancel := context.WithTimeout(ctx, demoStepTimeout)
	defer cancel()
	params := rpc.Raw(`{"from":3,"interval_ms":20}`)
	start := time.Now()
	s, err := d.c.Stream(cctx, "countdown", params, rpc.WithWindow(2))
	if err != nil {
		return err
	}
	defer s.Close()
	d.printf("client.Stream countdown %s, rpc.WithWindow(2): the handler may send 2 results ahead of those read\n", params)
	for {
		it, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		d.printf("← s.Recv(): %s  (after %s)\n", it, fmtMS(time.Since(start)))
	}
	var final rpc.Raw
	if err := s.Result(&final); err != nil {
		return err
	}
	d.printf("→ s.Recv(): io.EOF, the stream ended; s.Result: %s  (after %s)\n", final, fmtMS(time.Since(start)))

	params = rpc.Raw(`{"from":10000,"interval_ms":0}`)
	s2, err := d.c.Stream(cctx, "countdown", params, rpc.WithWindow(4))
	if err != nil {
		return err
	}
	defer s2.Close()
	d.printf("client.Stream countdown %s, rpc.WithWindow(4): no pause, only the credit holds it back\n", params)
	var got []string
	for range 3 {
		it, err := s2.Recv()
		if err != nil {
			return err
		}
		got = append(got, string(it))
	}
	d.printf("← s.Recv() ×3: %s\n", strings.Join(got, ", "))
	s2.Close()
	d.printf("s.Close(): the call is cancelled on the server, mid-stream\n")
	ev, err := wait(ctx, d.serverEvents, "server report")
	if err != nil {
		return err
	}
	if !strings.HasPrefix(ev, "countdown stopped: ") {
		return fmt.Errorf("the server reported %q, want the countdown stopped", ev)
	}
	d.printf("server: the countdown handler returned: %s\n", strings.TrimPrefix(ev, "countdown stopped: "))
	return nil
}

func (d *demo) errors(ctx context.Context) error {
	d.section("9. Errors carry codes (JSON-RPC's, and the runtime's own)")
	if _, err := d.show(ctx, "add", rpc.Raw(`{"a":1}`)); err != nil {
		return err
	}
	_, err := d.show(ctx, "nope", nil)
	return err
}

func (d *demo) batch(ctx context.Context) error {
	d.section("10. JSON-RPC 2.0 in text frames: a batch on a second, raw connection")
	// This step stays on package transport: it shows the JSON-RPC text on
	// the wire, and a batch, which a client (ours or any JSON-RPC one) sends
	// as one message of several calls; client.Client makes one call at a
	// time.
	dctx, cancel := context.WithTimeout(ctx, demoStepTimeout)
	defer cancel()
	conn, err := transport.Dial(dctx, d.url, &transport.DialOptions{Subprotocols: []string{rpc.SubprotocolJSON}})
	if err != nil {
		return dialError(d.url, err)
	}
	defer conn.Close(transport.StatusNormalClosure, "")
	req := `[{"jsonrpc":"2.0","id":1,"method":"add","params":[1,2]},` +
		`{"jsonrpc":"2.0","id":2,"method":"echo","params":["hi"]},` +
		`{"jsonrpc":"2.0","method":"time"},` +
		`{"jsonrpc":"2.0","id":3,"method":"nope"}]`
	d.printf("subprotocol %s\n", conn.Subprotocol())
	d.printf("→ %s\n", req)
	if err := conn.Send(dctx, transport.Message{Type: transport.Text, Data: []byte(req)}); err != nil {
		return err
	}
	m, err := wait(dctx, conn.Recv(), "batch reply")
	if err != nil {
		return err
	}
	var replies []json.RawMessage
	if err := json.Unmarshal(m.Data, &replies); err != nil {
		return fmt.Errorf("the reply is not a JSON array: %w: %s", err, m.Data)
	}
	// Replies come in the order the handlers finish; sort them by id for
	// a stable printout.
	id := func(r json.RawMessage) float64 {
		var v struct{ ID float64 }
		json.Unmarshal(r, &v)
		return v.ID
	}
	slices.SortFunc(replies, func(a, b json.RawMessage) int {
		if ia, ib := id(a), id(b); ia != ib {
			if ia < ib {
				return -1
			}
			return 1
		}
		return 0
	})
	d.printf("← [ (%d replies: none for the notification; sorted by id)\n", len(replies))
	for i, r := range replies {
		var buf bytes.Buffer
		json.Compact(&buf, r)
		sep := ","
		if i == len(replies)-1 {
			sep = ""
		}
		d.printf("    %s%s\n", buf.Bytes(), sep)
	}
	d.printf("  ]\n")
	return nil
}

func (d *demo) bench(ctx context.Context) error {
	if d.benchCalls == 0 {
		return nil
	}
	d.section("11. A short load test on one connection")
	cfg := &benchConfig{
		url:     d.url,
		method:  "echo",
		params:  rpc.Raw(`["hello"]`),
		conns:   1,
		workers: 16,
		total:   d.benchCalls,
		timeout: demoStepTimeout,
	}
	res, err := benchLoad(ctx, cfg, nil)
	if err != nil {
		return err
	}
	if res.lost != nil {
		return fmt.Errorf("connection lost: %s", closeText(res.lost))
	}
	d.printf("wsrpc bench -n %d -c 16 %s echo '[\"hello\"]'\n", d.benchCalls, d.url)
	d.printf("%d calls, %d errors in %s: %.0f calls/s; latency p50 %s, p99 %s, max %s\n",
		res.calls, res.calls-res.ok(), res.elapsed.Round(time.Millisecond), res.rps(),
		fmtMS(res.latency.Quantile(0.5)), fmtMS(res.latency.Quantile(0.99)), fmtMS(res.latency.Max()))
	return nil
}

func (d *demo) pubsub(ctx context.Context) error {
	d.section("12. Publish/subscribe: a topic, its history, and recovery after a dropped connection")
	d.printf("server: the hub keeps the last %d publications of each topic under %s, where clients may publish\n", chatHistory, chatTopics)
	cctx, cancel := context.WithTimeout(ctx, 2*demoStepTimeout)
	defer cancel()
	const topic = "chat.demo"
	sub, err := d.c.Subscribe(cctx, topic, client.Echo())
	if err != nil {
		return err
	}
	defer sub.Unsubscribe(cctx)
	d.printf("client.Subscribe %s, with client.Echo() (a client's own publications come back only if it asks)\n", topic)
	d.printf("→ subscribed; publications arrive on sub.C(), a Go channel\n")

	hello := json.RawMessage(`{"text":"hello"}`)
	pos, err := d.c.Publish(cctx, topic, hello)
	if err != nil {
		return err
	}
	d.printf("client.Publish %s %s → position %s (offset:epoch)\n", topic, hello, formatPosition(pos))
	last, err := d.receive(ctx, sub, "")
	if err != nil {
		return err
	}
	if _, err := d.c.Publish(cctx, timeTopic, "noon"); err != nil {
		var re *rpc.Error
		if !errors.As(err, &re) {
			return err
		}
		d.printf("client.Publish %s \"noon\" → error %d (%s): %s\n", timeTopic, int32(re.Code), re.Code, re.Message)
	} else {
		return fmt.Errorf("publishing on %s was allowed", timeTopic)
	}

	// The server drops the connection as a network failure would, and
	// turns the client's reconnects away until it has published twice.
	var id identity
	if err := d.c.Call(cctx, "whoami", nil, &id); err != nil {
		return err
	}
	p := d.r.srv.Conn(id.ConnID)
	if p == nil {
		return fmt.Errorf("the server has no connection %s", id.ConnID)
	}
	drain(d.statuses)
	d.away.Store(true)
	defer d.away.Store(false)
	p.CloseNow()
	d.printf("server: drops the client's connection without a closing handshake, as a failing network would, and turns new handshakes away for now\n")
	if err := d.waitStatus(ctx, client.Reconnecting); err != nil {
		return err
	}
	d.printf("client: status %s\n", client.Reconnecting)
	for _, text := range []string{"missed 1", "missed 2"} {
		data := json.RawMessage(fmt.Sprintf(`{"text":%q}`, text))
		pos, err := d.r.srv.Publish(cctx, topic, data)
		if err != nil {
			return err
		}
		d.printf("server: srv.Publish %s %s → %s, while the client is away\n", topic, data, formatPosition(pos))
	}
	d.away.Store(false)
	if err := d.waitStatus(ctx, client.Connected); err != nil {
		return err
	}
	d.printf("client: reconnected, and subscribed again from %s, the last position it had seen\n", formatPosition(last))
	for range 2 {
		if last, err = d.receive(ctx, sub, "  (recovered from the topic's history)"); err != nil {
			return err
		}
	}
	d.printf("the last position seen, %s, is what client.Since (or wsrpc subscribe --since) takes to recover from in a later run\n", formatPosition(last))
	return nil
}

// receive waits for the next publication of sub, prints it with note and
// returns its position.
func (d *demo) receive(ctx context.Context, sub *client.Subscription, note string) (pubsub.Position, error) {
	pub, err := wait(ctx, sub.C(), "publication")
	if err != nil {
		return pubsub.Position{}, err
	}
	if pub.Topic == "" { // the channel closed
		return pubsub.Position{}, fmt.Errorf("the subscription ended: %v", sub.Err())
	}
	gap := ""
	if pub.Gap {
		gap = "  (gap: publications were lost)"
	}
	d.printf("← sub.C(): %s %s %s%s%s\n", pub.Topic, formatPosition(pub.Position()), pub.Data, gap, note)
	return pub.Position(), nil
}

func (d *demo) restart(ctx context.Context) error {
	d.section("13. Graceful restart with a call in flight: the client rides it out")
	drain(d.serverEvents)
	drain(d.statuses)
	old := d.c.Peer()
	cctx, cancel := context.WithTimeout(ctx, 2*demoStepTimeout)
	defer cancel()
	inFlight := make(chan *rpc.Response, 1)
	if err := d.c.Go(cctx, "sleep", rpc.Raw(`{"ms":200}`), inFlight); err != nil {
		return err
	}
	if ev, err := wait(ctx, d.serverEvents, "server report"); err != nil {
		return err
	} else if ev != "sleep started" {
		return fmt.Errorf("the server reported %q, want %q", ev, "sleep started")
	}
	d.printf(`client.Go: a call to sleep {"ms":200} is in flight; the server shuts down (as on SIGTERM)` + "\n")

	r := d.r
	d.r = nil // from now on the shutdown below owns it
	shut := make(chan error, 1)
	go func() { // owned: waited for below
		sctx, cancel := context.WithTimeout(context.Background(), demoStepTimeout)
		defer cancel()
		shut <- r.shutdown(sctx)
	}()
	// Whatever happens below, wait for the shutdown before returning.
	waited := false
	defer func() {
		if !waited {
			<-shut
		}
	}()

	if err := d.waitStatus(ctx, client.Reconnecting); err != nil {
		return err
	}
	d.printf("client: the server announced it is going away; status %s: new calls wait for the next connection\n", client.Reconnecting)
	queued := make(chan *rpc.Response, 1)
	if err := d.c.Go(cctx, "add", rpc.Raw(`[4,5]`), queued); err != nil {
		return err
	}
	d.printf("client.Go: add [4,5], queued\n")
	resp, err := wait(ctx, inFlight, "reply")
	if err != nil {
		return err
	}
	if resp.Err != nil {
		return fmt.Errorf("the call in flight failed: %w", resp.Err)
	}
	d.printf("→ the call in flight finished on the old connection: %s\n", resp.Result)
	if _, err := wait(ctx, old.Done(), "close"); err != nil {
		return err
	}
	d.printf("client: the old connection closed: %s\n", closeText(old.Err()))
	shutErr := <-shut
	waited = true
	if shutErr != nil {
		return shutErr
	}
	d.printf("server: stopped; no call was lost\n")

	if d.r, err = d.newServer(d.addr); err != nil {
		return fmt.Errorf("restart the server: %w", err)
	}
	d.printf("server: a new instance listens on the same address\n")
	if err := d.waitStatus(ctx, client.Connected); err != nil {
		return err
	}
	if resp, err = wait(ctx, queued, "reply"); err != nil {
		return err
	}
	if resp.Err != nil {
		return fmt.Errorf("the queued call failed: %w", resp.Err)
	}
	d.printf("client: reconnected; the queued add [4,5] → %s\n", resp.Result)
	var id identity
	if err := d.c.Call(cctx, "whoami", nil, &id); err != nil {
		return err
	}
	d.printf("whoami → conn_id %s, a new connection (the first was %s)\n", id.ConnID, d.connID)
	return nil
}
