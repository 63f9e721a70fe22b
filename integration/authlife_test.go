package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
	"github.com/wsrpc/wsrpc/transport"
)

// Auth lifetime end to end: the real server (WithAuth, WithAuthRefresh,
// a pub/sub hub) and the real client (WithCredentials), on both codecs.

// member is the principal of these tests: a user and the token it
// authenticated with, which expires.
type member struct {
	name, token string
	exp         time.Time
}

func (m member) AuthExpiry() time.Time { return m.exp }

// issuer is an identity provider: it issues tokens alice.1, alice.2... each
// valid for life, and says whose a token is.
type issuer struct {
	life    time.Duration
	gate    chan struct{} // when set, issue waits for a value on it,
	entered chan struct{} // after telling this one
	mu      sync.Mutex
	n       int
	expiry  map[string]time.Time
}

func newIssuer(life time.Duration) *issuer {
	return &issuer{life: life, expiry: map[string]time.Time{}}
}

func (is *issuer) issued() int {
	is.mu.Lock()
	defer is.mu.Unlock()
	return is.n
}

// credential is the clients' callback.
func (is *issuer) credential(ctx context.Context) (client.Credential, error) {
	if is.gate != nil {
		is.entered <- struct{}{}
		select {
		case <-is.gate:
		case <-ctx.Done():
			return client.Credential{}, ctx.Err()
		}
	}
	is.mu.Lock()
	is.n++
	tok := fmt.Sprintf("alice.%d", is.n)
	is.expiry[tok] = time.Now().Add(is.life)
	is.mu.Unlock()
	return client.Credential{
		Header: http.Header{"Authorization": {"Bearer " + tok}},
		Params: map[string]string{"token": tok},
	}, nil
}

func (is *issuer) member(tok string) (member, error) {
	is.mu.Lock()
	defer is.mu.Unlock()
	exp, ok := is.expiry[tok]
	if !ok {
		return member{}, fmt.Errorf("unknown token %q", tok)
	}
	name, _, _ := strings.Cut(tok, ".")
	return member{name: name, token: tok, exp: exp}, nil
}

// auth is the server's handshake hook.
func (is *issuer) auth(r *http.Request) (any, error) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return nil, errors.New("no token")
	}
	return is.member(tok)
}

// refresh is the server's refresh hook: a new token of the same user.
func (is *issuer) refresh(_ context.Context, current any, params []byte) (any, error) {
	var p struct{ Token string }
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, err
	}
	m, err := is.member(p.Token)
	if err != nil {
		return nil, err
	}
	if cur, ok := current.(member); !ok || cur.name != m.name {
		return nil, fmt.Errorf("%w: not the connection's user", server.ErrForbidden)
	}
	return m, nil
}

// lifetimeServer is a server of "echo", "token" (the principal's token) and
// "hold" (which, on a connection authenticated with alice.1, waits until
// its call ends), with a hub keeping history on ticks.>.
type lifetimeServer struct {
	url   string
	hub   *pubsub.Hub
	srv   *server.Server
	conns atomic.Int32
	ends  chan error // each connection's end
}

func startLifetimeServer(t *testing.T, opts ...server.Option) *lifetimeServer {
	t.Helper()
	hub, err := pubsub.New(pubsub.WithRule("ticks.>", pubsub.Rule{HistorySize: 1000}))
	if err != nil {
		t.Fatal(err)
	}
	mux := handler.NewMux()
	mux.Handle("echo", handler.Func(func(_ context.Context, in json.RawMessage) (json.RawMessage, error) { return in, nil }))
	token := func(ctx context.Context) string {
		m, _ := rpc.RequestFromContext(ctx).Peer().Session().Principal().(member)
		return m.token
	}
	mux.Handle("token", handler.NoParams(func(ctx context.Context) (string, error) { return token(ctx), nil }))
	mux.Handle("hold", handler.NoParams(func(ctx context.Context) (string, error) {
		if token(ctx) == "alice.1" {
			<-ctx.Done()
			return "", ctx.Err()
		}
		return "done", nil
	}))
	ls := &lifetimeServer{hub: hub, ends: make(chan error, 16)}
	opts = append(opts, server.WithHub(hub),
		server.WithOnConnect(func(*rpc.Peer) { ls.conns.Add(1) }),
		server.WithOnDisconnect(func(_ *rpc.Peer, err error) { ls.ends <- err }))
	ls.srv, err = server.New(mux, opts...)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(ls.srv)
	t.Cleanup(func() {
		ls.srv.Close()
		hs.Close()
		hub.Close()
	})
	ls.url = "ws" + strings.TrimPrefix(hs.URL, "http")
	return ls
}

func dialLifetime(t *testing.T, url, proto string, is *issuer, opts ...client.Option) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts = append(opts, rpc.WithSubprotocols(proto), client.WithBackoff(10*time.Millisecond, 200*time.Millisecond),
		client.WithCredentials(is.credential))
	c, err := client.Dial(ctx, url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// recvPublication waits for the next publication of sub and checks its
// offset.
func recvPublication(t *testing.T, sub *client.Subscription, offset uint64) {
	t.Helper()
	select {
	case p := <-sub.C():
		if p.Offset != offset || p.Gap {
			t.Fatalf("publication at offset %d (gap %v), want %d", p.Offset, p.Gap, offset)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no publication %d", offset)
	}
}

// TestAuthLifetimeRefreshKeepsCallsAndSubscription: over five lifetimes of
// its token, a client makes calls and reads a subscription on one
// connection, refreshing in-band ahead of each expiry.
func TestAuthLifetimeRefreshKeepsCallsAndSubscription(t *testing.T) {
	for _, proto := range []string{rpc.SubprotocolBinary, rpc.SubprotocolJSON} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			is := newIssuer(600 * time.Millisecond)
			ls := startLifetimeServer(t, server.WithAuth(is.auth), server.WithAuthRefresh(is.refresh))
			hook, errs := lifetimeErrors()
			c := dialLifetime(t, ls.url, proto, is, hook)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			sub, err := c.Subscribe(ctx, "ticks.a")
			if err != nil {
				t.Fatal(err)
			}
			end := time.Now().Add(5 * is.life)
			var n uint64
			for time.Now().Before(end) {
				n++
				if _, err := ls.hub.Publish(ctx, "ticks.a", n); err != nil {
					t.Fatal(err)
				}
				var got []uint64
				if err := c.Call(ctx, "echo", []uint64{n}, &got); err != nil || len(got) != 1 || got[0] != n {
					t.Fatalf("call %d: %v, %v", n, got, err)
				}
				recvPublication(t, sub, n)
				time.Sleep(20 * time.Millisecond)
			}
			if k := ls.conns.Load(); k != 1 {
				t.Fatalf("%d connections, want the first one throughout", k)
			}
			if k := is.issued(); k < 4 {
				t.Fatalf("%d tokens issued over five lifetimes, want at least 4 (3 refreshes)", k)
			}
			var tok string
			if err := c.Call(ctx, "token", nil, &tok); err != nil || tok == "alice.1" {
				t.Fatalf("the connection's token is %q (%v), want a refreshed one", tok, err)
			}
			if len(errs) > 0 {
				t.Fatalf("auth error: %v", <-errs)
			}
		})
	}
}

// TestAuthLifetimeExpiryReauthenticates: a server without refresh closes
// the connection with 4401 at its expiry; the call in flight gets the usual
// error (an idempotent one is retried), and the client reconnects with a
// credential from its callback; the subscription recovers what was
// published meanwhile.
func TestAuthLifetimeExpiryReauthenticates(t *testing.T) {
	for _, proto := range []string{rpc.SubprotocolBinary, rpc.SubprotocolJSON} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			is := newIssuer(500 * time.Millisecond)
			ls := startLifetimeServer(t, server.WithAuth(is.auth))
			hook, errs := lifetimeErrors()
			c := dialLifetime(t, ls.url, proto, is, hook)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			sub, err := c.Subscribe(ctx, "ticks.b")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ls.hub.Publish(ctx, "ticks.b", 1); err != nil {
				t.Fatal(err)
			}
			recvPublication(t, sub, 1)

			plain := make(chan error, 1)
			go func() { plain <- c.Call(ctx, "hold", nil, nil) }()
			var res string
			if err := c.Call(ctx, "hold", nil, &res, client.Idempotent()); err != nil || res != "done" {
				t.Fatalf("idempotent call across the expiry: %q, %v; want done on the new connection", res, err)
			}
			if err := <-plain; rpc.CodeOf(err) != rpc.CodeConnectionLost {
				t.Fatalf("plain call in flight at the expiry: %v, want connection lost", err)
			}
			if code := transport.CloseStatus(<-ls.ends); code != rpc.CloseAuthExpired {
				t.Fatalf("the first connection ended with %d, want 4401", code)
			}
			for {
				ae := recvErr(t, errs)
				if ae.Op == "expired" {
					break
				}
				if ae.Op != "refresh" || rpc.CodeOf(ae) != rpc.CodeMethodNotFound {
					t.Fatalf("auth error %v, want the refresh's -32601, then expired", ae)
				}
			}
			var tok string
			if err := c.Call(ctx, "token", nil, &tok); err != nil || tok != "alice.2" {
				t.Fatalf("the new connection's token is %q (%v), want alice.2", tok, err)
			}
			if k := is.issued(); k != 2 {
				// The token fetched for the refresh the server could not do
				// is the one the reconnect used.
				t.Fatalf("%d tokens issued, want 2", k)
			}
			if _, err := ls.hub.Publish(ctx, "ticks.b", 2); err != nil {
				t.Fatal(err)
			}
			recvPublication(t, sub, 2)
		})
	}
}

// TestAuthLifetimeRefreshRacingReconnect: the connection drops while a
// refresh is under way on it. The client reconnects with the credential it
// fetched for that refresh (the callback is not called twice), and the
// refreshes go on, on the new connection only.
func TestAuthLifetimeRefreshRacingReconnect(t *testing.T) {
	for _, proto := range []string{rpc.SubprotocolBinary, rpc.SubprotocolJSON} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			is := newIssuer(600 * time.Millisecond)
			inHook := make(chan *rpc.Peer, 1)
			var first atomic.Bool
			var refreshedOn sync.Map // peer ID → refreshes
			refresh := func(ctx context.Context, current any, params []byte) (any, error) {
				p := rpc.RequestFromContext(ctx).Peer()
				n, _ := refreshedOn.LoadOrStore(p.ID(), new(atomic.Int32))
				n.(*atomic.Int32).Add(1)
				if first.CompareAndSwap(false, true) {
					inHook <- p
					<-ctx.Done() // the test drops the connection
					return nil, ctx.Err()
				}
				return is.refresh(ctx, current, params)
			}
			ls := startLifetimeServer(t, server.WithAuth(is.auth), server.WithAuthRefresh(refresh))
			c := dialLifetime(t, ls.url, proto, is)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var old *rpc.Peer
			select {
			case old = <-inHook:
			case <-ctx.Done():
				t.Fatal("no refresh")
			}
			old.CloseNow()
			var tok string
			for tok == "" || tok == "alice.1" {
				if err := c.Call(ctx, "token", nil, &tok, client.Idempotent()); err != nil {
					t.Fatal(err)
				}
			}
			if tok != "alice.2" || is.issued() != 2 {
				t.Fatalf("reconnected with %q after %d tokens, want alice.2, the refresh's, and 2", tok, is.issued())
			}
			// Two more lifetimes: the new connection is refreshed, the
			// dropped one is not asked again.
			time.Sleep(2 * is.life)
			if err := c.Call(ctx, "token", nil, &tok); err != nil || tok == "alice.2" {
				t.Fatalf("token %q (%v): the new connection was not refreshed", tok, err)
			}
			if n, _ := refreshedOn.Load(old.ID()); n.(*atomic.Int32).Load() != 1 {
				t.Fatalf("the dropped connection got %d refreshes, want 1", n.(*atomic.Int32).Load())
			}
			if k := ls.conns.Load(); k != 2 {
				t.Fatalf("%d connections, want 2", k)
			}
		})
	}
}

// TestAuthLifetimeSlowCallbackSpansReconnect: the callback of a refresh
// returns only after the connection was replaced; its credential is not
// sent on the new connection at once (that one has its own schedule), and
// no second refresh chain starts: the next refresh, on the new connection,
// uses it.
func TestAuthLifetimeSlowCallbackSpansReconnect(t *testing.T) {
	is := newIssuer(800 * time.Millisecond)
	var refreshes atomic.Int32
	refresh := func(ctx context.Context, current any, params []byte) (any, error) {
		refreshes.Add(1)
		return is.refresh(ctx, current, params)
	}
	ls := startLifetimeServer(t, server.WithAuth(is.auth), server.WithAuthRefresh(refresh))
	is.gate, is.entered = make(chan struct{}, 1), make(chan struct{}, 4)
	is.gate <- struct{}{} // Dial's
	c := dialLifetime(t, ls.url, rpc.SubprotocolJSON, is)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	<-is.entered // Dial's
	// Once the refresh waits for the callback, drop the connection: the
	// reconnect needs no new credential.
	select {
	case <-is.entered:
	case <-ctx.Done():
		t.Fatal("no refresh")
	}
	for _, p := range ls.srv.Conns() {
		p.CloseNow()
	}
	var tok string
	if err := c.Call(ctx, "token", nil, &tok, client.Idempotent()); err != nil || tok != "alice.1" {
		t.Fatalf("token %q, %v; want a reconnect with alice.1", tok, err)
	}
	if n := refreshes.Load(); n != 0 {
		t.Fatalf("%d refreshes before the callback returned, want 0", n)
	}
	is.gate <- struct{}{} // the refresh's callback returns alice.2
	// The new connection's own refresh comes ahead of its expiry, with
	// alice.2 and no new call of the callback.
	for tok == "alice.1" {
		time.Sleep(20 * time.Millisecond)
		if err := c.Call(ctx, "token", nil, &tok); err != nil {
			t.Fatal(err)
		}
	}
	if tok != "alice.2" || is.issued() != 2 || refreshes.Load() != 1 {
		t.Fatalf("token %s after %d tokens and %d refreshes; want alice.2, 2 and 1", tok, is.issued(), refreshes.Load())
	}
}

func lifetimeErrors() (client.Option, chan *client.AuthError) {
	ch := make(chan *client.AuthError, 64)
	return client.WithAuthErrorHook(func(err error) {
		var ae *client.AuthError
		if errors.As(err, &ae) {
			select {
			case ch <- ae:
			default:
			}
		}
	}), ch
}

func recvErr(t *testing.T, ch chan *client.AuthError) *client.AuthError {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no auth error")
		panic("unreachable")
	}
}

// TestAuthLifetimePythonClient refreshes a connection from a plain Python
// websockets client, following docs/PROTOCOL.md section 15 only, and sees
// it closed with 4401 at the expiry it stopped refreshing.
func TestAuthLifetimePythonClient(t *testing.T) {
	const python = "/usr/bin/python3" // Debian's, where python3-websockets installs
	needTool(t, exec.Command(python, "-c", "import websockets").Run(), "apt-get install -y python3-websockets")
	is := newIssuer(time.Minute)
	ls := startLifetimeServer(t, server.WithAuth(is.auth), server.WithAuthRefresh(is.refresh))
	for range 2 {
		is.credential(context.Background()) // alice.1, then alice.2
	}
	is.mu.Lock()
	is.expiry["alice.2"] = time.Now().Add(2 * time.Second)
	is.expiry["alice.old"] = time.Now().Add(-time.Second)
	is.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "testdata/authlife.py", ls.url, "alice.1", "alice.2", "alice.old").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("authlife.py: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var report struct {
		Expiry       float64 `json:"expiry"`
		Refreshed    float64 `json:"refreshed"`
		ExpiredCode  int     `json:"expired_code"`
		NoParamsCode int     `json:"no_params_code"`
		CloseCode    int     `json:"close_code"`
		CloseReason  string  `json:"close_reason"`
	}
	if err := json.Unmarshal(out, &report); err != nil {
		t.Fatalf("report %s: %v", out, err)
	}
	t.Logf("authlife.py: %s", out)
	switch {
	case report.Expiry <= 0 || report.Expiry > 60000:
		t.Errorf("$/auth.expiry said %v ms, want (0, 60000]", report.Expiry)
	case report.Refreshed <= 0 || report.Refreshed > 2000:
		t.Errorf("the refresh answered %v ms, want (0, 2000]", report.Refreshed)
	case report.ExpiredCode != int(rpc.CodeUnauthenticated) || report.NoParamsCode != int(rpc.CodeInvalidParams):
		t.Errorf("refusals %d and %d, want -32004 and -32602", report.ExpiredCode, report.NoParamsCode)
	case report.CloseCode != int(rpc.CloseAuthExpired):
		t.Errorf("closed with %d %q, want 4401", report.CloseCode, report.CloseReason)
	}
}

// TestAuthLifetimeInBand: a server that authenticates in-band (as browsers
// need) gives the expiry before the login's answer; the client logs in on
// each connection with its callback's params, refreshes across lifetimes,
// and after a 4401 logs in again with a new credential.
func TestAuthLifetimeInBand(t *testing.T) {
	for _, proto := range []string{rpc.SubprotocolBinary, rpc.SubprotocolJSON} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			is := newIssuer(500 * time.Millisecond)
			login := func(_ context.Context, params []byte) (any, error) {
				var p struct{ Token string }
				if err := json.Unmarshal(params, &p); err != nil {
					return nil, err
				}
				return is.member(p.Token)
			}
			ls := startLifetimeServer(t, server.WithInBandAuth("auth.login", 0, login), server.WithAuthRefresh(is.refresh))
			c := dialLifetime(t, ls.url, proto, is, client.WithInBandAuth("auth.login"))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if exp := c.AuthExpiry(); exp.IsZero() {
				t.Fatal("no expiry known once Dial returned: $/auth.expiry did not come before the login's answer")
			}
			time.Sleep(3 * is.life) // refreshed twice at least, on the same connection
			var tok string
			if err := c.Call(ctx, "token", nil, &tok); err != nil || tok == "alice.1" {
				t.Fatalf("token %q (%v): not refreshed", tok, err)
			}
			if k := ls.conns.Load(); k != 1 {
				t.Fatalf("%d connections, want 1", k)
			}
			// The server ends the authentication at once: the client logs in
			// again, with a credential newer than the connection's. (Not
			// necessarily one issued after the close: a refresh already
			// under way may have fetched one the connection never used.)
			before := 0
			for _, p := range ls.srv.Conns() {
				if m, ok := p.Session().Principal().(member); ok {
					before, _ = strconv.Atoi(strings.TrimPrefix(m.token, "alice."))
				}
				p.CloseWith(rpc.CloseAuthExpired, "revoked")
			}
			for ls.conns.Load() < 2 {
				time.Sleep(5 * time.Millisecond)
			}
			if err := c.Call(ctx, "token", nil, &tok, client.Idempotent()); err != nil {
				t.Fatal(err)
			}
			if n, _ := strconv.Atoi(strings.TrimPrefix(tok, "alice.")); n <= before {
				t.Fatalf("logged in again with %s, want a token newer than the closed connection's (alice.%d or later)", tok, before+1)
			}
		})
	}
}
