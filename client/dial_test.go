package client_test

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// Nothing listens on port 1, and no test can: it is privileged and outside
// the ephemeral range.
const refusedURL = "ws://127.0.0.1:1"

func TestWaitForServerStartsLater(t *testing.T) {
	t.Parallel()
	srv := newStoppedTestServer(t, methods{"echo": echo})
	logger, attempts := attemptLogger()
	dialed := dialAsync(t, testContext(t), srv.url(), client.WithWaitForServer(), fastBackoff, rpc.WithLogger(logger))

	// Two refused attempts: the immediate one, then one after a backoff.
	for range 2 {
		if err := recv(t, attempts, "a failed attempt"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("attempt failed with %v, want connection refused", err)
		}
	}
	srv.start()
	r := recv(t, dialed, "Dial's result")
	if r.err != nil {
		t.Fatalf("Dial: %v", r.err)
	}
	defer r.c.Close()
	var got point
	if err := r.c.Call(testContext(t), "echo", point{1, 2}, &got); err != nil || got != (point{1, 2}) {
		t.Errorf("Call = %+v, %v", got, err)
	}
}

func TestWaitForServerGivesUp(t *testing.T) {
	t.Parallel()
	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		c, err := client.Dial(ctx, refusedURL, client.WithWaitForServer(), fastBackoff)
		if err == nil {
			c.Close()
			t.Fatal("Dial: no error")
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Dial error %v does not wrap context.DeadlineExceeded", err)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("Dial error %q does not carry the last attempt's connection refused", err)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(testContext(t))
		logger, attempts := attemptLogger()
		dialed := dialAsync(t, ctx, refusedURL, client.WithWaitForServer(), fastBackoff, rpc.WithLogger(logger))
		recv(t, attempts, "a failed attempt")
		cancel()
		r := recv(t, dialed, "Dial's result")
		if r.err == nil {
			r.c.Close()
			t.Fatal("Dial: no error")
		}
		if !errors.Is(r.err, context.Canceled) || !errors.Is(r.err, syscall.ECONNREFUSED) {
			t.Errorf("Dial error %v, want context.Canceled and connection refused", r.err)
		}
	})
	t.Run("Retry-After honoured", func(t *testing.T) {
		t.Parallel()
		// The server asks for 1 s; ctx ends well before. Without the hint
		// the fast backoff would make several attempts in that time.
		gate, handshakes := refuseFirst(1<<30, refuseWith(http.StatusServiceUnavailable, "Retry-After", "1"))
		srv := newGatedTestServer(t, methods{}, gate)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		c, err := client.Dial(ctx, srv.url(), client.WithWaitForServer(), fastBackoff)
		if err == nil {
			c.Close()
			t.Fatal("Dial: no error")
		}
		var he *transport.HandshakeError
		if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &he) || he.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("Dial error %v, want context.DeadlineExceeded and the 503", err)
		}
		if n := handshakes.Load(); n != 1 {
			t.Errorf("server saw %d handshakes, want 1 (the next one after Retry-After)", n)
		}
	})
}

// TestWaitForServerRetries covers the refusals of a server still starting
// up: they are retried with the option, and fail Dial at once without it.
func TestWaitForServerRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		give       http.HandlerFunc // the first two handshakes
		wantStatus int              // the HandshakeError's status without the option, 0 if none
	}{
		{"503", refuseWith(http.StatusServiceUnavailable), http.StatusServiceUnavailable},
		{"503 with Retry-After 0", refuseWith(http.StatusServiceUnavailable, "Retry-After", "0"), http.StatusServiceUnavailable},
		{"502", refuseWith(http.StatusBadGateway), http.StatusBadGateway},
		{"504", refuseWith(http.StatusGatewayTimeout), http.StatusGatewayTimeout},
		{"429", refuseWith(http.StatusTooManyRequests), http.StatusTooManyRequests},
		{"hang up", hangUp, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			t.Run("with WithWaitForServer", func(t *testing.T) {
				gate, handshakes := refuseFirst(2, tt.give)
				srv := newGatedTestServer(t, methods{"echo": echo}, gate)
				c := dial(t, srv.url(), client.WithWaitForServer(), fastBackoff)
				var got point
				if err := c.Call(testContext(t), "echo", point{3, 4}, &got); err != nil || got != (point{3, 4}) {
					t.Errorf("Call = %+v, %v", got, err)
				}
				if n := handshakes.Load(); n != 3 {
					t.Errorf("server saw %d handshakes, want 3", n)
				}
			})
			t.Run("without", func(t *testing.T) {
				gate, handshakes := refuseFirst(2, tt.give)
				srv := newGatedTestServer(t, methods{"echo": echo}, gate)
				c, err := client.Dial(testContext(t), srv.url(), fastBackoff)
				if err == nil {
					c.Close()
					t.Fatal("Dial: no error")
				}
				checkStatus(t, err, tt.wantStatus)
				if n := handshakes.Load(); n != 1 {
					t.Errorf("server saw %d handshakes, want 1", n)
				}
			})
		})
	}
}

// TestWaitForServerPermanent covers the failures that no wait cures: Dial
// returns them at once, option or not. Had it retried, it would have gone
// on until ctx ended and its error would wrap context.DeadlineExceeded.
func TestWaitForServerPermanent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		give       http.HandlerFunc // every handshake
		wantStatus int              // the HandshakeError's status, 0 if none
	}{
		{"400", refuseWith(http.StatusBadRequest), http.StatusBadRequest},
		{"401", refuseWith(http.StatusUnauthorized), http.StatusUnauthorized},
		{"403", refuseWith(http.StatusForbidden), http.StatusForbidden},
		{"404", refuseWith(http.StatusNotFound), http.StatusNotFound},
		{"500", refuseWith(http.StatusInternalServerError, "Retry-After", "1"), http.StatusInternalServerError},
		{"subprotocol not offered", upgradeTo("not-wsrpc"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			gate, handshakes := refuseFirst(1<<30, tt.give)
			srv := newGatedTestServer(t, methods{}, gate)
			c, err := client.Dial(testContext(t), srv.url(), client.WithWaitForServer(), fastBackoff)
			if err == nil {
				c.Close()
				t.Fatal("Dial: no error")
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Dial error %v: retried until ctx ended", err)
			}
			checkStatus(t, err, tt.wantStatus)
			if n := handshakes.Load(); n != 1 {
				t.Errorf("server saw %d handshakes, want 1", n)
			}
		})
	}

	tlsSrv := newTLSTestServer(t, methods{})
	urls := []struct {
		name string
		give string
	}{
		{"bad scheme", "ftp://127.0.0.1:1"},
		{"malformed", "ws://[::1"},
		{"untrusted certificate", tlsSrv.url()},
	}
	for _, tt := range urls {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := client.Dial(testContext(t), tt.give, client.WithWaitForServer(), fastBackoff)
			if err == nil {
				c.Close()
				t.Fatal("Dial: no error")
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Dial error %v: retried until ctx ended", err)
			}
		})
	}
}

func TestWaitForServerEndpoints(t *testing.T) {
	t.Parallel()
	t.Run("one starting", func(t *testing.T) {
		t.Parallel()
		// The URL given to Dial never answers; the other endpoint is starting.
		gate, handshakes := refuseFirst(2, refuseWith(http.StatusServiceUnavailable))
		srv := newGatedTestServer(t, methods{"echo": echo}, gate)
		c := dial(t, refusedURL, client.WithEndpoints(srv.url()), client.WithWaitForServer(), fastBackoff)
		var got point
		if err := c.Call(testContext(t), "echo", point{5, 6}, &got); err != nil || got != (point{5, 6}) {
			t.Errorf("Call = %+v, %v", got, err)
		}
		if n := handshakes.Load(); n != 3 {
			t.Errorf("endpoint saw %d handshakes, want 3", n)
		}
	})
	t.Run("one refusing for good, one up", func(t *testing.T) {
		t.Parallel()
		// As without the option, the first pass tries every endpoint.
		gate, _ := refuseFirst(1<<30, refuseWith(http.StatusForbidden))
		forbidden := newGatedTestServer(t, methods{}, gate)
		srv := newTestServer(t, methods{"echo": echo})
		c := dial(t, forbidden.url(), client.WithEndpoints(srv.url()), client.WithWaitForServer(), fastBackoff)
		var got point
		if err := c.Call(testContext(t), "echo", point{7, 8}, &got); err != nil || got != (point{7, 8}) {
			t.Errorf("Call = %+v, %v", got, err)
		}
	})
	t.Run("one refusing for good, one down", func(t *testing.T) {
		t.Parallel()
		gate, handshakes := refuseFirst(1<<30, refuseWith(http.StatusForbidden))
		forbidden := newGatedTestServer(t, methods{}, gate)
		c, err := client.Dial(testContext(t), forbidden.url(), client.WithEndpoints(refusedURL), client.WithWaitForServer(), fastBackoff)
		if err == nil {
			c.Close()
			t.Fatal("Dial: no error")
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Dial error %v: retried until ctx ended", err)
		}
		checkStatus(t, err, http.StatusForbidden)
		if n := handshakes.Load(); n != 1 {
			t.Errorf("server saw %d handshakes, want 1", n)
		}
	})
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		give string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"3", 3 * time.Second},
		{" 3 ", 3 * time.Second},
		{"-1", 0},
		{"soon", 0},
		{"3600", client.MaxRetryHint},
		{"99999999999999999999", client.MaxRetryHint},
		{now.Add(5 * time.Second).Format(http.TimeFormat), 5 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{now.Add(time.Hour).Format(http.TimeFormat), client.MaxRetryHint},
	}
	for _, tt := range tests {
		if got := client.RetryAfter(tt.give, now); got != tt.want {
			t.Errorf("RetryAfter(%q) = %v, want %v", tt.give, got, tt.want)
		}
	}
}

// checkStatus checks that err carries a HandshakeError with status want, or
// none if want is 0.
func checkStatus(t *testing.T, err error, want int) {
	t.Helper()
	var he *transport.HandshakeError
	switch {
	case want == 0 && errors.As(err, &he):
		t.Errorf("Dial error %v is a HandshakeError", err)
	case want != 0 && !errors.As(err, &he):
		t.Errorf("Dial error %v is not a HandshakeError", err)
	case want != 0 && he.StatusCode != want:
		t.Errorf("HandshakeError.StatusCode = %d, want %d", he.StatusCode, want)
	}
}

// refuseFirst returns a testServer gate that answers the first n handshakes
// with refuse and lets the others through, and the count of handshakes it
// has seen.
func refuseFirst(n int32, refuse http.HandlerFunc) (func(http.ResponseWriter, *http.Request) bool, *atomic.Int32) {
	var seen atomic.Int32
	return func(w http.ResponseWriter, r *http.Request) bool {
		if seen.Add(1) > n {
			return true
		}
		refuse(w, r)
		return false
	}, &seen
}

// refuseWith answers with status code and the header given as key, value
// pairs.
func refuseWith(code int, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		http.Error(w, http.StatusText(code), code)
	}
}

// hangUp closes the connection without answering.
func hangUp(w http.ResponseWriter, _ *http.Request) {
	if nc, _, err := http.NewResponseController(w).Hijack(); err == nil {
		nc.Close()
	}
}

// upgradeTo answers with a valid 101 that selects subprotocol, then hangs
// up.
func upgradeTo(subprotocol string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		nc, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer nc.Close()
		sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n" +
			"Upgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n" +
			"Sec-WebSocket-Protocol: " + subprotocol + "\r\n\r\n")
		_ = brw.Flush()
	}
}

// attemptLogger returns a logger for [rpc.WithLogger] that sends the
// error of every record that has one (Dial logs each failed attempt while
// it waits for the server) to the channel returned.
func attemptLogger() (*slog.Logger, <-chan error) {
	errs := make(chan error, 64)
	return slog.New(errorHandler(errs)), errs
}

type errorHandler chan error

func (h errorHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h errorHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h errorHandler) WithGroup(string) slog.Handler            { return h }

func (h errorHandler) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Any().(error); ok && a.Key == "err" {
			select {
			case h <- err:
			default: // the test has seen enough
			}
		}
		return true
	})
	return nil
}

type dialResult struct {
	c   *client.Client
	err error
}

// dialAsync runs Dial on a goroutine and sends its result on the channel
// returned; the test closes the client it receives. When the test ends, the
// Dial is cancelled and waited for, and a client nobody received is closed.
func dialAsync(t testing.TB, ctx context.Context, url string, opts ...client.Option) <-chan dialResult {
	ctx, cancel := context.WithCancel(ctx)
	results := make(chan dialResult, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := client.Dial(ctx, url, opts...)
		results <- dialResult{c, err}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		select {
		case r := <-results:
			if r.c != nil {
				r.c.Close()
			}
		default:
		}
	})
	return results
}
