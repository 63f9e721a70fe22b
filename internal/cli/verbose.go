package cli

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wsrpc/wsrpc/client"
)

// handshakeTrace is call -v: it records the handshake (the request's header
// fields as the HTTP transport writes them, the response's) and its timing,
// and prints them on w, curl's way: "> " what was sent, "< " what came back,
// "* " what happened.
type handshakeTrace struct {
	w     io.Writer
	start time.Time

	mu        sync.Mutex // the transport calls the hooks from its goroutines
	fields    []string   // "Name: value" as written
	connStart time.Time
	connTook  time.Duration
	connAddr  string
	tlsStart  time.Time
	tlsTook   time.Duration
	tlsState  *tls.ConnectionState
	wrote     time.Time
	reqLine   string
	resp      *http.Response
	respTook  time.Duration // from the request written to the response
}

func newHandshakeTrace(w io.Writer) *handshakeTrace {
	return &handshakeTrace{w: w, start: time.Now()}
}

// hidden are the header fields whose values -v does not print: credentials.
var hidden = []string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie"}

// field formats a header field for -v, hiding credentials but their scheme
// ("Bearer <hidden, 20 bytes>").
func field(name, value string) string {
	if slices.ContainsFunc(hidden, func(h string) bool { return strings.EqualFold(h, name) }) {
		scheme, rest, ok := strings.Cut(value, " ")
		if !ok || name == "Cookie" || name == "Set-Cookie" {
			scheme, rest = "", value
		} else {
			scheme += " "
		}
		return fmt.Sprintf("%s: %s<hidden, %d bytes>", name, scheme, len(rest))
	}
	return name + ": " + value
}

// context returns ctx with the hooks that time the connection.
func (h *handshakeTrace) context(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		ConnectStart: func(_, addr string) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.connStart, h.connAddr = time.Now(), addr
		},
		ConnectDone: func(_, _ string, err error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			if err == nil {
				h.connTook = time.Since(h.connStart)
			}
		},
		TLSHandshakeStart: func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.tlsStart = time.Now()
		},
		TLSHandshakeDone: func(cs tls.ConnectionState, err error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			if err == nil {
				h.tlsTook, h.tlsState = time.Since(h.tlsStart), &cs
			}
		},
		WroteHeaderField: func(key string, values []string) {
			h.mu.Lock()
			defer h.mu.Unlock()
			for _, v := range values {
				h.fields = append(h.fields, field(key, v))
			}
		},
		WroteRequest: func(httptrace.WroteRequestInfo) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.wrote = time.Now()
		},
	})
}

// wrap is the dialFlags.wrap of -v: it notes the request line and the
// response.
func (h *handshakeTrace) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		h.mu.Lock()
		h.reqLine = fmt.Sprintf("%s %s HTTP/1.1", req.Method, req.URL.RequestURI())
		h.mu.Unlock()
		resp, err := next.RoundTrip(req)
		h.mu.Lock()
		defer h.mu.Unlock()
		if err == nil {
			h.resp = resp
			if !h.wrote.IsZero() {
				h.respTook = time.Since(h.wrote)
			}
		}
		return resp, err
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// dialed prints what the handshake sent, received and took, once Dial has
// returned c or err.
func (h *handshakeTrace) dialed(c *client.Client, err error) {
	took := time.Since(h.start)
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	if h.connAddr != "" && h.connTook > 0 {
		fmt.Fprintf(&b, "* connected to %s in %s\n", h.connAddr, fmtMS(h.connTook))
	}
	if h.tlsState != nil {
		fmt.Fprintf(&b, "* TLS handshake in %s: %s, %s\n", fmtMS(h.tlsTook),
			tls.VersionName(h.tlsState.Version), tls.CipherSuiteName(h.tlsState.CipherSuite))
	}
	if h.reqLine != "" {
		fmt.Fprintf(&b, "> %s\n", h.reqLine)
		for _, f := range h.fields {
			fmt.Fprintf(&b, "> %s\n", f)
		}
		b.WriteString(">\n")
	}
	if r := h.resp; r != nil {
		fmt.Fprintf(&b, "< %s %s\n", r.Proto, r.Status)
		names := make([]string, 0, len(r.Header))
		for name := range r.Header {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			for _, v := range r.Header[name] {
				fmt.Fprintf(&b, "< %s\n", field(name, v))
			}
		}
		b.WriteString("<\n")
	}
	if err != nil {
		fmt.Fprintf(&b, "* handshake failed after %s\n", fmtMS(took))
	} else {
		sub := "none"
		if p := c.Peer(); p != nil && p.Conn().Subprotocol() != "" {
			sub = p.Conn().Subprotocol()
		}
		fmt.Fprintf(&b, "* WebSocket handshake done in %s (response after %s), subprotocol %s\n", fmtMS(took), fmtMS(h.respTook), sub)
	}
	io.WriteString(h.w, b.String())
}

// called prints how long the call took.
func (h *handshakeTrace) called(method string, took time.Duration, err error) {
	outcome := "result"
	if err != nil {
		outcome = "error"
	}
	fmt.Fprintf(h.w, "* call %s: %s after %s\n", method, outcome, fmtMS(took))
}
