package cli

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// maxProxyResponse bounds the proxy's answer to CONNECT (status line and
// headers).
const maxProxyResponse = 64 << 10

// parseProxy checks a --proxy URL: http:// or https://, a host, nothing
// else.
func parseProxy(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, usagef("--proxy %q: %v", s, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, usagef("--proxy %q: want http://host:port or https://host:port", s)
	case u.Host == "":
		return nil, usagef("--proxy %q: no host", s)
	case u.Path != "" && u.Path != "/", u.RawQuery != "":
		return nil, usagef("--proxy %q: a proxy URL has no path", s)
	}
	return u, nil
}

// proxyError is a failure to open a tunnel through the proxy.
type proxyError struct {
	proxy string // redacted URL
	msg   string
	err   error // the network's error, if any
}

func (e *proxyError) Error() string {
	if e.err != nil {
		return fmt.Sprintf("proxy %s: %s: %s", e.proxy, e.msg, innermost(e.err))
	}
	return fmt.Sprintf("proxy %s: %s", e.proxy, e.msg)
}

func (e *proxyError) Unwrap() error { return e.err }

// connectDialer opens TCP connections through an HTTP proxy with CONNECT
// (RFC 9110, 9.3.6), for ws:// and wss:// alike: the handshake, and TLS for
// wss://, then go through the tunnel end to end.
type connectDialer struct {
	proxy *url.URL
	// roots and insecure verify an https:// proxy's certificate: --ca and
	// --insecure apply to the proxy too.
	roots    *x509.CertPool
	insecure bool
	net      net.Dialer
}

// DialContext is the http.Transport's DialContext: a tunnel to addr. ctx
// bounds the connection to the proxy and its answer.
func (d *connectDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	name := d.proxy.Redacted()
	fail := func(msg string, err error) error { return &proxyError{proxy: name, msg: msg, err: err} }
	host := d.proxy.Host
	if d.proxy.Port() == "" {
		port := "80"
		if d.proxy.Scheme == "https" {
			port = "443"
		}
		host = net.JoinHostPort(d.proxy.Hostname(), port)
	}
	conn, err := d.net.DialContext(ctx, network, host)
	if err != nil {
		return nil, fail("cannot reach the proxy", err)
	}
	// The ctx bounds the exchange with the proxy: its end unblocks the
	// reads and writes below.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	tunnel, err := d.connect(conn, addr)
	if !stop() {
		err = errors.Join(ctx.Err(), err)
	}
	if err != nil {
		conn.Close()
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return nil, err
		}
		var pe *proxyError
		if errors.As(err, &pe) {
			pe.proxy = name
			return nil, pe
		}
		return nil, fail("CONNECT "+addr+" failed", err)
	}
	return tunnel, nil
}

// connect asks the proxy on conn for a tunnel to addr and returns the
// tunnel.
func (d *connectDialer) connect(conn net.Conn, addr string) (net.Conn, error) {
	if d.proxy.Scheme == "https" {
		tc := tls.Client(conn, &tls.Config{
			ServerName:         d.proxy.Hostname(),
			RootCAs:            d.roots,
			InsecureSkipVerify: d.insecure, //nolint:gosec // asked for with --insecure
			MinVersion:         tls.VersionTLS12,
		})
		if err := tc.Handshake(); err != nil {
			return nil, &proxyError{msg: "TLS handshake with the proxy failed", err: err}
		}
		conn = tc
	}
	req := &http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Opaque: addr},
		Host:   addr,
		Header: http.Header{},
	}
	if u := d.proxy.User; u != nil {
		pass, _ := u.Password()
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pass)))
	}
	if err := req.Write(conn); err != nil {
		return nil, err
	}
	// The answer is read through a limit; what the bufio.Reader holds beyond
	// it is the start of the tunnel's data.
	lr := &io.LimitedReader{R: conn, N: maxProxyResponse}
	br := bufio.NewReader(lr)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		if lr.N == 0 {
			return nil, &proxyError{msg: fmt.Sprintf("its answer to CONNECT is over %d bytes", maxProxyResponse)}
		}
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &proxyError{msg: fmt.Sprintf("CONNECT %s: the proxy answered HTTP %s", addr, resp.Status)}
	}
	if br.Buffered() > 0 {
		return &bufferedConn{Conn: conn, br: br}, nil
	}
	return conn, nil
}

// bufferedConn is a tunnel whose first bytes were read with the proxy's
// answer.
type bufferedConn struct {
	net.Conn
	br *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) {
	if c.br.Buffered() > 0 {
		return c.br.Read(p)
	}
	return c.Conn.Read(p)
}
