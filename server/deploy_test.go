package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
	"github.com/wsrpc/wsrpc/transport"
)

// probe GETs (or HEADs) a health handler and returns the status and body.
func probe(t *testing.T, h http.Handler, method string) (int, string, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, "/readyz", nil))
	return rec.Code, rec.Body.String(), rec.Header()
}

func wantProbe(t *testing.T, name string, h http.Handler, code int, body string) {
	t.Helper()
	if gotCode, gotBody, _ := probe(t, h, http.MethodGet); gotCode != code || gotBody != body+"\n" {
		t.Fatalf("%s: %d %q, want %d %q", name, gotCode, gotBody, code, body)
	}
}

// TestHealthHandlers: the probes' answers in each state, the methods they
// take, and that nothing caches them.
func TestHealthHandlers(t *testing.T) {
	s := newServer(t)
	ready, live := s.ReadyHandler(), s.LiveHandler()
	wantProbe(t, "readyz", ready, http.StatusOK, "ready")
	wantProbe(t, "livez", live, http.StatusOK, "ready")
	code, body, h := probe(t, ready, http.MethodHead)
	if code != http.StatusOK || body != "" || h.Get("Cache-Control") != "no-store" || h.Get("Content-Length") != "6" {
		t.Fatalf("HEAD: %d %q %v", code, body, h)
	}
	code, _, h = probe(t, live, http.MethodPost)
	if code != http.StatusMethodNotAllowed || h.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST: %d, Allow %q", code, h.Get("Allow"))
	}
	if err := s.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	wantProbe(t, "readyz after Shutdown", ready, http.StatusServiceUnavailable, "stopped")
	wantProbe(t, "livez after Shutdown", live, http.StatusServiceUnavailable, "stopped")
	if st := s.State(); st != server.StateStopped {
		t.Fatalf("State after Shutdown = %v", st)
	}
}

// TestStateUnderConcurrentShutdown: several Shutdowns and a Close racing
// one another move the state ready → draining → stopped once, each returns,
// and the ready delay is not repeated by the later calls.
func TestStateUnderConcurrentShutdown(t *testing.T) {
	for _, withClose := range []bool{false, true} {
		t.Run("close="+strconv.FormatBool(withClose), func(t *testing.T) {
			s := newServer(t, server.WithReadyDelay(300*time.Millisecond))
			url := start(t, s)
			p := dial(t, url, nil)
			if st := s.State(); st != server.StateReady {
				t.Fatalf("State = %v, want ready", st)
			}
			var seen sync.Map // the states the watcher saw
			stop := make(chan struct{})
			var watch sync.WaitGroup
			watch.Go(func() {
				prev := server.StateReady
				for {
					st := s.State()
					if st < prev {
						t.Errorf("state went back from %v to %v", prev, st)
					}
					prev = st
					seen.Store(st, true)
					select {
					case <-stop:
						return
					case <-time.After(time.Millisecond):
					}
				}
			})
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for range 6 {
				wg.Go(func() { errs <- s.Shutdown(ctxT(t)) })
			}
			waitFor(t, func() bool { return s.State() != server.StateReady }, "Shutdown never began")
			if withClose {
				wg.Go(func() { errs <- s.Close() })
			}
			wg.Wait()
			close(stop)
			watch.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Errorf("Shutdown or Close = %v", err)
				}
			}
			if st := s.State(); st != server.StateStopped {
				t.Fatalf("State = %v, want stopped", st)
			}
			if _, ok := seen.Load(server.StateDraining); !ok {
				t.Error("the watcher never saw draining")
			}
			<-p.Done()
		})
	}
}

// TestReadyDelay: Shutdown turns readiness off first; during the delay a new
// handshake is still accepted and no connection has been told to go; then
// handshakes are refused, and every connection, the new one included, is
// drained and closed with 1012.
func TestReadyDelay(t *testing.T) {
	s := newServer(t, server.WithReadyDelay(2*time.Second))
	url := start(t, s)
	old := dial(t, url, nil)
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctxT(t)) }()
	waitFor(t, func() bool {
		code, _, _ := probe(t, s.ReadyHandler(), http.MethodGet)
		return code == http.StatusServiceUnavailable
	}, "readiness never went off")
	wantProbe(t, "livez while draining", s.LiveHandler(), http.StatusOK, "draining")
	late, err := tryDial(t, url, nil)
	if err != nil {
		t.Fatalf("handshake during the ready delay: %v", err)
	}
	var echoed []int
	if err := late.Call(ctxT(t), "echo", []int{7}, &echoed); err != nil || !slices.Equal(echoed, []int{7}) {
		t.Fatalf("call on a connection made during the delay: %v %v", echoed, err)
	}
	select {
	case <-old.GoingAway():
		t.Fatal("a connection was told to go before the ready delay ended")
	default:
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	for name, p := range map[string]*rpc.Peer{"old": old, "late": late} {
		<-p.Done()
		if code := transport.CloseStatus(p.Err()); code != transport.StatusServiceRestart {
			t.Errorf("%s connection closed with %v, want 1012", name, p.Err())
		}
	}
	if _, err := tryDial(t, url, nil); handshakeStatus(err) != http.StatusServiceUnavailable {
		t.Fatalf("handshake after Shutdown = %v, want 503", err)
	}
}

// TestReadyDelayBoundedByCtx: a ctx shorter than the delay ends it, and
// Shutdown still drains and returns.
func TestReadyDelayBoundedByCtx(t *testing.T) {
	s := newServer(t, server.WithReadyDelay(time.Hour))
	start(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if st := s.State(); st != server.StateStopped {
		t.Fatalf("State = %v", st)
	}
}

// TestGoodbyeWindowSpread: with a goodbye window, the notices to many
// connections arrive spread over it, and a connection not yet told keeps
// serving calls while others have been. The distribution is logged; the
// test asserts only what noise cannot fake: an order, a spread well below
// the window's, and that nothing arrived after the drain.
func TestGoodbyeWindowSpread(t *testing.T) {
	const n, window = 40, 1500 * time.Millisecond
	s := newServer(t, server.WithGoodbyeWindow(window))
	url := start(t, s)
	peers := make([]*rpc.Peer, n)
	for i := range peers {
		peers[i] = dial(t, url, nil)
	}
	began := time.Now()
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctxT(t)) }()

	type notice struct {
		i  int
		at time.Duration
	}
	notices := make(chan notice, n)
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Go(func() {
			<-p.GoingAway()
			notices <- notice{i, time.Since(began)}
		})
	}
	// When the first notice arrives, some connection has not had its own:
	// it still serves calls.
	first := <-notices
	servedWhileOthersGone := false
	for i, p := range peers {
		select {
		case <-p.GoingAway():
			continue
		default:
		}
		var out []int
		if err := p.Call(ctxT(t), "echo", []int{i}, &out); err == nil && slices.Equal(out, []int{i}) {
			servedWhileOthersGone = true
			break
		} else if rpc.CodeOf(err) != rpc.CodeUnavailable { // told meanwhile: refused, not started
			t.Errorf("call on connection %d before its notice: %v", i, err)
		}
	}
	if !servedWhileOthersGone {
		t.Error("no connection served a call after the first notice")
	}
	wg.Wait()
	close(notices)
	times := []time.Duration{first.at}
	for nt := range notices {
		times = append(times, nt.at)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	slices.Sort(times)
	if len(times) != n {
		t.Fatalf("%d notices, want %d", len(times), n)
	}
	spread := times[n-1] - times[0]
	t.Logf("notice times over a %v window: min %v, p25 %v, p50 %v, p75 %v, max %v",
		window, times[0].Round(time.Millisecond), times[n/4].Round(time.Millisecond), times[n/2].Round(time.Millisecond),
		times[3*n/4].Round(time.Millisecond), times[n-1].Round(time.Millisecond))
	if spread < window/4 {
		t.Errorf("notices spread over %v, want them over most of the %v window", spread, window)
	}
	for _, p := range peers {
		<-p.Done()
		if code := transport.CloseStatus(p.Err()); code != transport.StatusServiceRestart {
			t.Errorf("closed with %v, want 1012", p.Err())
		}
	}
}

// TestGoodbyeWindowCutByCtx: a window far beyond Shutdown's ctx is cut to
// fit it, and every connection is still drained in time, not cut short.
func TestGoodbyeWindowCutByCtx(t *testing.T) {
	s := newServer(t, server.WithGoodbyeWindow(time.Hour))
	url := start(t, s)
	peers := []*rpc.Peer{dial(t, url, nil), dial(t, url, nil), dial(t, url, nil)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v, want every connection drained within its ctx", err)
	}
	for _, p := range peers {
		<-p.Done()
		if code := transport.CloseStatus(p.Err()); code != transport.StatusServiceRestart {
			t.Errorf("closed with %v, want 1012", p.Err())
		}
	}
}

// TestHandshakeRate: beyond the burst, handshakes get 503 with a
// Retry-After that grows for each one refused, they are counted, and they
// are logged at debug level; connections made keep working.
func TestHandshakeRate(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := newServer(t, server.WithHandshakeRate(0.2, 2), rpc.WithLogger(logger)) // a token every 5 s: none comes back during the test
	url := start(t, s)
	for range 2 {
		dial(t, url, nil)
	}
	var hints []int
	for range 3 {
		_, err := tryDial(t, url, nil)
		var he *transport.HandshakeError
		if !errors.As(err, &he) || he.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("handshake beyond the burst = %v, want 503", err)
		}
		secs, perr := strconv.Atoi(he.Header.Get("Retry-After"))
		if perr != nil || secs < 1 {
			t.Fatalf("Retry-After %q, want seconds ≥ 1", he.Header.Get("Retry-After"))
		}
		hints = append(hints, secs)
	}
	if !slices.IsSorted(hints) || hints[2] <= hints[0] {
		t.Fatalf("Retry-After %v, want them growing (the refused spread at the rate)", hints)
	}
	// A connection is counted once registered, which may come just after
	// its client's Dial returned.
	waitFor(t, func() bool { st := s.Stats(); return st.Accepted == 2 && st.Conns == 2 }, "2 connections registered: %+v", s.Stats())
	st := s.Stats()
	if st.Refused[server.RefusedRate] != 3 || st.Accepted != 2 || st.Conns != 2 || st.State != server.StateReady {
		t.Fatalf("Stats = %+v, want 3 refused by the rate, 2 accepted and open", st)
	}
	if !strings.Contains(logs.String(), `msg="wsrpc: handshake refused: too many handshakes: try again later"`) {
		t.Fatalf("log: %s", logs.String())
	}
}

// TestHandshakeRateAfterOtherChecks: a handshake refused for another reason
// (too many connections) takes no token.
func TestHandshakeRateAfterOtherChecks(t *testing.T) {
	s := newServer(t, server.WithHandshakeRate(0.001, 2), server.WithMaxConns(1))
	url := start(t, s)
	p := dial(t, url, nil) // token 1
	for range 3 {
		if _, err := tryDial(t, url, nil); handshakeStatus(err) != http.StatusServiceUnavailable {
			t.Fatalf("over the connection limit: %v", err)
		}
	}
	p.Close()
	waitFor(t, func() bool { return s.Stats().Conns == 0 }, "connection never left")
	dial(t, url, nil) // token 2: the refusals took none
	if st := s.Stats(); st.Refused[server.RefusedMaxConns] != 3 || st.Refused[server.RefusedRate] != 0 {
		t.Fatalf("Stats = %+v", st)
	}
}

// TestHandshakeRateBeforeAuth: the limit comes before WithAuth and shields
// it: a handshake refused with 401 has spent its token, so the next one,
// with a good credential, is refused with 503 and the hook is not called.
func TestHandshakeRateBeforeAuth(t *testing.T) {
	var hooked atomic.Int32
	s := newServer(t, server.WithHandshakeRate(0.001, 1), server.WithAuth(func(r *http.Request) (any, error) {
		hooked.Add(1)
		if r.Header.Get("Authorization") != "good" {
			return nil, errors.New("bad credential")
		}
		return "alice", nil
	}))
	url := start(t, s)
	if _, err := tryDial(t, url, nil); handshakeStatus(err) != http.StatusUnauthorized {
		t.Fatalf("without a credential: %v, want 401", err)
	}
	good := &transport.DialOptions{Header: http.Header{"Authorization": {"good"}}, Subprotocols: rpc.Subprotocols()}
	if _, err := tryDial(t, url, good); handshakeStatus(err) != http.StatusServiceUnavailable {
		t.Fatalf("after the 401 took the token: %v, want 503", err)
	}
	if n := hooked.Load(); n != 1 {
		t.Fatalf("the auth hook ran %d times, want 1 (not for the rate-limited handshake)", n)
	}
	if st := s.Stats(); st.Refused[server.RefusedAuth] != 1 || st.Refused[server.RefusedRate] != 1 {
		t.Fatalf("Stats = %+v", st)
	}
}

// proxied puts an httputil.ReverseProxy in front of the server at backend
// (host:port), as nginx would be, rewriting the Host with rewriteHost (nil:
// left as the client sent it, like nginx's $http_host) and appending the
// client's address to X-Forwarded-For. It returns the proxy's host:port.
func proxied(t *testing.T, backend string, rewriteHost func(in string) string) string {
	t.Helper()
	target := &url.URL{Scheme: "http", Host: backend}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // SetURL clears it: keep the client's, with its port
			if rewriteHost != nil {
				r.Out.Host = rewriteHost(r.In.Host)
			}
			r.SetXForwarded()
		},
		ErrorLog: nil,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: rp, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	t.Cleanup(func() {
		hs.Close() // hijacked (upgraded) connections are the proxy's to end: the server side closes them
		<-served
	})
	return ln.Addr().String()
}

// dialFrom dials url from the loopback source address src, as a browser
// page at origin would (with its Origin header).
func dialFrom(t *testing.T, url, src, origin string) (*rpc.Peer, error) {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return tryDial(t, url, &transport.DialOptions{
		HTTPClient:   &http.Client{Transport: tr},
		Header:       http.Header{"Origin": {origin}},
		Subprotocols: rpc.Subprotocols(),
	})
}

// TestBehindProxy: through a reverse proxy on the same machine that passes
// the Host as the client sent it (nginx's $http_host), a browser's
// same-origin handshake passes and the handler sees the client's address
// from X-Forwarded-For (the proxy is trusted); a proxy that drops the port
// from the Host (nginx's $host) or replaces it with the upstream's (no
// Host line: $proxy_host) makes the Origin check refuse it with 403 and a
// log line naming the Origin and the Host seen, and what to change.
func TestBehindProxy(t *testing.T) {
	tests := []struct {
		name     string
		rewrite  func(string) string // nil: keep the client's Host
		backend  bool                // rewrite to the backend's host:port
		wantCode int                 // 0: connected
		wantWhy  string
	}{
		{name: "Host $http_host"},
		{name: "Host $host", rewrite: func(in string) string { h, _, _ := net.SplitHostPort(in); return h },
			wantCode: http.StatusForbidden, wantWhy: "proxy_set_header Host $http_host, not $host"},
		{name: "Host $proxy_host", backend: true, wantCode: http.StatusForbidden,
			wantWhy: "the Host's port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncBuffer
			s := newServer(t, server.WithTrustedProxies("127.0.0.1"), rpc.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			backend := serveLoopback(t, s)
			rewrite := tt.rewrite
			if tt.backend {
				rewrite = func(string) string { return backend }
			}
			front := proxied(t, backend, rewrite)
			// The page was loaded from the proxy's address: its Origin.
			p, err := dialFrom(t, "ws://"+front+"/rpc", "127.0.0.2", "http://"+front)
			if tt.wantCode != 0 {
				if handshakeStatus(err) != tt.wantCode {
					t.Fatalf("handshake = %v, want %d", err, tt.wantCode)
				}
				log := logs.String()
				for _, want := range []string{"handshake refused: cross-origin", `origin=http://` + front, "status=403", tt.wantWhy} {
					if !strings.Contains(log, want) {
						t.Errorf("log lacks %q:\n%s", want, log)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake through the proxy: %v", err)
			}
			var remote string
			if err := p.Call(ctxT(t), "remote", nil, &remote); err != nil {
				t.Fatal(err)
			}
			if host, _, _ := net.SplitHostPort(remote); host != "127.0.0.2" {
				t.Fatalf("handler saw the client at %s, want 127.0.0.2 (from X-Forwarded-For)", remote)
			}
			p.Close()
		})
	}
}

// TestOriginCheckAgreesWithAccept: the server's own Origin check (made
// before anything else is spent, for its log line) passes exactly what
// the WebSocket library's would, cases of case and ports included.
func TestOriginCheckAgreesWithAccept(t *testing.T) {
	tests := []struct {
		opts   []server.Option
		origin string // for Host 127.0.0.1:<port>
		want   int
	}{
		{nil, "", http.StatusSwitchingProtocols},
		{nil, "http://127.0.0.1:PORT", http.StatusSwitchingProtocols},
		{nil, "HTTPS://127.0.0.1:PORT", http.StatusSwitchingProtocols},
		{nil, "http://127.0.0.1", http.StatusForbidden},
		{nil, "http://127.0.0.1:1", http.StatusForbidden},
		{nil, "http://localhost:PORT", http.StatusForbidden},
		{nil, "null", http.StatusForbidden},
		{nil, "%zz", http.StatusForbidden},
		{[]server.Option{server.WithOriginPatterns("app.example")}, "https://App.Example", http.StatusSwitchingProtocols},
		{[]server.Option{server.WithOriginPatterns("https://app.example")}, "http://app.example", http.StatusForbidden},
		{[]server.Option{server.WithOriginPatterns("*.example:*")}, "http://a.example:8443", http.StatusSwitchingProtocols},
		{[]server.Option{server.WithInsecureSkipOriginCheck()}, "http://evil.example", http.StatusSwitchingProtocols},
	}
	for _, tt := range tests {
		t.Run(tt.origin, func(t *testing.T) {
			addr := startHTTP(t, newServer(t, tt.opts...))
			_, port, _ := net.SplitHostPort(addr)
			extra := ""
			if tt.origin != "" {
				extra = "Origin: " + strings.ReplaceAll(tt.origin, "PORT", port) + "\r\n"
			}
			rc := dialRaw(t, addr)
			defer rc.Conn.Close()
			resp := rc.RoundTrip(handshake("127.0.0.1:"+port, extra))
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tt.want)
			}
		})
	}
}

// TestHandshakeRacingShutdown: a handshake admitted before Shutdown began
// and finished after it took its list of connections still gets the
// notice and a graceful close (1012 after the notice), not a bare 1012
// that would leave its first calls of unknown outcome.
func TestHandshakeRacingShutdown(t *testing.T) {
	inAuth, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	s := newServer(t, server.WithAuth(func(*http.Request) (any, error) {
		if first.CompareAndSwap(false, true) { // the racing handshake; the probes pass
			close(inAuth)
			<-release
		}
		return "user", nil
	}))
	url := start(t, s)
	dialed := make(chan *rpc.Peer, 1)
	go func() {
		p, err := tryDial(t, url, nil)
		if err != nil {
			t.Errorf("the racing handshake: %v", err)
		}
		dialed <- p
	}()
	<-inAuth
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctxT(t)) }()
	waitFor(t, func() bool { return probeRefused(t, url) }, "Shutdown never began refusing")
	close(release)
	p := <-dialed
	if p == nil {
		t.FailNow()
	}
	select {
	case <-p.GoingAway():
	case <-p.Done():
		select {
		case <-p.GoingAway(): // both had come
		default:
			t.Fatalf("closed (%v) without the notice", p.Err())
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	<-p.Done()
	if code := transport.CloseStatus(p.Err()); code != transport.StatusServiceRestart {
		t.Fatalf("closed with %v, want 1012", p.Err())
	}
}

// probeRefused reports whether a handshake to url is now refused with 503.
func probeRefused(t *testing.T, url string) bool {
	_, err := tryDial(t, url, nil)
	return handshakeStatus(err) == http.StatusServiceUnavailable
}

// TestCloseDuringGoodbyeWindow: Close while Shutdown is spreading its
// notices over a long window ends the window: both return.
func TestCloseDuringGoodbyeWindow(t *testing.T) {
	s := newServer(t, server.WithGoodbyeWindow(time.Hour))
	url := start(t, s)
	peers := []*rpc.Peer{dial(t, url, nil), dial(t, url, nil), dial(t, url, nil)}
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }() // no deadline: only Close ends the window
	waitFor(t, func() bool { return s.State() == server.StateDraining && probeRefused(t, url) }, "Shutdown never began refusing")
	s.Close()
	select {
	case <-done:
	case <-ctxT(t).Done():
		t.Fatal("Shutdown still waiting out its window after Close")
	}
	for _, p := range peers {
		<-p.Done()
	}
	if st := s.State(); st != server.StateStopped {
		t.Fatalf("State = %v", st)
	}
}
