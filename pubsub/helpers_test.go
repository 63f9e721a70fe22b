package pubsub_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
)

// codecs are the two wire codecs every behaviour is tested over.
var codecs = []string{rpc.SubprotocolBinary, rpc.SubprotocolJSON}

type env struct {
	t   testing.TB
	hub *pubsub.Hub
	srv *server.Server
	hs  *httptest.Server
	url string
}

// newEnv starts a server with a hub made with opts.
func newEnv(t testing.TB, opts ...pubsub.Option) *env {
	t.Helper()
	return newEnvWith(t, envConfig{hub: opts})
}

// dial connects a client speaking codec.
func (e *env) dial(codec string, opts ...client.Option) *client.Client {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	opts = append([]client.Option{rpc.WithSubprotocols(codec)}, opts...)
	c, err := client.Dial(ctx, e.url, opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = c.Close() })
	return c
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// next receives one publication or fails.
func next(t testing.TB, s *client.Subscription) pubsub.Publication {
	t.Helper()
	select {
	case p, ok := <-s.C():
		if !ok {
			t.Fatalf("subscription %q ended: %v", s.Topic(), s.Err())
		}
		return p
	case <-time.After(10 * time.Second):
		t.Fatalf("no publication on %q", s.Topic())
	}
	return pubsub.Publication{}
}

// none checks that nothing arrives on s for a short while.
func none(t testing.TB, s *client.Subscription) {
	t.Helper()
	select {
	case p := <-s.C():
		t.Fatalf("unexpected publication on %q: %+v", s.Topic(), p)
	case <-time.After(100 * time.Millisecond):
	}
}

func dataInt(t testing.TB, p pubsub.Publication) int {
	t.Helper()
	var n int
	if err := json.Unmarshal(p.Data, &n); err != nil {
		t.Fatalf("data %s: %v", p.Data, err)
	}
	return n
}

// envConfig configures newEnvWith: the hub's options, the server's, and a
// wrapper around the server's HTTP handler (nil: none).
type envConfig struct {
	hub  []pubsub.Option
	srv  []server.Option
	wrap func(http.Handler) http.Handler
}

// newEnvWith is newEnv with server options and an HTTP wrapper.
func newEnvWith(t testing.TB, cfg envConfig) *env {
	t.Helper()
	hub, err := pubsub.New(cfg.hub...)
	if err != nil {
		t.Fatal(err)
	}
	srvOpts := append([]server.Option{server.WithHub(hub)}, cfg.srv...)
	srv, err := server.New(rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		if req.Method == "echo" {
			return req.Params, nil
		}
		return nil, rpc.Errorf(rpc.CodeMethodNotFound, "no %s", req.Method)
	}), srvOpts...)
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = srv
	if cfg.wrap != nil {
		h = cfg.wrap(srv)
	}
	hs := httptest.NewServer(h)
	e := &env{t: t, hub: hub, srv: srv, hs: hs, url: "ws" + strings.TrimPrefix(hs.URL, "http")}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		hs.Close()
		_ = hub.Close()
	})
	return e
}

// withUser authenticates the handshake as user (see authByHeader).
func withUser(user string) client.Option {
	return client.WithHeader(http.Header{"X-User": {user}})
}

// authByHeader makes the X-User header of the handshake the principal.
func authByHeader() server.Option {
	return server.WithAuth(func(r *http.Request) (any, error) { return r.Header.Get("X-User"), nil })
}

// principal is the peer's principal as set by authByHeader.
func principal(p *rpc.Peer) string {
	s, _ := p.Session().Principal().(string)
	return s
}

// waitFor polls cond until it holds, failing after 10 s. It is for
// conditions nothing signals (counters, expiry); each poll is 5 ms apart.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rawCall calls method on p with params sent as they are, bypassing the
// client's own checks, and returns the result undecoded.
func rawCall(t testing.TB, p *rpc.Peer, method, params string) (rpc.Raw, error) {
	t.Helper()
	if p == nil {
		t.Fatal("rawCall: no connection")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var res rpc.Raw
	var in any
	if params != "" {
		in = rpc.Raw(params)
	}
	err := p.Call(ctx, method, in, &res)
	return res, err
}

// wantCode checks that err is an *rpc.Error with code whose message
// contains each of parts.
func wantCode(t testing.TB, err error, code rpc.Code, parts ...string) {
	t.Helper()
	var re *rpc.Error
	if !errors.As(err, &re) {
		t.Fatalf("err = %v (%T), want an *rpc.Error with code %v", err, err, code)
	}
	if re.Code != code {
		t.Fatalf("err = %v: code %v, want %v", err, re.Code, code)
	}
	for _, s := range parts {
		if !strings.Contains(re.Message, s) {
			t.Fatalf("err = %v: message lacks %q", err, s)
		}
	}
}

// wirePub is $/publication's params, as sent.
type wirePub struct {
	Sub    uint64          `json:"sub"`
	Topic  string          `json:"topic"`
	Offset uint64          `json:"offset"`
	Epoch  string          `json:"epoch"`
	Data   json.RawMessage `json:"data"`
}

// subReply is $/subscribe's result, as sent; fields records which keys
// were present.
type subReply struct {
	Sub          uint64           `json:"sub"`
	Topic        string           `json:"topic"`
	Position     *pubsub.Position `json:"position"`
	Recovered    *bool            `json:"recovered"`
	Publications []wirePub        `json:"publications"`
	fields       map[string]json.RawMessage
}

// rawSubscribe sends $/subscribe with params on p and decodes its result.
func rawSubscribe(t testing.TB, p *rpc.Peer, params string) (subReply, error) {
	t.Helper()
	res, err := rawCall(t, p, pubsub.MethodSubscribe, params)
	if err != nil {
		return subReply{}, err
	}
	var r subReply
	if err := json.Unmarshal(res, &r); err != nil {
		t.Fatalf("$/subscribe result %s: %v", res, err)
	}
	if err := json.Unmarshal(res, &r.fields); err != nil {
		t.Fatalf("$/subscribe result %s: %v", res, err)
	}
	return r, nil
}

// gate holds the WebSocket handshakes made while it is shut, to keep a
// client disconnected for as long as a test needs.
type gate struct {
	mu   sync.Mutex
	shut chan struct{} // nil: open
}

// close stops the handshakes that come next; open lets them through.
func (g *gate) close() {
	g.mu.Lock()
	if g.shut == nil {
		g.shut = make(chan struct{})
	}
	g.mu.Unlock()
}

func (g *gate) open() {
	g.mu.Lock()
	if g.shut != nil {
		close(g.shut)
		g.shut = nil
	}
	g.mu.Unlock()
}

func (g *gate) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		shut := g.shut
		g.mu.Unlock()
		if shut != nil {
			select {
			case <-shut:
			case <-r.Context().Done():
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// publishN publishes the ints from..to on topic from Go code.
func publishN(t testing.TB, h *pubsub.Hub, topic string, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if _, err := h.Publish(context.Background(), topic, i); err != nil {
			t.Fatalf("publish %d on %q: %v", i, topic, err)
		}
	}
}

// pubCollector gathers the publications of server-side (or raw)
// subscriptions, given to client.WithOnPublication.
type pubCollector struct {
	mu   sync.Mutex
	pubs []pubsub.Publication
	more chan struct{} // signalled (buffer 1) on each publication
}

func newPubCollector() *pubCollector { return &pubCollector{more: make(chan struct{}, 1)} }

func (pc *pubCollector) add(p pubsub.Publication) {
	pc.mu.Lock()
	pc.pubs = append(pc.pubs, p)
	pc.mu.Unlock()
	select {
	case pc.more <- struct{}{}:
	default:
	}
}

func (pc *pubCollector) snapshot() []pubsub.Publication {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return append([]pubsub.Publication(nil), pc.pubs...)
}

// wait waits until cond holds over what was collected, or fails after 10 s.
func (pc *pubCollector) wait(t testing.TB, what string, cond func([]pubsub.Publication) bool) []pubsub.Publication {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		if got := pc.snapshot(); cond(got) {
			return got
		}
		select {
		case <-pc.more:
		case <-timeout:
			t.Fatalf("timed out waiting for %s; got %d publications", what, len(pc.snapshot()))
		}
	}
}
