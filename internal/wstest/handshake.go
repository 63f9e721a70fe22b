package wstest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// acceptGUID is the fixed GUID of RFC 6455, section 1.3.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptKey returns the Sec-WebSocket-Accept value that answers the given
// Sec-WebSocket-Key.
func AcceptKey(key string) string {
	h := sha1.Sum([]byte(key + acceptGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// maxErrorBody bounds how much of a non-101 response body DialPeer keeps.
const maxErrorBody = 64 << 10

// DialPeer connects to a ws:// URL (TLS is not supported), performs the
// HTTP/1.1 upgrade handshake and returns a client-side Peer.
//
// The request carries Host, Upgrade, Connection, Sec-WebSocket-Key (16
// random bytes) and Sec-WebSocket-Version: 13, plus header. Entries in
// header replace the defaults of the same name, which lets tests send
// broken handshakes; Sec-WebSocket-Accept is always checked against the key
// actually sent. DialPeer checks for status 101, the Upgrade and Connection
// headers and Sec-WebSocket-Accept; it does not check the subprotocol the
// server chose, which Peer.Subprotocol reports.
//
// If the server answers with any other status, DialPeer returns the
// response (its body read into memory, so it stays readable) and an error.
// ctx bounds the dial and the handshake only, not the life of the Peer.
func DialPeer(ctx context.Context, rawURL string, header http.Header) (*Peer, *http.Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("wstest: %w", err)
	}
	if u.Scheme != "ws" && u.Scheme != "http" {
		return nil, nil, fmt.Errorf("wstest: unsupported URL scheme %q (want ws)", u.Scheme)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("wstest: %w", err)
	}

	dl, _ := ctx.Deadline() // zero if ctx has no deadline
	_ = conn.SetDeadline(dl)
	stop := watchContext(ctx, func() { _ = conn.SetDeadline(aLongTimeAgo) })
	p, resp, err := clientHandshake(conn, u, header)
	if !stop() && err != nil {
		err = fmt.Errorf("wstest: handshake: %w (%w)", ctx.Err(), err)
	}
	if err != nil {
		_ = conn.Close()
		return nil, resp, err
	}
	// stop has returned, so no interrupt can arrive after this.
	if err := conn.SetDeadline(time.Time{}); err != nil {
		_ = conn.Close()
		return nil, resp, fmt.Errorf("wstest: %w", err)
	}
	return p, resp, nil
}

func clientHandshake(conn net.Conn, u *url.URL, extra http.Header) (*Peer, *http.Response, error) {
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])

	h := http.Header{}
	h.Set("Upgrade", "websocket")
	h.Set("Connection", "Upgrade")
	h.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(nonce[:]))
	h.Set("Sec-WebSocket-Version", "13")
	host := u.Host
	for k, vs := range extra {
		if http.CanonicalHeaderKey(k) == "Host" {
			if len(vs) > 0 {
				host = vs[0]
			}
			continue
		}
		h[http.CanonicalHeaderKey(k)] = vs
	}
	key := h.Get("Sec-WebSocket-Key")

	var req bytes.Buffer
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\n", u.RequestURI(), host)
	_ = h.Write(&req) // sorted by key; cannot fail writing to a bytes.Buffer
	req.WriteString("\r\n")
	if _, err := conn.Write(req.Bytes()); err != nil {
		return nil, nil, fmt.Errorf("wstest: writing handshake request: %w", err)
	}

	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet, URL: u})
	if err != nil {
		return nil, nil, fmt.Errorf("wstest: reading handshake response: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return nil, resp, fmt.Errorf("wstest: handshake: unexpected status %q", resp.Status)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		return nil, resp, fmt.Errorf("wstest: handshake: Upgrade header is %q, want websocket", resp.Header.Get("Upgrade"))
	}
	if !headerHasToken(resp.Header, "Connection", "upgrade") {
		return nil, resp, fmt.Errorf("wstest: handshake: Connection header %q lacks upgrade", resp.Header.Values("Connection"))
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), AcceptKey(key); got != want {
		return nil, resp, fmt.Errorf("wstest: handshake: Sec-WebSocket-Accept is %q, want %q", got, want)
	}
	return &Peer{
		conn:        conn,
		br:          br,
		client:      true,
		subprotocol: resp.Header.Get("Sec-WebSocket-Protocol"),
		header:      resp.Header,
	}, resp, nil
}

// headerHasToken reports whether the comma-separated values of header name
// contain token, compared case-insensitively.
func headerHasToken(h http.Header, name, token string) bool {
	for _, t := range headerTokens(h, name) {
		if strings.EqualFold(t, token) {
			return true
		}
	}
	return false
}

// headerTokens splits all values of header name at commas and trims them.
func headerTokens(h http.Header, name string) []string {
	var out []string
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				out = append(out, t)
			}
		}
	}
	return out
}

// Server is a TCP listener on 127.0.0.1 that performs the server side of
// the WebSocket handshake on the raw connections it accepts. It is meant
// for accepting one connection per test, but Accept may be called again.
type Server struct {
	ln          *net.TCPListener
	subprotocol string
}

// NewServer listens on 127.0.0.1 on a free port. If subprotocol is not
// empty, the server selects it when the client offers it in
// Sec-WebSocket-Protocol; the special value "*" selects whichever
// subprotocol the client offered first. Otherwise no subprotocol is
// selected.
func NewServer(subprotocol string) (*Server, error) {
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("wstest: %w", err)
	}
	return &Server{ln: ln, subprotocol: subprotocol}, nil
}

// Addr returns the listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// URL returns the ws:// URL clients should dial, such as
// "ws://127.0.0.1:34567/".
func (s *Server) URL() string { return "ws://" + s.ln.Addr().String() + "/" }

// Accept waits for one client connection, performs the server handshake and
// returns a server-side Peer, whose frames are not masked. ctx bounds the
// wait and the handshake, not the life of the Peer. A client whose
// handshake request is invalid gets a 400 response and Accept returns an
// error. Accept must not be called concurrently with itself.
func (s *Server) Accept(ctx context.Context) (*Peer, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("wstest: accept: %w", err)
	}
	dl, _ := ctx.Deadline()
	if err := s.ln.SetDeadline(dl); err != nil {
		return nil, fmt.Errorf("wstest: %w", err)
	}
	stop := watchContext(ctx, func() { _ = s.ln.SetDeadline(aLongTimeAgo) })
	conn, err := s.ln.Accept()
	if !stop() && err != nil {
		return nil, fmt.Errorf("wstest: accept: %w", ctx.Err())
	}
	if err != nil {
		return nil, fmt.Errorf("wstest: accept: %w", err)
	}

	_ = conn.SetDeadline(dl)
	stop = watchContext(ctx, func() { _ = conn.SetDeadline(aLongTimeAgo) })
	p, err := s.serverHandshake(conn)
	if !stop() && err != nil {
		err = fmt.Errorf("wstest: handshake: %w (%w)", ctx.Err(), err)
	}
	if err == nil {
		err = conn.SetDeadline(time.Time{})
	}
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return p, nil
}

func (s *Server) serverHandshake(conn net.Conn) (*Peer, error) {
	br := bufio.NewReader(conn)
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, fmt.Errorf("wstest: reading handshake request: %w", err)
	}
	if err := checkUpgradeRequest(req); err != nil {
		resp := "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain\r\n" +
			fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(err.Error()), err.Error())
		_, _ = io.WriteString(conn, resp)
		return nil, fmt.Errorf("wstest: handshake: %w", err)
	}

	var selected string
	if offered := headerTokens(req.Header, "Sec-WebSocket-Protocol"); len(offered) > 0 {
		switch s.subprotocol {
		case "":
		case "*":
			selected = offered[0]
		default:
			for _, o := range offered {
				if o == s.subprotocol {
					selected = o
					break
				}
			}
		}
	}

	var resp strings.Builder
	resp.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
	resp.WriteString("Sec-WebSocket-Accept: " + AcceptKey(req.Header.Get("Sec-WebSocket-Key")) + "\r\n")
	if selected != "" {
		resp.WriteString("Sec-WebSocket-Protocol: " + selected + "\r\n")
	}
	resp.WriteString("\r\n")
	if _, err := io.WriteString(conn, resp.String()); err != nil {
		return nil, fmt.Errorf("wstest: writing handshake response: %w", err)
	}
	return &Peer{conn: conn, br: br, subprotocol: selected, header: req.Header}, nil
}

func checkUpgradeRequest(req *http.Request) error {
	switch {
	case req.Method != http.MethodGet:
		return fmt.Errorf("method is %s, want GET", req.Method)
	case !headerHasToken(req.Header, "Upgrade", "websocket"):
		return errors.New("missing websocket token in Upgrade header")
	case !headerHasToken(req.Header, "Connection", "upgrade"):
		return errors.New("missing upgrade token in Connection header")
	case req.Header.Get("Sec-WebSocket-Version") != "13":
		return fmt.Errorf("unsupported Sec-WebSocket-Version %q, want 13", req.Header.Get("Sec-WebSocket-Version"))
	}
	key := req.Header.Get("Sec-WebSocket-Key")
	if b, err := base64.StdEncoding.DecodeString(key); err != nil || len(b) != 16 {
		return fmt.Errorf("invalid Sec-WebSocket-Key %q: want 16 base64-encoded bytes", key)
	}
	return nil
}

// Close closes the listener. Peers already accepted are not affected and
// must be closed separately.
func (s *Server) Close() error { return s.ln.Close() }
