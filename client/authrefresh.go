package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/wsrpc/wsrpc/internal/authwire"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// Credential is what a [Client] authenticates with, as the callback of
// [WithCredentials] gives it.
type Credential struct {
	// Header is sent with the opening handshake of the next connections,
	// over the headers of [WithHeader] (for server.WithAuth: typically
	// Authorization).
	Header http.Header
	// Params is the new credential presented on an open connection with
	// $/auth.refresh, encoded as JSON (an rpc.Raw or json.RawMessage as it
	// is), which must be an object or an array, such as
	// {"token": "..."}. With [WithInBandAuth] it is also the params of the
	// in-band authentication call on each new connection (encoded there as
	// any call's params).
	Params any
}

// MaxAuthRefreshLead is how long before its expiry, at most, a [Client]
// refreshes its authentication: a connection whose authentication lasts L
// is refreshed at a random point between L − lead and L − lead/2, where
// lead is L/2 up to MaxAuthRefreshLead. The random part spreads clients
// that authenticated together.
const MaxAuthRefreshLead = time.Minute

// authCallTimeout bounds a refresh made after its connection's expiry has
// passed (a server that has not closed it yet), and an in-band
// authentication call.
const authCallTimeout = transport.DefaultHandshakeTimeout

// AuthError is what the hook of [WithAuthErrorHook] is given, and what Dial
// returns when the first connection could not authenticate: which step of
// authentication failed, and why.
type AuthError struct {
	// Op is the step: "credentials" (the callback of WithCredentials
	// failed), "handshake" (the server refused the handshake with 401 or
	// 403), "login" (the in-band authentication call of WithInBandAuth
	// failed), "refresh" ($/auth.refresh failed or its answer was not
	// valid), "expiry" (a $/auth.expiry that was not valid) or "expired"
	// (the server closed the connection with [rpc.CloseAuthExpired]).
	Op  string
	Err error
}

func (e *AuthError) Error() string { return "wsrpc: authentication " + e.Op + ": " + e.Err.Error() }

func (e *AuthError) Unwrap() error { return e.Err }

// WithCredentials gives the client a source of credentials: fn returns one
// (see [Credential]) and is called
//
//   - by Dial, before the first handshake, bounded by Dial's ctx; with
//     [WithWaitForServer], once more when a handshake after a wait is
//     refused with 401 or 403 (the credential may have expired meanwhile);
//   - ahead of the expiry the server announced for the connection
//     (docs/PROTOCOL.md, section 15; see [MaxAuthRefreshLead]), to refresh
//     it in-band with $/auth.refresh: calls and subscriptions carry on;
//   - before a reconnect, when the credential in use is known to be no
//     longer accepted: the server closed the connection with
//     [rpc.CloseAuthExpired] (4401), refused the handshake with 401 or 403
//     or the in-band authentication, or its expiry has passed. Other
//     reconnects reuse the last credential.
//
// Only one call of fn runs at a time, and a credential fn returns for a
// refresh is also the one the next handshake uses, so a refresh racing a
// reconnect does not fetch twice. ctx is cancelled by [Client.Close]; fn
// must honour it. A failure of fn, of the refresh or of the handshake is
// not retried at once: the next attempt waits for the reconnect backoff
// ([WithBackoff]), doubled with each failure, and a server that answers
// $/auth.refresh with -32601 is not asked again on that connection. Each
// failure goes to the hook of [WithAuthErrorHook] and to the logger, as
// an *[AuthError]. A connection whose refresh keeps failing is closed by
// the server at its expiry, and the client reconnects with a new credential.
func WithCredentials(fn func(ctx context.Context) (Credential, error)) Option {
	return clientOption(func(o *options) { o.credentials = fn })
}

// WithInBandAuth makes the client authenticate every new connection by
// calling method (the server's server.WithInBandAuth method) with the
// Params of its current [Credential] before anything else: calls and
// subscriptions wait until it succeeds. It needs [WithCredentials]. A
// refused call (-32004, -32005) marks the credential as refused, so the
// next attempt gets a new one.
func WithInBandAuth(method string) Option {
	return clientOption(func(o *options) { o.inBandMethod = method })
}

// WithAuthErrorHook calls hook with every authentication failure, an
// *[AuthError], from the client's own goroutines, one call at a time. hook
// must return quickly and must not call [Client.Close].
func WithAuthErrorHook(hook func(err error)) Option {
	return clientOption(func(o *options) { o.authErrorHook = hook })
}

// AuthExpiry returns when the authentication of the current connection
// ends, as its server announced it (docs/PROTOCOL.md, section 15), by this
// machine's clock; the zero time when it does not end, it is not known, or
// no connection is up.
func (c *Client) AuthExpiry() time.Time {
	if pa := peerAuthOf(c.Peer()); pa != nil {
		return pa.expiry()
	}
	return time.Time{}
}

// authState is the client's part of authentication: its credentials and
// what it knows of them. It is made by Dial; fn is nil without
// WithCredentials.
type authState struct {
	fn     func(ctx context.Context) (Credential, error)
	method string        // of WithInBandAuth
	sem    chan struct{} // one call of fn at a time
	poke   chan struct{} // a connection learned its expiry (buffer 1)
	hookMu sync.Mutex    // one call of the error hook at a time

	mu      sync.Mutex
	cred    Credential
	gen     uint64    // credentials fn has returned
	bad     uint64    // the newest of them the server refused or expired
	expires time.Time // when the authentication with credential gen ends (zero: not known)
	expired int       // connections closed with 4401 in a row, without a successful refresh or a long life
}

func newAuthState(o *options) *authState {
	return &authState{fn: o.credentials, method: o.inBandMethod, sem: make(chan struct{}, 1), poke: make(chan struct{}, 1)}
}

// peerAuth is what the client knows of the authentication of one
// connection. It is kept in the connection's session.
type peerAuth struct {
	mu          sync.Mutex
	gen         uint64 // the credential it is authenticated with (0: none of fn's)
	has         bool   // it has an expiry
	at          time.Time
	refreshAt   time.Time
	unsupported bool // the server answered $/auth.refresh with -32601
}

type peerAuthKey struct{}

// peerAuthOf returns the authentication record of p, nil for nil.
func peerAuthOf(p *rpc.Peer) *peerAuth {
	pa, _ := p.Session().Value(peerAuthKey{}).(*peerAuth)
	return pa
}

func (pa *peerAuth) expiry() time.Time {
	pa.mu.Lock()
	defer pa.mu.Unlock()
	if !pa.has {
		return time.Time{}
	}
	return pa.at
}

// set records a lifetime d (has: there is one) that started now, and when
// to refresh it.
func (pa *peerAuth) set(d time.Duration, has bool, c *Client) time.Time {
	now := time.Now()
	pa.mu.Lock()
	defer pa.mu.Unlock()
	pa.has = has
	if !has {
		return time.Time{}
	}
	pa.at = now.Add(d)
	pa.refreshAt = now.Add(c.refreshDelay(d))
	return pa.at
}

// refreshDelay is how long after a lifetime L was announced its refresh
// comes: at a random point in [L − lead, L − lead/2] (see
// [MaxAuthRefreshLead]), and never sooner than the backoff base, so that a
// server giving very short lifetimes does not make the client loop.
func (c *Client) refreshDelay(l time.Duration) time.Duration {
	lead := min(l/2, MaxAuthRefreshLead)
	d := l - lead + time.Duration(c.randN(int64(lead/2)+1))
	return max(d, c.opts.backoffBase)
}

// handshakeOptions returns the dial options of the next handshake, with the
// current credential's header, and which credential that is. Without
// WithCredentials they are the client's own.
func (c *Client) handshakeOptions(ctx context.Context) (*transport.DialOptions, uint64, Credential, error) {
	a := c.auth
	if a.fn == nil {
		return &c.dialOpts, 0, Credential{}, nil
	}
	cred, gen, err := a.current(ctx)
	if err != nil {
		c.authFailed(err)
		return nil, 0, cred, err
	}
	opts := c.dialOpts
	if len(cred.Header) > 0 {
		opts.Header = opts.Header.Clone()
		if opts.Header == nil {
			opts.Header = make(http.Header, len(cred.Header))
		}
		for k, v := range cred.Header {
			opts.Header[http.CanonicalHeaderKey(k)] = v
		}
	}
	return &opts, gen, cred, nil
}

// current returns the credential to authenticate a new connection with: the
// last one, unless it is known to be refused or expired, or there is none
// yet, when fn gives a new one.
func (a *authState) current(ctx context.Context) (Credential, uint64, error) {
	a.mu.Lock()
	usable := a.gen > a.bad && (a.expires.IsZero() || time.Now().Before(a.expires))
	cred, gen := a.cred, a.gen
	a.mu.Unlock()
	if usable {
		return cred, gen, nil
	}
	return a.fetch(ctx, gen)
}

// fetch returns a credential newer than after: one fn returned while this
// call waited for another's to finish, or a new one from fn.
func (a *authState) fetch(ctx context.Context, after uint64) (Credential, uint64, error) {
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return Credential{}, 0, &AuthError{Op: "credentials", Err: ctx.Err()}
	}
	defer func() { <-a.sem }()
	a.mu.Lock()
	if a.gen > after {
		cred, gen := a.cred, a.gen
		a.mu.Unlock()
		return cred, gen, nil
	}
	a.mu.Unlock()
	cred, err := a.fn(ctx)
	if err != nil {
		return Credential{}, 0, &AuthError{Op: "credentials", Err: err}
	}
	cred.Header = cred.Header.Clone()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gen++
	a.cred, a.expires = cred, time.Time{}
	return cred, a.gen, nil
}

// markBad records that the server no longer accepts credential gen.
func (a *authState) markBad(gen uint64) {
	a.mu.Lock()
	a.bad = max(a.bad, gen)
	a.mu.Unlock()
}

// authenticated records that a connection authenticated with credential gen
// has an expiry at (zero: none); refreshed says it came from a successful
// refresh, which ends a run of expired connections.
func (a *authState) authenticated(gen uint64, at time.Time, refreshed bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if gen == a.gen && gen != 0 {
		a.expires = at
	}
	if refreshed {
		a.expired = 0
	}
}

// penalty is how many steps further the reconnect backoff starts after
// connections that kept expiring: a server whose lifetimes are too short
// to refresh does not make the client reconnect hot.
func (a *authState) penalty() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return max(a.expired-1, 0)
}

// handshakeFailed marks the credential of a refused handshake.
func (c *Client) handshakeFailed(gen uint64, err error) {
	var he *transport.HandshakeError
	if c.auth.fn == nil || !errors.As(err, &he) {
		return
	}
	if he.StatusCode == http.StatusUnauthorized || he.StatusCode == http.StatusForbidden {
		c.auth.markBad(gen)
		c.authFailed(&AuthError{Op: "handshake", Err: err})
	}
}

// login makes the in-band authentication call of WithInBandAuth on a new
// connection; on failure it closes the connection.
func (c *Client) login(ctx context.Context, p *rpc.Peer, gen uint64, cred Credential) error {
	if c.auth.method == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, authCallTimeout)
	defer cancel()
	err := p.Call(ctx, c.auth.method, cred.Params, nil)
	if err == nil {
		return nil
	}
	_ = p.CloseNow()
	p.Wait()
	if code := rpc.CodeOf(err); code == rpc.CodeUnauthenticated || code == rpc.CodePermissionDenied {
		c.auth.markBad(gen)
	}
	err = &AuthError{Op: "login", Err: err}
	c.authFailed(err)
	return err
}

// expiryInline handles $/auth.expiry on a connection, on its reader.
func (c *Client) expiryInline(pa *peerAuth) rpc.Option {
	return rpc.WithInline(rpc.MethodAuthExpiry, func(req *rpc.Request) {
		d, has, err := authwire.Decode(req.Params)
		switch {
		case errors.Is(err, authwire.ErrExpired):
			// Already expired: refresh as soon as allowed.
			d, has = 0, true
			c.authFailed(&AuthError{Op: "expiry", Err: err})
		case err != nil:
			c.authFailed(&AuthError{Op: "expiry", Err: err})
			return
		case !has:
			return // $/auth.expiry always has one; nothing to do
		}
		at := pa.set(d, true, c)
		pa.mu.Lock()
		gen := pa.gen
		pa.mu.Unlock()
		c.auth.authenticated(gen, at, false)
		select {
		case c.auth.poke <- struct{}{}:
		default:
		}
	})
}

// authEnded looks at how the connection p ended: a close with 4401 means
// its credential has expired, so the next connection needs a new one.
func (c *Client) authEnded(p *rpc.Peer) {
	var ce *transport.CloseError
	if !errors.As(p.Err(), &ce) || ce.Code != rpc.CloseAuthExpired || !ce.Remote {
		return
	}
	a := c.auth
	if pa := peerAuthOf(p); pa != nil {
		pa.mu.Lock()
		gen := pa.gen
		pa.mu.Unlock()
		a.markBad(gen)
	}
	a.mu.Lock()
	if time.Since(p.ConnectedAt()) > c.opts.backoffMax {
		a.expired = 0 // it lived long: not a run of connections expiring at once
	}
	a.expired++
	a.mu.Unlock()
	c.authFailed(&AuthError{Op: "expired", Err: p.Err()})
}

// authFailed reports an authentication failure to the logger and the hook.
func (c *Client) authFailed(err error) {
	c.log(slog.LevelWarn, "wsrpc: authentication failed", nil, "err", err)
	if c.opts.authErrorHook == nil {
		return
	}
	c.auth.hookMu.Lock()
	defer c.auth.hookMu.Unlock()
	c.opts.authErrorHook(err)
}

// refresher is the goroutine of WithCredentials: it refreshes the current
// connection's authentication ahead of its expiry, and after a failure
// waits for a backoff that doubles with each one. It returns when the
// client closes.
func (c *Client) refresher() {
	var last *rpc.Peer
	failures := 0
	for {
		c.mu.Lock()
		p, changed := c.peer, c.changed
		c.mu.Unlock()
		if p != last {
			last, failures = p, 0
		}
		var t *time.Timer
		var due <-chan time.Time // nil: nothing to refresh
		pa := peerAuthOf(p)
		if pa != nil {
			if wait, ok := c.nextRefresh(pa, failures); ok {
				t = time.NewTimer(wait)
				due = t.C
			}
		}
		select {
		case <-c.closing.Done():
		case <-changed:
		case <-c.auth.poke:
		case <-due:
			if err := c.refreshOn(p, pa); err != nil {
				failures++
				c.authFailed(err)
			} else {
				failures = 0
			}
		}
		if t != nil {
			t.Stop()
		}
		if c.isClosed() {
			return
		}
	}
}

// nextRefresh says how long to wait before refreshing pa, and whether to.
func (c *Client) nextRefresh(pa *peerAuth, failures int) (time.Duration, bool) {
	pa.mu.Lock()
	defer pa.mu.Unlock()
	if !pa.has || pa.unsupported {
		return 0, false
	}
	if failures == 0 {
		return time.Until(pa.refreshAt), true
	}
	// Half the backoff ceiling, plus a random part of the other half: never
	// at once.
	ceil := jitter(c.opts.backoffBase, c.opts.backoffMax, failures-1, func(n int64) int64 { return n - 1 })
	return ceil/2 + time.Duration(c.randN(int64(ceil/2)+1)), true
}

// refreshOn refreshes the authentication of p with a new credential.
func (c *Client) refreshOn(p *rpc.Peer, pa *peerAuth) error {
	pa.mu.Lock()
	gen, at := pa.gen, pa.at
	pa.mu.Unlock()
	ctx, cancel := context.WithTimeout(c.closing, max(time.Until(at), authCallTimeout))
	defer cancel()
	cred, newGen, err := c.auth.fetch(ctx, gen)
	if err != nil {
		return err
	}
	if c.Peer() != p {
		return nil // the connection changed meanwhile: the credential is for the next handshake
	}
	params, err := refreshParams(cred.Params)
	if err != nil {
		return &AuthError{Op: "refresh", Err: err}
	}
	var raw rpc.Raw
	if err := p.Call(ctx, rpc.MethodAuthRefresh, params, &raw); err != nil {
		switch rpc.CodeOf(err) {
		case rpc.CodeMethodNotFound:
			pa.mu.Lock()
			pa.unsupported = true
			pa.mu.Unlock()
		case rpc.CodeUnauthenticated, rpc.CodePermissionDenied:
			c.auth.markBad(newGen)
		}
		return &AuthError{Op: "refresh", Err: err}
	}
	d, has, err := authwire.Decode(raw)
	if err != nil {
		c.auth.markBad(newGen)
		return &AuthError{Op: "refresh", Err: fmt.Errorf("the server's answer %.64s: %w", raw, err)}
	}
	pa.mu.Lock()
	pa.gen = newGen
	pa.mu.Unlock()
	c.auth.authenticated(newGen, pa.set(d, has, c), true)
	return nil
}

// refreshParams encodes a credential's Params for $/auth.refresh: JSON on
// both codecs.
func refreshParams(v any) (rpc.Raw, error) {
	var b []byte
	switch v := v.(type) {
	case nil:
		return nil, errors.New("the credential has no Params to refresh with")
	case rpc.Raw:
		b = v
	case json.RawMessage:
		b = v
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			return nil, fmt.Errorf("encode the credential: %w", err)
		}
	}
	if !rpc.ValidJSON(b) {
		return nil, errors.New("the credential's Params are not valid JSON")
	}
	return rpc.Raw(b), nil
}
