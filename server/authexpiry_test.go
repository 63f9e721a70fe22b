package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
	"github.com/wsrpc/wsrpc/transport"
)

// user is a principal whose authentication ends at exp.
type user struct {
	name string
	exp  time.Time
}

func (u user) AuthExpiry() time.Time { return u.exp }
func (u user) String() string        { return u.name }

// tokenUser reads a credential of the tests, {"token": "alice@<ms>"}: the
// user alice, for <ms> milliseconds from now (a negative count: expired).
func tokenUser(raw []byte) (user, error) {
	var cred struct{ Token string }
	if err := json.Unmarshal(raw, &cred); err != nil {
		return user{}, fmt.Errorf("bad credential: %w", err)
	}
	name, ms, ok := strings.Cut(cred.Token, "@")
	var n int
	if _, err := fmt.Sscan(ms, &n); !ok || err != nil || name == "" {
		return user{}, fmt.Errorf("bad token %q", cred.Token)
	}
	return user{name: name, exp: time.Now().Add(time.Duration(n) * time.Millisecond)}, nil
}

// headerAuth authenticates a handshake from its Authorization header, a
// token as tokenUser reads it.
func headerAuth(r *http.Request) (any, error) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return nil, errors.New("no token")
	}
	return tokenUser(fmt.Appendf(nil, `{"token":%q}`, tok))
}

// sameUser is a refresh hook that accepts a new token for the same user.
func sameUser(_ context.Context, current any, params []byte) (any, error) {
	u, err := tokenUser(params)
	if err != nil {
		return nil, err
	}
	if cur, ok := current.(user); !ok || cur.name != u.name {
		return nil, fmt.Errorf("%w: the token is for %s, the connection is %v's", server.ErrForbidden, u.name, current)
	}
	return u, nil
}

// lifetimeServices are the test services, with "wait", which blocks until
// its call ends.
func lifetimeServices(t testing.TB, started chan<- struct{}) *handler.Mux {
	mux := services(t)
	mux.Handle("wait", handler.NoParams(func(ctx context.Context) (string, error) {
		started <- struct{}{}
		<-ctx.Done()
		return "", ctx.Err()
	}))
	return mux
}

// expiries records the $/auth.expiry notifications a peer receives.
func expiries() (rpc.Option, chan time.Duration) {
	ch := make(chan time.Duration, 16)
	return rpc.WithInline(rpc.MethodAuthExpiry, func(req *rpc.Request) {
		var v struct {
			ExpiresIn *float64 `json:"expiresIn"`
		}
		if err := json.Unmarshal(req.Params, &v); err != nil || v.ExpiresIn == nil {
			panic(fmt.Sprintf("$/auth.expiry params %s: %v", req.Params, err))
		}
		ch <- time.Duration(*v.ExpiresIn) * time.Millisecond
	}), ch
}

func bearer(token string, proto string) *transport.DialOptions {
	return &transport.DialOptions{
		Subprotocols: []string{proto},
		Header:       http.Header{"Authorization": {"Bearer " + token}},
	}
}

var bothCodecs = []string{rpc.SubprotocolBinary, rpc.SubprotocolJSON}

// TestAuthExpiryCloses: a connection authenticated at the handshake with an
// expiry is told it, and closed with 4401 when it passes without a refresh;
// a call in flight then fails as for any lost connection.
func TestAuthExpiryCloses(t *testing.T) {
	for _, proto := range bothCodecs {
		t.Run(proto, func(t *testing.T) {
			started := make(chan struct{}, 1)
			s, err := server.New(lifetimeServices(t, started), server.WithAuth(headerAuth))
			if err != nil {
				t.Fatal(err)
			}
			url := start(t, s)
			onExpiry, got := expiries()
			p := dial(t, url, bearer("alice@600", proto), onExpiry)
			if d := recvT(t, got); d <= 0 || d > 600*time.Millisecond {
				t.Fatalf("$/auth.expiry says %v, want (0, 600ms]", d)
			}
			var who string
			if err := p.Call(ctxT(t), "whoami", nil, &who); err != nil || who != "alice" {
				t.Fatalf("whoami = %q, %v", who, err)
			}
			inFlight := make(chan error, 1)
			go func() { inFlight <- p.Call(ctxT(t), "wait", nil, nil) }()
			<-started
			select {
			case <-p.Done():
			case <-ctxT(t).Done():
				t.Fatal("the connection outlived its expiry")
			}
			var ce *transport.CloseError
			if !errors.As(p.Err(), &ce) || ce.Code != rpc.CloseAuthExpired || !ce.Remote {
				t.Fatalf("the connection ended with %v, want a close 4401 from the server", p.Err())
			}
			if err := <-inFlight; rpc.CodeOf(err) != rpc.CodeConnectionLost {
				t.Fatalf("the call in flight at the expiry: %v, want connection lost", err)
			}
		})
	}
}

// TestAuthRefreshKeepsConnection refreshes a connection several times past
// its first expiry; the principal is the refreshed one.
func TestAuthRefreshKeepsConnection(t *testing.T) {
	for _, proto := range bothCodecs {
		t.Run(proto, func(t *testing.T) {
			url := start(t, newServer(t, server.WithAuth(headerAuth), server.WithAuthRefresh(sameUser)))
			onExpiry, got := expiries()
			p := dial(t, url, bearer("alice@800", proto), onExpiry)
			first := recvT(t, got)
			deadline := time.Now().Add(first)
			for i := range 4 {
				// Each refresh comes well before the expiry the one before set.
				time.Sleep(200 * time.Millisecond)
				var res map[string]float64
				err := p.Call(ctxT(t), rpc.MethodAuthRefresh, rpc.Raw(`{"token":"alice@800"}`), &res)
				if err != nil {
					t.Fatalf("refresh %d: %v", i+1, err)
				}
				if ms := res["expiresIn"]; ms <= 0 || ms > 800 {
					t.Fatalf("refresh %d answered %v, want expiresIn in (0, 800]", i+1, res)
				}
			}
			if !time.Now().After(deadline) {
				t.Fatalf("the refreshes took less than the first lifetime (%v)", first)
			}
			var who string
			if err := p.Call(ctxT(t), "whoami", nil, &who); err != nil || who != "alice" {
				t.Fatalf("whoami after the refreshes = %q, %v", who, err)
			}
			// A refresh with no expiry ends the lifetime: nothing closes the
			// connection any more.
			var res map[string]any
			if err := p.Call(ctxT(t), rpc.MethodAuthRefresh, rpc.Raw(`{"token":"alice@0"}`), &res); rpc.CodeOf(err) != rpc.CodeUnauthenticated {
				t.Fatalf("a token expiring now: %v, %v; want unauthenticated", res, err)
			}
		})
	}
}

// TestAuthRefreshRefusals: what the server answers to refreshes it does not
// take, on both codecs; none changes the connection's expiry, which still
// closes it with 4401.
func TestAuthRefreshRefusals(t *testing.T) {
	release := make(chan struct{})
	inHook := make(chan struct{}, 1)
	refresh := func(ctx context.Context, current any, params []byte) (any, error) {
		switch string(params) {
		case `{"token":"block"}`:
			inHook <- struct{}{}
			<-release
			return nil, errors.New("released")
		case `{"token":"nobody"}`:
			return nil, nil
		case `{"token":"coded"}`:
			return nil, rpc.Errorf(rpc.CodeInvalidParams, "credential of an unknown kind")
		}
		return sameUser(ctx, current, params)
	}
	url := start(t, newServer(t, server.WithAuth(headerAuth), server.WithAuthRefresh(refresh)))
	for _, proto := range bothCodecs {
		t.Run(proto, func(t *testing.T) {
			onExpiry, got := expiries()
			p := dial(t, url, bearer("alice@2000", proto), onExpiry)
			recvT(t, got)
			tests := []struct {
				name   string
				params any
				want   rpc.Code
			}{
				{"no params", nil, rpc.CodeInvalidParams},
				{"null", rpc.Raw(`null`), rpc.CodeInvalidParams},
				{"not a credential", rpc.Raw(`[1,2]`), rpc.CodeUnauthenticated},
				{"malformed token", rpc.Raw(`{"token":"alice"}`), rpc.CodeUnauthenticated},
				{"another user", rpc.Raw(`{"token":"mallory@5000"}`), rpc.CodePermissionDenied},
				{"expired token", rpc.Raw(`{"token":"alice@-1000"}`), rpc.CodeUnauthenticated},
				{"no principal", rpc.Raw(`{"token":"nobody"}`), rpc.CodeUnauthenticated},
				{"the hook's own code", rpc.Raw(`{"token":"coded"}`), rpc.CodeInvalidParams},
			}
			if proto == rpc.SubprotocolBinary {
				tests = append(tests, struct {
					name   string
					params any
					want   rpc.Code
				}{"not JSON", rpc.Raw("\xff\x00token"), rpc.CodeInvalidParams})
			}
			for _, tt := range tests {
				err := p.Call(ctxT(t), rpc.MethodAuthRefresh, tt.params, nil)
				if rpc.CodeOf(err) != tt.want {
					t.Errorf("%s: %v, want code %d", tt.name, err, tt.want)
				}
			}

			// Refreshes of one connection do not overlap.
			blocked := make(chan error, 1)
			go func() { blocked <- p.Call(ctxT(t), rpc.MethodAuthRefresh, rpc.Raw(`{"token":"block"}`), nil) }()
			<-inHook
			if err := p.Call(ctxT(t), rpc.MethodAuthRefresh, rpc.Raw(`{"token":"alice@5000"}`), nil); rpc.CodeOf(err) != rpc.CodeBusy {
				t.Errorf("a refresh during another: %v, want busy", err)
			}
			release <- struct{}{}
			if err := <-blocked; rpc.CodeOf(err) != rpc.CodeUnauthenticated {
				t.Errorf("the blocked refresh: %v, want unauthenticated", err)
			}

			// The refused refreshes left the first expiry in place.
			select {
			case <-p.Done():
			case <-ctxT(t).Done():
				t.Fatal("the connection outlived its expiry")
			}
			if code := transport.CloseStatus(p.Err()); code != rpc.CloseAuthExpired {
				t.Fatalf("closed with %d, want 4401", code)
			}
		})
	}
}

// TestAuthRefreshWithoutHook: a server without WithAuthRefresh answers
// $/auth.refresh with method not found, on both codecs, even when its
// handler would answer every method.
func TestAuthRefreshWithoutHook(t *testing.T) {
	catchAll := rpc.HandlerFunc(func(context.Context, *rpc.Request) ([]byte, error) { return []byte(`"handled"`), nil })
	s, err := server.New(catchAll)
	if err != nil {
		t.Fatal(err)
	}
	url := start(t, s)
	for _, proto := range bothCodecs {
		p := dial(t, url, &transport.DialOptions{Subprotocols: []string{proto}})
		err := p.Call(ctxT(t), rpc.MethodAuthRefresh, rpc.Raw(`{"token":"x"}`), nil)
		if rpc.CodeOf(err) != rpc.CodeMethodNotFound || !strings.Contains(err.Error(), "does not refresh") {
			t.Errorf("%s: %v, want method not found", proto, err)
		}
	}
}

// TestAuthExpiredAtHandshake: a credential already expired is refused with
// 401 at the handshake.
func TestAuthExpiredAtHandshake(t *testing.T) {
	url := start(t, newServer(t, server.WithAuth(headerAuth)))
	_, err := tryDial(t, url, bearer("alice@-5", rpc.SubprotocolJSON))
	if handshakeStatus(err) != http.StatusUnauthorized {
		t.Fatalf("dial with an expired token: %v, want 401", err)
	}
}

// TestInBandAuthExpiry: an in-band authentication with an expiry tells the
// client before its answer; one already expired is refused.
func TestInBandAuthExpiry(t *testing.T) {
	login := func(_ context.Context, params []byte) (any, error) { return tokenUser(params) }
	url := start(t, newServer(t, server.WithInBandAuth("auth.login", 0, login), server.WithAuthRefresh(sameUser)))
	for _, proto := range bothCodecs {
		t.Run(proto, func(t *testing.T) {
			onExpiry, got := expiries()
			p := dial(t, url, &transport.DialOptions{Subprotocols: []string{proto}}, onExpiry)
			if err := p.Call(ctxT(t), rpc.MethodAuthRefresh, rpc.Raw(`{"token":"alice@5000"}`), nil); rpc.CodeOf(err) != rpc.CodeUnauthenticated {
				t.Fatalf("a refresh before authenticating: %v, want unauthenticated", err)
			}
			if err := p.Call(ctxT(t), "auth.login", map[string]string{"token": "alice@-10"}, nil); rpc.CodeOf(err) != rpc.CodeUnauthenticated {
				t.Fatalf("login with an expired token: %v, want unauthenticated", err)
			}
			if err := p.Call(ctxT(t), "whoami", nil, nil); rpc.CodeOf(err) != rpc.CodeUnauthenticated {
				t.Fatalf("after the refused login: %v, want unauthenticated", err)
			}
			if err := p.Call(ctxT(t), "auth.login", map[string]string{"token": "alice@5000"}, nil); err != nil {
				t.Fatalf("login: %v", err)
			}
			// The notification is handled on the reader before the answer.
			select {
			case d := <-got:
				if d <= 0 || d > 5*time.Second {
					t.Fatalf("$/auth.expiry says %v", d)
				}
			default:
				t.Fatal("no $/auth.expiry before the login's answer")
			}
			if err := p.Call(ctxT(t), rpc.MethodAuthRefresh, rpc.Raw(`{"token":"alice@9000"}`), nil); err != nil {
				t.Fatalf("refresh: %v", err)
			}
		})
	}
}

// TestAuthExpiryTimerStops: a connection that ends before its expiry leaves
// nothing behind: its timer is stopped (goleak checks the goroutines; here,
// no expiry is logged later).
func TestAuthExpiryTimerStops(t *testing.T) {
	var logged atomic.Int32
	gone := make(chan struct{}, 1)
	s, err := server.New(services(t), server.WithAuth(headerAuth),
		server.WithOnDisconnect(func(*rpc.Peer, error) { gone <- struct{}{} }),
		rpc.WithLogger(countingLogger("authentication expired", &logged)))
	if err != nil {
		t.Fatal(err)
	}
	url := start(t, s)
	p := dial(t, url, bearer("alice@300", rpc.SubprotocolJSON))
	p.Close()
	<-gone
	time.Sleep(500 * time.Millisecond) // past the expiry the connection had
	if n := logged.Load(); n != 0 {
		t.Fatalf("%d expiries logged for a connection that had ended", n)
	}
}

// recvT receives from ch within the test's bound.
func recvT[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-ctxT(t).Done():
		t.Fatal("nothing received in time")
		panic("unreachable")
	}
}

// countingLogger counts the records whose message contains msg.
func countingLogger(msg string, n *atomic.Int32) *slog.Logger {
	return slog.New(countHandler{msg: msg, n: n})
}

type countHandler struct {
	msg string
	n   *atomic.Int32
}

func (h countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.msg) {
		h.n.Add(1)
	}
	return nil
}
func (h countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countHandler) WithGroup(string) slog.Handler      { return h }

// TestAuthRefreshRacingExpiryAndClose: refreshes that race the expiry
// timer, the client's close and Shutdown, on many connections at once,
// leave no timer or goroutine behind (goleak), race nothing (-race), and
// end every connection with one of the codes the race allows: 4401 (the
// expiry won), 1000 (the client closed) or 1012 (Shutdown).
func TestAuthRefreshRacingExpiryAndClose(t *testing.T) {
	s, err := server.New(services(t), server.WithAuth(headerAuth), server.WithAuthRefresh(sameUser))
	if err != nil {
		t.Fatal(err)
	}
	url := start(t, s)
	const conns = 16
	ends := make(chan transport.StatusCode, conns)
	warm := make(chan struct{}, conns) // a connection made its first refreshes, or ended
	var wg sync.WaitGroup
	for i := range conns {
		p := dial(t, url, bearer("alice@20", bothCodecs[i%2]))
		wg.Go(func() {
			defer func() { ends <- transport.CloseStatus(p.Err()) }()
			warmed := false
			defer func() {
				if !warmed {
					warm <- struct{}{}
				}
			}()
			for j := range 40 {
				if j == 5 {
					warm <- struct{}{}
					warmed = true
				}
				if i%4 == 0 && j == 8 {
					p.Close()
					break
				}
				// Lifetimes of 0 to 30 ms: the timer fires during some
				// refreshes, and some refreshes come after it fired.
				tok := fmt.Sprintf(`{"token":"alice@%d"}`, (i*7+j*3)%31)
				err := p.Call(ctxT(t), rpc.MethodAuthRefresh, rpc.Raw(tok), nil)
				select {
				case <-p.Done():
					return
				default:
				}
				switch rpc.CodeOf(err) {
				case 0: // refreshed
				case rpc.CodeUnauthenticated: // a lifetime of 0: already expired
				case rpc.CodeUnavailable: // after Shutdown's notice: not sent
				default:
					t.Errorf("refresh: %v", err)
				}
			}
			<-p.Done() // the client closed it, the last expiry closes it, or Shutdown
		})
	}
	for range conns {
		<-warm
	}
	if err := s.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(ends)
	seen := map[transport.StatusCode]int{}
	for code := range ends {
		seen[code]++
		switch code {
		case rpc.CloseAuthExpired, transport.StatusNormalClosure, transport.StatusServiceRestart:
		default:
			t.Errorf("a connection ended with %d", code)
		}
	}
	t.Logf("connections ended: %v", seen)
}
