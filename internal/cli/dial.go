package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// dialFlags are the flags of every command that dials a server.
type dialFlags struct {
	headers  headerFlag
	insecure bool
	ca       string // PEM file of the CAs to trust instead of the system's
	cert     string // PEM file of the client certificate (with key)
	key      string
	proxy    string // URL of an HTTP CONNECT proxy

	// wrap, when set, wraps the transport of the handshake's HTTP client
	// (call -v records the handshake with it).
	wrap func(http.RoundTripper) http.RoundTripper
}

func (d *dialFlags) register(fs *flag.FlagSet) {
	fs.Var(&d.headers, "H", "`'Name: value'` add a header to the handshake request (repeatable)")
	fs.BoolVar(&d.insecure, "insecure", false, "skip TLS certificate verification (wss://); never in production")
	fs.StringVar(&d.ca, "ca", "", "trust the CA certificates of this PEM `file` (wss://, and an https:// proxy) instead of the system's")
	fs.StringVar(&d.cert, "cert", "", "present the client certificate of this PEM `file` (wss://; with --key)")
	fs.StringVar(&d.key, "key", "", "the private key of --cert, a PEM `file`")
	fs.StringVar(&d.proxy, "proxy", "", "reach the server through the HTTP proxy at this `URL` ([user:pass@]host:port after http:// or https://), with CONNECT; without it, $HTTPS_PROXY and $HTTP_PROXY are used")
}

// tlsConfig returns the TLS configuration the flags ask for, nil for the
// defaults. A file that cannot be used is a usage error: nothing was dialed.
func (d *dialFlags) tlsConfig(e *env, name string) (*tls.Config, error) {
	if (d.cert == "") != (d.key == "") {
		return nil, usagef("--cert and --key go together")
	}
	if !d.insecure && d.ca == "" && d.cert == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if d.ca != "" {
		pem, err := os.ReadFile(d.ca)
		if err != nil {
			return nil, usagef("--ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usagef("--ca %s: no PEM certificate in it", d.ca)
		}
		cfg.RootCAs = pool
	}
	if d.cert != "" {
		pair, err := tls.LoadX509KeyPair(d.cert, d.key)
		if err != nil {
			return nil, usagef("--cert/--key: %v", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if d.insecure {
		fmt.Fprintf(e.stderr, "wsrpc %s: WARNING: --insecure: TLS certificates are NOT verified; anyone on the network path can read and change this connection\n", name)
		cfg.InsecureSkipVerify = true //nolint:gosec // asked for with --insecure
	}
	return cfg, nil
}

// httpClient returns the HTTP client of the handshake the flags ask for
// (TLS, proxy, call -v's recorder), nil when the defaults do.
func (d *dialFlags) httpClient(e *env, name string) (*http.Client, error) {
	tc, err := d.tlsConfig(e, name)
	if err != nil {
		return nil, err
	}
	var proxy *url.URL
	if d.proxy != "" {
		if proxy, err = parseProxy(d.proxy); err != nil {
			return nil, err
		}
	}
	if tc == nil && proxy == nil && d.wrap == nil {
		return nil, nil
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tc
	if proxy != nil {
		// A tunnel for ws:// too: the standard transport would send a
		// ws:// handshake to the proxy as a plain request, which proxies
		// do not upgrade.
		t.Proxy = nil
		cd := &connectDialer{proxy: proxy}
		if tc != nil {
			cd.roots, cd.insecure = tc.RootCAs, tc.InsecureSkipVerify
		}
		t.DialContext = cd.DialContext
	}
	var rt http.RoundTripper = t
	if d.wrap != nil {
		rt = d.wrap(rt)
	}
	return &http.Client{Transport: rt}, nil
}

// clientOptions returns the options of client.Dial the flags ask for.
func (d *dialFlags) clientOptions(e *env, name string) ([]client.Option, error) {
	var opts []client.Option
	if h := d.headers.header(); h != nil {
		opts = append(opts, client.WithHeader(h))
	}
	hc, err := d.httpClient(e, name)
	if err != nil {
		return nil, err
	}
	if hc != nil {
		opts = append(opts, client.WithHTTPClient(hc))
	}
	return opts, nil
}

// transportOptions returns the options of transport.Dial the flags ask for,
// for connect, which speaks raw WebSocket.
func (d *dialFlags) transportOptions(e *env, name string, subprotocols []string) (*transport.DialOptions, error) {
	hc, err := d.httpClient(e, name)
	if err != nil {
		return nil, err
	}
	return &transport.DialOptions{Header: d.headers.header(), Subprotocols: subprotocols, HTTPClient: hc}, nil
}

// codecFlag is the --codec flag of the RPC commands.
type codecFlag struct{ name string }

func (c *codecFlag) register(fs *flag.FlagSet) {
	fs.StringVar(&c.name, "codec", "auto", "`auto|binary|json` wire codec to offer (auto: wsrpc.v1, then jsonrpc2.0; binary or json: that one alone)")
}

func (c *codecFlag) check() error { return oneOf("codec", c.name, "auto", "binary", "json") }

// options returns the option offering the subprotocols of the codec: none
// for auto, which leaves client.Dial's default (binary first, then
// JSON-RPC).
func (c *codecFlag) options() []client.Option {
	switch c.name {
	case "json":
		return []client.Option{rpc.WithSubprotocols(rpc.SubprotocolJSON)}
	case "binary":
		return []client.Option{rpc.WithSubprotocols(rpc.SubprotocolBinary)}
	}
	return nil
}

// checkURL makes sure u is a URL Dial can use, before anything is dialed.
func checkURL(u string) error {
	parsed, err := url.Parse(u)
	if err != nil {
		return usagef("bad URL %q: %v", u, err)
	}
	switch parsed.Scheme {
	case "ws", "wss", "http", "https":
	default:
		return usagef("bad URL %q: the scheme must be ws://, wss://, http:// or https://", u)
	}
	if parsed.Host == "" {
		return usagef("bad URL %q: no host", u)
	}
	return nil
}

// dialClient connects a client.Client to u: the one way the RPC commands
// (call, notify, bench, demo) reach a server. A one-shot command passes
// client.WithReconnect(false).
func dialClient(ctx context.Context, u string, opts ...client.Option) (*client.Client, error) {
	c, err := client.Dial(ctx, u, opts...)
	if err != nil {
		return nil, dialError(u, err)
	}
	return c, nil
}

// dialError says in a few words why dialing u failed:
// "dial ws://127.0.0.1:1/rpc: connection refused".
func dialError(u string, err error) error {
	var (
		he    *transport.HandshakeError
		errno syscall.Errno
		dns   *net.DNSError
		ua    x509.UnknownAuthorityError
		hn    x509.HostnameError
		ci    x509.CertificateInvalidError
		rh    tls.RecordHeaderError
		pe    *proxyError
	)
	var why string
	switch {
	case errors.As(err, &pe):
		why = pe.Error()
	case errors.As(err, &he):
		why = fmt.Sprintf("the server answered HTTP %d %s instead of switching protocols", he.StatusCode, http.StatusText(he.StatusCode))
	case errors.Is(err, context.DeadlineExceeded):
		why = "timed out"
	case errors.Is(err, context.Canceled):
		why = "interrupted"
	case errors.As(err, &dns):
		why = fmt.Sprintf("lookup %s: %s", dns.Name, dns.Err)
	case errors.As(err, &ua), errors.As(err, &hn), errors.As(err, &ci):
		why = fmt.Sprintf("TLS: %s (--ca FILE trusts a CA; --insecure skips the check)", innermost(err))
	case errors.As(err, &rh):
		why = "TLS handshake failed: the server does not speak TLS (use ws:// or http://)"
	case errors.As(err, &errno):
		why = errno.Error()
	default:
		why = innermost(err)
	}
	return &dialErr{msg: fmt.Sprintf("dial %s: %s", redact(u), why), err: err}
}

// dialErr is a failed dial: a message of a few words, and the error that
// says more.
type dialErr struct {
	msg string
	err error
}

func (e *dialErr) Error() string { return e.msg }
func (e *dialErr) Unwrap() error { return e.err }

// innermost returns the text of the deepest error err wraps: the actual
// cause, without the layers of context around it.
func innermost(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

// redact hides a password in u.
func redact(u string) string {
	parsed, err := url.Parse(u)
	if err != nil || parsed.User == nil {
		return u
	}
	return parsed.Redacted()
}

// closeNames are the names of the close codes RFC 6455 and IANA define.
var closeNames = map[transport.StatusCode]string{
	1000: "normal closure",
	1001: "going away",
	1002: "protocol error",
	1003: "unsupported data",
	1005: "no status",
	1006: "abnormal closure",
	1007: "invalid payload",
	1008: "policy violation",
	1009: "message too big",
	1010: "mandatory extension",
	1011: "internal error",
	1012: "service restart",
	1013: "try again later",
	1014: "bad gateway",
	1015: "TLS handshake",
}

// closeText describes how a connection ended: `1000 normal closure "bye"`.
func closeText(err error) string {
	var ce *transport.CloseError
	if !errors.As(err, &ce) {
		if err == nil {
			return "open"
		}
		return err.Error()
	}
	s := fmt.Sprint(int(ce.Code))
	if name, ok := closeNames[ce.Code]; ok {
		s += " " + name
	}
	if ce.Reason != "" {
		s += fmt.Sprintf(" %q", ce.Reason)
	}
	if ce.Err != nil {
		s += ": " + closeCause(ce.Err)
	}
	return s
}

// closeCause says in a few words why a connection ended abnormally: the
// transport's own reasons as they are, a network error by its root cause
// ("EOF", "connection reset by peer").
func closeCause(err error) string {
	for _, known := range []error{transport.ErrMessageTooBig, transport.ErrInvalidUTF8,
		transport.ErrPeerUnresponsive, transport.ErrWriteTimeout} {
		if errors.Is(err, known) {
			return strings.TrimPrefix(err.Error(), "wsrpc: ")
		}
	}
	return innermost(err)
}

// abnormal reports whether a connection ended without a clean closing
// handshake: the network failed, or a side broke the protocol.
func abnormal(err error) bool {
	var ce *transport.CloseError
	if !errors.As(err, &ce) {
		return err != nil
	}
	return ce.Code == transport.StatusAbnormal || ce.Err != nil
}
