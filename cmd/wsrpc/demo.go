package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
	"github.com/wsrpc/wsrpc/transport"
)

var demoHelp = help{
	usage: "demo [flags]",
	about: `
Starts a server with the demo services on a free loopback port and runs
a scripted client session against it, printing what happens: calls,
a notification, a server→client call, a cancelled call, errors, a JSON-RPC 2.0
batch, a short load test and a graceful shutdown with a call in flight.
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
	}
	return d.run(ctx)
}

// demo is one scripted session. Only run's goroutine prints; the server's
// hooks and the client's handler report through the channels.
type demo struct {
	w          io.Writer
	benchCalls int

	serverEvents chan string // what the server's hooks saw (sleep started, ended)
	notes        chan string // notifications the client received
	callbacks    chan string // server→client calls the client answered

	srv  *server.Server
	r    *running
	url  string
	peer *rpc.Peer
}

func (d *demo) printf(format string, args ...any) { fmt.Fprintf(d.w, format, args...) }

func (d *demo) section(title string) { d.printf("\n# %s\n", title) }

func (d *demo) run(ctx context.Context) (err error) {
	d.printf("wsrpc demo: a server and a client in one process, talking over a real WebSocket.\n")
	if err := d.startServer(); err != nil {
		return fmt.Errorf("start the server: %w", err)
	}
	defer func() {
		if d.peer != nil {
			d.peer.CloseNow()
		}
		if d.r != nil { // a step failed: stop at once
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			d.r.shutdown(sctx)
		}
	}()
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"connect", d.connect},
		{"calls", d.calls},
		{"notification", d.notification},
		{"callback", d.callback},
		{"cancellation", d.cancellation},
		{"errors", d.errors},
		{"batch", d.batch},
		{"bench", d.bench},
		{"shutdown", d.shutdown},
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

func (d *demo) startServer() error {
	mux := services(func() *server.Server { return d.srv }, nil)
	mux.Use(
		handler.Before(func(_ context.Context, req *rpc.Request) error {
			if req.Method == "sleep" {
				d.event("sleep started")
			}
			return nil
		}),
		handler.AfterError(func(_ context.Context, req *rpc.Request, err error) {
			if req.Method == "sleep" {
				d.event("sleep stopped: " + err.Error())
			}
		}),
	)
	srv, err := server.New(mux)
	if err != nil {
		return err
	}
	d.srv = srv
	d.r, err = listen(srv, &serveConfig{addr: "127.0.0.1:0", path: "/rpc"})
	if err != nil {
		return err
	}
	d.url = d.r.url
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
	peer, err := dialRPC(dctx, d.url, &transport.DialOptions{Subprotocols: rpc.Subprotocols()},
		rpc.WithHandler(rpc.HandlerFunc(d.clientHandler)))
	if err != nil {
		return err
	}
	d.peer = peer
	d.printf("client connected; subprotocol %s (the compact binary codec)\n", peer.Conn().Subprotocol())
	return d.show(ctx, "whoami", nil)
}

// show makes one call and prints it: "method params → result (time)".
func (d *demo) show(ctx context.Context, method string, params any) error {
	cctx, cancel := context.WithTimeout(ctx, demoStepTimeout)
	defer cancel()
	start := time.Now()
	var out rpc.Raw
	err := d.peer.Call(cctx, method, params, &out)
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
	default:
		return err
	}
	return nil
}

func (d *demo) calls(ctx context.Context) error {
	d.section("3. Calls: the reply comes back on the call's channel, matched by id")
	if err := d.show(ctx, "echo", rpc.Raw(`{"hello":"world"}`)); err != nil {
		return err
	}
	return d.show(ctx, "add", rpc.Raw(`[1,2,3.5]`))
}

func (d *demo) notification(ctx context.Context) error {
	d.section("4. Notifications: no reply; here the server notifies every connection")
	if err := d.show(ctx, "broadcast", rpc.Raw(`{"text":"hello, everyone"}`)); err != nil {
		return err
	}
	note, err := wait(ctx, d.notes, "notification")
	if err != nil {
		return err
	}
	d.printf("client received the notification: %s\n", note)
	return nil
}

func (d *demo) callback(ctx context.Context) error {
	d.section("5. Server → client: the server calls the client while serving its call")
	cctx, cancel := context.WithTimeout(ctx, demoStepTimeout)
	defer cancel()
	params := rpc.Raw(`{"method":"client.greet","params":{"name":"demo"}}`)
	var out rpc.Raw
	if err := d.peer.Call(cctx, "callback", params, &out); err != nil {
		return err
	}
	cb, err := wait(ctx, d.callbacks, "callback")
	if err != nil {
		return err
	}
	d.printf("client → server: callback %s\n", params)
	d.printf("  server → client: %s\n", cb)
	d.printf("  the client answers; the server returns its answer\n")
	d.printf("callback → %s\n", out)
	return nil
}

func (d *demo) cancellation(ctx context.Context) error {
	d.section("6. Cancellation travels: the server's handler stops too")
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t := time.AfterFunc(100*time.Millisecond, cancel)
	defer t.Stop()
	start := time.Now()
	err := d.peer.Call(cctx, "sleep", rpc.Raw(`{"ms":5000}`), nil)
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

func (d *demo) errors(ctx context.Context) error {
	d.section("7. Errors carry codes (JSON-RPC's, and the runtime's own)")
	if err := d.show(ctx, "add", rpc.Raw(`{"a":1}`)); err != nil {
		return err
	}
	return d.show(ctx, "nope", nil)
}

func (d *demo) batch(ctx context.Context) error {
	d.section("8. JSON-RPC 2.0 in text frames: a batch on a second, raw connection")
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
	d.section("9. A short load test on one connection")
	cfg := &benchConfig{
		url:         d.url,
		method:      "echo",
		params:      rpc.Raw(`["hello"]`),
		conns:       1,
		concurrency: 16,
		total:       d.benchCalls,
		timeout:     demoStepTimeout,
		dial:        &transport.DialOptions{Subprotocols: []string{rpc.SubprotocolBinary}},
	}
	res, err := benchLoad(ctx, cfg, nil)
	if err != nil {
		return err
	}
	if res.lost != nil {
		return fmt.Errorf("connection lost: %s", closeText(res.lost))
	}
	d.printf("wsrpc bench -n %d --concurrency 16 %s echo '[\"hello\"]'\n", d.benchCalls, d.url)
	d.printf("%d calls, %d errors in %s: %.0f calls/s; latency p50 %s, p99 %s, max %s\n",
		res.calls, res.calls-res.ok(), res.elapsed.Round(time.Millisecond), res.rps(),
		fmtMS(percentile(res.latencies, 0.5)), fmtMS(percentile(res.latencies, 0.99)),
		fmtMS(res.latencies[len(res.latencies)-1]))
	return nil
}

func (d *demo) shutdown(ctx context.Context) error {
	d.section("10. Graceful shutdown with a call in flight")
	reply := make(chan *rpc.Response, 1)
	cctx, cancel := context.WithTimeout(ctx, demoStepTimeout)
	defer cancel()
	if err := d.peer.Send(cctx, &rpc.Request{Method: "sleep", Params: rpc.Raw(`{"ms":200}`), Reply: reply}); err != nil {
		return err
	}
	if ev, err := wait(ctx, d.serverEvents, "server report"); err != nil {
		return err
	} else if ev != "sleep started" {
		return fmt.Errorf("the server reported %q, want %q", ev, "sleep started")
	}
	d.printf(`a call to sleep {"ms":200} is in flight; the server shuts down (as on SIGTERM)` + "\n")

	r := d.r
	d.r = nil // from now on the shutdown below owns it
	shut := make(chan error, 1)
	go func() { // owned: waited for below
		sctx, cancel := context.WithTimeout(context.Background(), demoStepTimeout)
		defer cancel()
		shut <- r.shutdown(sctx)
	}()
	// Whatever happens below, wait for the shutdown before returning.
	var shutErr error
	waited := false
	defer func() {
		if !waited {
			<-shut
		}
	}()

	if _, err := wait(ctx, d.peer.GoingAway(), "shutdown notice"); err != nil {
		return err
	}
	d.printf("client: the server announced it is going away (new calls would fail fast with %d unavailable)\n", int32(rpc.CodeUnavailable))
	resp, err := wait(ctx, reply, "reply")
	if err != nil {
		return err
	}
	if resp.Err != nil {
		return fmt.Errorf("the call in flight failed: %w", resp.Err)
	}
	d.printf("→ the call in flight finished: %s\n", resp.Result)
	if _, err := wait(ctx, d.peer.Conn().Done(), "close"); err != nil {
		return err
	}
	d.printf("client: connection closed: %s\n", closeText(d.peer.Conn().Err()))
	shutErr, waited = <-shut, true
	if shutErr != nil {
		return shutErr
	}
	d.printf("server: stopped; no call was lost\n")
	return nil
}
