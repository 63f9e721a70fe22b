package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/internal/logtext"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// Server serves wsrpc connections. It is an http.Handler: mount it on any
// mux, or let [Server.ListenAndServe] run an http.Server for it.
//
// Mounted on an http.Server of your own, the Server relies on that server for
// what happens before and between requests. Set at least:
//
//   - ReadHeaderTimeout (e.g. [DefaultReadHeaderTimeout]): without it (and
//     without ReadTimeout) a client that opens a TCP connection and sends
//     its request slowly, or not at all, holds the connection forever.
//   - IdleTimeout (e.g. [DefaultIdleTimeout]): the Server closes the
//     connection after each of its refusals, but requests answered by your
//     other handlers, or by net/http itself (OPTIONS *), leave keep-alive
//     connections that nothing else reaps; they do not count toward
//     [WithMaxConns].
//   - MaxHeaderBytes (e.g. [DefaultMaxHeaderBytes]): net/http reads up to
//     1 MiB of headers per request by default.
//
// ReadTimeout and WriteTimeout are not needed by the Server and do not cut
// WebSocket connections short (net/http clears both deadlines when the
// connection is hijacked for the upgrade), but they bound the whole
// handshake, [WithAuth] hook included. [Server.HTTPServer] returns an
// http.Server set up like the Server's own. docs/DEPLOYMENT.md has the
// details.
type Server struct {
	h            rpc.Handler
	cfg          *rpc.Config // every connection's peer is made from it
	subprotocols []string    // cfg.Subprotocols(), once
	opts         options

	mu       sync.Mutex
	conns    map[string]*conn // by peer ID
	reserved int              // handshakes admitted and not yet ended (≤ maxConns)
	closing  bool             // refusing new handshakes: after the ready delay of Shutdown, or Close
	served   sync.WaitGroup
	httpSrvs []*http.Server
	state    State
	refuseAt time.Time     // when Shutdown refuses, once it has begun
	refusing chan struct{} // closed when closing becomes true
	aborted  chan struct{} // closed by Close: a Shutdown sends its notices at once
	abortOne sync.Once
	counts   counters // see Stats
	limiter  *handshakeLimiter
	drainCtx context.Context // the ctx of the Shutdown that began refusing; nil: none, or Close
	late     sync.WaitGroup  // the drains of connections registered after refusing began
	// lateCut counts what those drains cut short, for Shutdown's error;
	// under mu.
	lateCut ShutdownError

	beforeRegister func() // for tests: runs in serve once the peer is serving, before it is registered
}

// New returns a Server that serves h on every connection. Zero options give
// a working, safe server: same-origin handshakes only, both codecs, the
// transport's default limits. opts are the options of package rpc that an
// endpoint takes and those of this package (see [Option]), in any order;
// every invalid option or combination is reported, joined, in the error.
func New(h handler.Handler, opts ...Option) (*Server, error) {
	var errs []error
	if h == nil {
		errs = append(errs, errors.New("wsrpc: server.New needs a handler"))
	}
	var o options
	var shared []rpc.Option
	for _, opt := range opts {
		switch opt := opt.(type) {
		case nil:
		case rpc.Option:
			if setsHandler(opt) {
				errs = append(errs, errors.New("wsrpc: rpc.WithHandler does not apply to server.New: server.New takes the handler as its argument"))
				continue
			}
			shared = append(shared, opt)
		case serverOption:
			if err := opt(&o); err != nil {
				errs = append(errs, err)
			}
		default: // sealed: cannot happen
			errs = append(errs, fmt.Errorf("wsrpc: server.New: unknown option type %T", opt))
		}
	}
	cfg, err := rpc.NewConfig(shared...)
	if err != nil {
		errs = append(errs, err)
	}
	if o.forwardedHeader != "" && len(o.trustedProxies) == 0 && !o.badTrustedProxies {
		errs = append(errs, errors.New("wsrpc: WithForwardedHeader needs WithTrustedProxies: without trusted proxies no forwarded header is read"))
	}
	if o.skipOriginCheck && len(o.originPatterns) > 0 {
		errs = append(errs, errors.New("wsrpc: WithInsecureSkipOriginCheck and WithOriginPatterns exclude each other"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if o.maxConns < 1 {
		o.maxConns = DefaultMaxConns
	}
	if o.readHeaderTimeout <= 0 {
		o.readHeaderTimeout = DefaultReadHeaderTimeout
	}
	if o.idleTimeout == 0 {
		o.idleTimeout = DefaultIdleTimeout
	}
	if o.hub != nil {
		h = o.hub.Middleware()(h)
	}
	s := &Server{
		h:            h,
		cfg:          cfg,
		subprotocols: cfg.Subprotocols(),
		opts:         o,
		conns:        make(map[string]*conn),
		refusing:     make(chan struct{}),
		aborted:      make(chan struct{}),
	}
	if o.handshakeRate > 0 {
		s.limiter = newHandshakeLimiter(o.handshakeRate, o.handshakeBurst, time.Now())
	}
	return s, nil
}

// setsHandler reports whether o is an [rpc.WithHandler] (with a handler),
// which server.New refuses: the handler is its argument.
func setsHandler(o rpc.Option) bool {
	c, err := rpc.NewConfig(o)
	return err == nil && c.Handler() != nil
}

// ServeHTTP upgrades the request and starts serving the connection. It
// returns once the connection is registered; the connection's own goroutines
// serve it from then on, and Shutdown and Close wait for them.
//
// It refuses, with an HTTP status and a short text body, in this order: a
// Host that is not allowed (403, see [WithAllowedHosts]), a request that is
// not a WebSocket upgrade (426), a cross-origin request (403, see
// [WithOriginPatterns]), a shutdown, too many connections or the handshake
// rate (503, see [WithMaxConns] and [WithHandshakeRate]), a failed
// [WithAuth] (401, 403) and an invalid handshake (400, 405). On HTTP/1.x every answer but 101 carries
// "Connection: close", so net/http closes the connection after it instead
// of keeping it for another request. (On HTTP/2, which cannot carry
// WebSockets here, it does not: Go's HTTP/2 server would shut the whole
// connection down, streams of other handlers included.)
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 {
		// Every answer but 101 ends the connection. Accept replaces the
		// header with "Connection: Upgrade" when it switches protocols.
		w.Header().Set("Connection", "close")
	}
	client := s.clientAddr(r) // nil: the socket's, as the peer will say
	remote := r.RemoteAddr
	if client != nil {
		remote = client.String()
	}
	if !s.hostAllowed(r) {
		s.refuse(RefusedHost)
		s.log("handshake refused: host not allowed", "remote", remote, "host", logtext.ClipTo(r.Host, maxLoggedHost), "status", http.StatusForbidden)
		http.Error(w, "host not allowed", http.StatusForbidden)
		return
	}
	if !isUpgrade(r) {
		// Answered here: Accept's 426 sets "Connection: Upgrade", which
		// would keep the connection open.
		s.refuse(RefusedUpgrade)
		s.log("handshake refused: not a WebSocket upgrade", "remote", remote, "status", http.StatusUpgradeRequired)
		if r.ProtoMajor == 1 {
			w.Header()["Connection"] = []string{"close", "Upgrade"} // "close" first: net/http looks at the first value
			w.Header().Set("Upgrade", "websocket")
		}
		http.Error(w, "this is a WebSocket endpoint: upgrade required", http.StatusUpgradeRequired)
		return
	}
	if !s.originAllowed(w, r, remote) {
		return
	}
	if !s.admit(w, remote) {
		return
	}
	served := false
	defer func() {
		if !served {
			s.release()
		}
	}()
	var principal any
	if s.opts.auth != nil {
		p, err := s.opts.auth(r)
		if err != nil {
			status := http.StatusUnauthorized
			if errors.Is(err, ErrForbidden) {
				status = http.StatusForbidden
			}
			s.refuse(RefusedAuth)
			s.log("handshake refused", "remote", remote, "status", status, "err", logtext.Clip(err.Error()))
			http.Error(w, http.StatusText(status), status)
			return
		}
		if err := checkExpiry(expiryOf(p)); err != nil {
			s.refuse(RefusedAuth)
			s.log("handshake refused", "remote", remote, "status", http.StatusUnauthorized, "err", err.Error())
			http.Error(w, "credential expired", http.StatusUnauthorized)
			return
		}
		principal = p
	}
	tc, err := transport.Accept(w, r, &transport.AcceptOptions{
		ConnOptions:             s.cfg.ConnOptions(),
		Subprotocols:            s.subprotocols,
		OriginPatterns:          s.opts.originPatterns,
		InsecureSkipOriginCheck: s.opts.skipOriginCheck,
	})
	if err != nil {
		s.refuse(acceptRefusal(err))
		s.log("handshake failed", "remote", remote, "err", logtext.Clip(err.Error()))
		return
	}
	if tc.Subprotocol() == "" && !s.allows(rpc.SubprotocolJSON) {
		s.refuse(RefusedSubprotocol)
		s.log("handshake refused: no subprotocol offered", "remote", remote, "code", int(transport.StatusPolicyViolation))
		tc.Close(transport.StatusPolicyViolation, "a subprotocol is required: "+rpc.SubprotocolBinary)
		return
	}
	served = s.serve(tc, principal, client)
}

// clientAddr returns the client's address as the trusted proxies forwarded
// it (see [WithTrustedProxies]), or nil without trusted proxies, when the
// socket's address is the client's.
func (s *Server) clientAddr(r *http.Request) net.Addr {
	if len(s.opts.trustedProxies) == 0 {
		return nil
	}
	header := s.opts.forwardedHeader
	if header == "" {
		header = headerXFF
	}
	return s.opts.trustedProxies.clientAddr(r.RemoteAddr, r.Header, header)
}

// isUpgrade reports whether r asks for a WebSocket upgrade: its Connection
// header holds the token "upgrade" and its Upgrade header "websocket",
// compared as coder/websocket's Accept compares them.
func isUpgrade(r *http.Request) bool {
	return hasToken(r.Header, "Connection", "upgrade") && hasToken(r.Header, "Upgrade", "websocket")
}

func hasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// maxLoggedHost bounds the Host header a log line repeats.
const maxLoggedHost = 64

// hostAllowed applies [WithAllowedHosts] and the loopback default to r's
// Host.
func (s *Server) hostAllowed(r *http.Request) bool {
	host := hostName(r.Host)
	for _, p := range s.opts.allowedHosts {
		if ok, _ := path.Match(p, host); ok { // patterns were checked by New
			return true
		}
	}
	if onLoopback(r) {
		return isLoopbackName(host)
	}
	return len(s.opts.allowedHosts) == 0
}

// hostName is the host of a Host header without its port, IPv6 brackets
// and trailing dot, in lowercase.
func hostName(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// onLoopback reports whether r arrived on a loopback address of this
// machine. An unknown local address (a handler called without net/http's
// server) is not one.
func onLoopback(r *http.Request) bool {
	a, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if a == nil {
		return false
	}
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.IsLoopback()
	}
	ap, err := netip.ParseAddrPort(a.String())
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

// isLoopbackName reports whether host names this machine's loopback
// interface whatever DNS says: localhost, *.localhost (RFC 6761), a loopback
// IP address.
func isLoopbackName(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// admit reserves a connection slot, or answers 503: shutting down, too
// many connections, or too many handshakes (the rate limit), in that
// order. Only a handshake that passes the first two takes a token.
func (s *Server) admit(w http.ResponseWriter, remote string) bool {
	s.mu.Lock()
	var (
		msg  string
		secs int
	)
	switch {
	case s.closing:
		s.refuse(RefusedDraining)
		msg = "shutting down"
		secs = int((s.opts.retryAfter + time.Second - 1) / time.Second) // rounded up; 0: none
	case s.reserved >= s.opts.maxConns:
		s.refuse(RefusedMaxConns)
		// Without a delay, refused clients would come straight back.
		msg = "too many connections"
		secs = retryAfterSeconds(s.opts.retryAfter)
	default:
		if s.limiter != nil {
			if ok, wait := s.limiter.take(time.Now()); !ok {
				s.refuse(RefusedRate)
				msg = "too many handshakes: try again later"
				secs = retryAfterSeconds(wait)
				break
			}
		}
		s.reserved++
		s.served.Add(1)
		s.mu.Unlock()
		return true
	}
	s.mu.Unlock()
	if secs > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	s.debug("handshake refused: "+msg, "remote", remote, "status", http.StatusServiceUnavailable, "retry_after", secs)
	http.Error(w, msg, http.StatusServiceUnavailable)
	return false
}

func (s *Server) release() {
	s.mu.Lock()
	s.reserved--
	s.mu.Unlock()
	s.served.Done()
}

func (s *Server) allows(proto string) bool {
	for _, p := range s.subprotocols {
		if strings.EqualFold(p, proto) {
			return true
		}
	}
	return false
}

// serve registers a connection and starts its peer, with principal (from
// [WithAuth]) on its session and remote (from [WithTrustedProxies]; nil: the
// socket's) as its address. It reports whether the connection is being
// served: then the peer's end runs s.ended, which releases the connection's
// slot.
func (s *Server) serve(tc *transport.Conn, principal any, remote net.Addr) bool {
	c := &conn{
		authed:     make(chan struct{}),
		registered: make(chan struct{}),
	}
	if principal != nil || s.opts.inBand == nil {
		close(c.authed)
	}
	opts := []rpc.Option{
		rpc.WithHandler(s.wrap(c)),
		rpc.WithBaseContext(context.WithValue(context.Background(), serverKey{}, s)),
		rpc.WithOnClose(func(err error) { s.ended(c, err) }),
		rpc.WithPrincipal(principal),
	}
	if remote != nil {
		opts = append(opts, rpc.WithRemoteAddr(remote))
	}
	peer, err := s.cfg.New(tc, opts...)
	if err != nil {
		s.refuse(RefusedSubprotocol)
		tc.Close(transport.StatusProtocolError, "unsupported subprotocol")
		return false
	}
	c.peer = peer
	if s.beforeRegister != nil {
		s.beforeRegister()
	}
	s.mu.Lock()
	s.conns[peer.ID()] = c
	s.counts.accepted.Add(1) // with the registry, so that a scrape sees both or neither
	late, drain := s.closing, s.drainCtx
	if late {
		s.late.Add(1)
	}
	s.mu.Unlock()
	s.logPeer("connected", peer, slog.String("subprotocol", peer.Subprotocol()))
	if s.opts.hub != nil {
		s.opts.hub.Attach(peer)
	}
	if s.opts.onConnect != nil {
		s.opts.onConnect(peer)
	}
	s.startExpiry(c, principal)
	c.stopAuthTimer = s.startAuthTimer(c)
	close(c.registered)
	if late {
		// Shutdown began refusing while this handshake was under way,
		// after it took its list of connections: this one is drained on
		// its own, notice first, within that Shutdown's ctx, so that the
		// calls the client already sent are answered rather than left of
		// unknown outcome. It is in the registry, so that Close reaches it.
		go func() { // owned: Shutdown and Close wait for s.late
			defer s.late.Done()
			if drain == nil { // Close: no notice, no drain
				peer.CloseNow()
				peer.Wait()
				return
			}
			// The peer has been serving since New: calls it started
			// before this registration may be cut short, and Shutdown
			// must say so as it does of the others.
			var de *rpc.DrainError
			if errors.As(peer.Shutdown(drain, s.notice()), &de) {
				s.mu.Lock()
				s.lateCut.Connections++
				s.lateCut.Incoming += de.Incoming
				s.lateCut.Outgoing += de.Outgoing
				s.lateCut.Err = de.Err
				s.mu.Unlock()
			}
		}()
	}
	return true
}

// ended runs on the peer's own goroutine once the connection is gone:
// it removes it from the registry, waits for the connection's handlers and
// releases its slot.
func (s *Server) ended(c *conn, err error) {
	<-c.registered
	id := c.peer.ID()
	s.mu.Lock()
	delete(s.conns, id)
	s.leftRegistryLocked(c)
	s.mu.Unlock()
	if c.stopAuthTimer != nil {
		c.stopAuthTimer()
	}
	s.stopExpiry(c)
	c.peer.Wait() // its handlers have been cancelled; they may have to finish a reply
	if s.opts.hub != nil {
		s.opts.hub.Detach(c.peer)
	}
	s.logPeer("disconnected", c.peer, slog.String("reason", reasonText(err)))
	if s.opts.onDisconnect != nil {
		s.opts.onDisconnect(c.peer, err)
	}
	s.release()
}

func (s *Server) log(msg string, args ...any) {
	if l := s.cfg.Logger(); l != nil {
		l.Info("wsrpc: "+msg, args...)
	}
}

// debug logs at debug level: for what a storm repeats by the thousand.
func (s *Server) debug(msg string, args ...any) {
	if l := s.cfg.Logger(); l != nil {
		l.Debug("wsrpc: "+msg, args...)
	}
}

// ListenAndServe listens on addr and serves wsrpc on every path until
// Shutdown or Close, when it returns http.ErrServerClosed. Its http.Server
// is set up as [Server.HTTPServer] says.
func (s *Server) ListenAndServe(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(ln)
}

// ListenAndServeTLS is ListenAndServe with TLS (wss://).
func (s *Server) ListenAndServeTLS(addr, certFile, keyFile string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer ln.Close() // ServeTLS leaves it open when the certificate does not load
	return s.HTTPServer(s).ServeTLS(ln, certFile, keyFile)
}

// Serve serves wsrpc on every path of ln until Shutdown or Close, and
// closes ln. To serve other paths too, mount the Server on your own
// http.ServeMux and serve that with [Server.HTTPServer].
func (s *Server) Serve(ln net.Listener) error {
	return s.HTTPServer(s).Serve(ln)
}

// HTTPServer returns a new http.Server for h with the settings of the
// Server's own (those of Serve and ListenAndServe): ReadHeaderTimeout is
// [WithReadHeaderTimeout]'s, IdleTimeout is [WithIdleTimeout]'s,
// MaxHeaderBytes is [DefaultMaxHeaderBytes], and with [rpc.WithLogger]
// net/http's errors go to the logger. ReadTimeout and
// WriteTimeout are left unset, as h may serve long requests.
//
// Use it to serve the Server and other handlers on one port: mount the
// Server on h, set TLSConfig if needed, and run it with Serve or ServeTLS.
// [Server.Shutdown] and [Server.Close] stop it as they stop Serve's (it
// closes its listeners at once); once they have begun, the returned
// http.Server is already closed, and its Serve returns http.ErrServerClosed.
func (s *Server) HTTPServer(h http.Handler) *http.Server {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.opts.readHeaderTimeout,
		IdleTimeout:       s.opts.idleTimeout,
		MaxHeaderBytes:    DefaultMaxHeaderBytes,
	}
	if l := s.cfg.Logger(); l != nil {
		hs.ErrorLog = slogErrorLog(l)
	}
	s.mu.Lock()
	closing := s.closing
	if !closing {
		s.httpSrvs = append(s.httpSrvs, hs)
	}
	s.mu.Unlock()
	if closing {
		hs.Close()
	}
	return hs
}

// Conns returns the peers of the open connections, in no particular order.
func (s *Server) Conns() []*rpc.Peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*rpc.Peer, 0, len(s.conns))
	for _, c := range s.conns {
		out = append(out, c.peer)
	}
	return out
}

// Conn returns the peer of the open connection whose [rpc.Peer.ID] is id, or
// nil.
func (s *Server) Conn(id string) *rpc.Peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.conns[id]; c != nil {
		return c.peer
	}
	return nil
}

// ShutdownError is returned by [Server.Shutdown] when its ctx ended before
// every call finished.
type ShutdownError struct {
	Connections int   // connections that were still busy
	Incoming    int   // client→server calls cut short (their handlers were cancelled)
	Outgoing    int   // server→client calls left without a reply
	Err         error // ctx's error
}

func (e *ShutdownError) Error() string {
	return fmt.Sprintf("wsrpc: shutdown cut short on %s (%d incoming, %d outgoing calls unfinished): %v",
		plural(e.Connections, "connection"), e.Incoming, e.Outgoing, e.Err)
}

func (e *ShutdownError) Unwrap() error { return e.Err }

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// Shutdown stops the server gracefully, in this order:
//
//  1. Readiness goes off ([Server.State] is [StateDraining], and
//     [Server.ReadyHandler] answers 503) while, for the [WithReadyDelay],
//     handshakes are still accepted and the connections served as usual,
//     so that a load balancer stops sending new connections first.
//  2. New work is refused: the listeners of the http.Servers the Server made
//     (Serve, ListenAndServe, HTTPServer) are closed, so new TCP
//     connections are refused and the port is free for a successor, and
//     the handshakes that still reach ServeHTTP (through an http.Server of
//     your own, or on a connection accepted just before) get 503.
//  3. Every connection is shut down with [rpc.Peer.Shutdown]: the shutdown
//     notice (with the [WithRetryAfter] hint), every call in flight in both
//     directions finished, then the close with 1012 (service restart). The
//     notices go out over the [WithGoodbyeWindow], each connection at its
//     own random moment; until its notice a connection is served as usual.
//  4. Once every connection has ended, the state is [StateStopped].
//
// ctx bounds all of it. If it ends first, the handlers still running are
// cancelled, what is left is closed at once, and Shutdown returns a
// *[ShutdownError]. Shutdown is idempotent; a second call, concurrent or
// later, does not start another ready delay, and waits like the first. It
// must not be called from a handler, which it would wait for.
func (s *Server) Shutdown(ctx context.Context) error {
	s.waitReadyDelay(ctx)
	conns, httpSrvs := s.beginClose(ctx)
	var g errgroup.Group
	for _, hs := range httpSrvs {
		g.Go(func() error {
			// Closes the listeners (new TCP connections are refused) and
			// waits for plain HTTP requests; hijacked ones are ours.
			if err := hs.Shutdown(ctx); err != nil {
				hs.Close()
			}
			return nil
		})
	}
	var mu sync.Mutex
	cut := &ShutdownError{}
	notice := s.notice()
	start := time.Now()
	window := s.goodbyeWindow(ctx, start)
	if window > 0 && len(conns) > 0 {
		s.log("shutting down: telling the connections to go", "conns", len(conns), "over", window.Round(time.Millisecond))
	}
	offsets := goodbyeOffsets(len(conns), window, rand.Float64)
	var timer *time.Timer
	for i, c := range shuffled(conns) {
		if d := time.Until(start.Add(offsets[i])); d > 0 && ctx.Err() == nil {
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			select {
			case <-timer.C:
			case <-ctx.Done(): // the rest are told at once, and cut short
			case <-s.aborted: // Close has closed them all
			}
		}
		g.Go(func() error {
			var de *rpc.DrainError
			if errors.As(c.peer.Shutdown(ctx, notice), &de) {
				mu.Lock()
				cut.Connections++
				cut.Incoming += de.Incoming
				cut.Outgoing += de.Outgoing
				cut.Err = de.Err
				mu.Unlock()
			}
			return nil
		})
	}
	if timer != nil {
		timer.Stop()
	}
	g.Wait()
	s.served.Wait() // every connection has ended and been cleaned up
	s.late.Wait()
	s.mu.Lock()
	if late := s.lateCut; late.Connections > 0 {
		cut.Connections += late.Connections
		cut.Incoming += late.Incoming
		cut.Outgoing += late.Outgoing
		cut.Err = late.Err
	}
	s.mu.Unlock()
	s.stopped()
	if cut.Connections > 0 {
		return cut
	}
	return nil
}

// Close closes every connection at once (no notice, no drain; clients see
// 1006) and stops the listeners. It is idempotent.
func (s *Server) Close() error {
	conns, httpSrvs := s.beginClose(nil)
	var g errgroup.Group
	for _, hs := range httpSrvs {
		g.Go(hs.Close)
	}
	for _, c := range conns {
		g.Go(c.peer.CloseNow)
	}
	g.Wait()
	s.served.Wait()
	s.late.Wait()
	s.stopped()
	return nil
}

// notice is the shutdown notice every connection gets.
func (s *Server) notice() rpc.Notice {
	return rpc.Notice{RetryAfter: s.opts.retryAfter, Reason: "server shutting down", Code: transport.StatusServiceRestart}
}

// stopped records that every connection has ended.
func (s *Server) stopped() {
	s.mu.Lock()
	s.state = StateStopped
	s.mu.Unlock()
}

// beginClose starts refusing handshakes and returns the connections and
// http.Servers to stop. ctx is Shutdown's (nil for Close): the ctx of the
// Shutdown that begins refusing bounds the drain of the connections whose
// handshakes end later, unless Close comes, which closes them at once.
func (s *Server) beginClose(ctx context.Context) ([]*conn, []*http.Server) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case ctx == nil: // Close: the late ones are closed at once too
		s.drainCtx = nil
		s.abortOne.Do(func() { close(s.aborted) })
	case !s.closing:
		s.drainCtx = ctx
	}
	if s.state == StateReady {
		s.state = StateDraining
	}
	if !s.closing {
		s.closing = true
		close(s.refusing)
	}
	conns := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	return conns, append([]*http.Server(nil), s.httpSrvs...)
}
