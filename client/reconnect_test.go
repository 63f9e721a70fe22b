package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

func TestReconnectAfterOutage(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, methods{"echo": echo, "whoami": whoami})
	hook, statuses := recordStatuses()
	c := dial(t, srv.url(), fastBackoff, hook)
	ctx := testContext(t)
	waitStatus(t, statuses, client.Connected)

	srv.stop() // listener closed first, then every connection dropped (1006)
	waitStatus(t, statuses, client.Reconnecting)
	if p := c.Peer(); p != nil {
		t.Errorf("Peer() = %p while reconnecting, want nil", p)
	}

	// Calls made during the outage wait. Go admits synchronously, so these
	// are certainly queued before the server comes back.
	const n = 4
	replies := make(chan *rpc.Response, n)
	for i := range n {
		if err := c.Go(ctx, "echo", []int{i}, replies); err != nil {
			t.Fatalf("Go %d during the outage: %v", i, err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			var got []int
			err := c.Call(ctx, "echo", []int{i}, &got)
			if err == nil && (len(got) != 1 || got[0] != i) {
				err = errors.New("wrong result " + strconv.Itoa(len(got)))
			}
			errs <- err
		})
	}

	srv.start()
	waitStatus(t, statuses, client.Connected)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Call during the outage: %v", err)
		}
	}
	for range n {
		if r := recv(t, replies, "reply"); r.Err != nil {
			t.Errorf("Go during the outage: %v", r.Err)
		}
	}
	var idx int
	if err := c.Call(ctx, "whoami", nil, &idx); err != nil || idx != 1 {
		t.Errorf("after reconnect: connection %d, %v; want connection 1", idx, err)
	}
}

func TestShutdownNoticeMovesToNewConnection(t *testing.T) {
	t.Parallel()
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := newTestServer(t, methods{
		"whoami": whoami,
		"slow": func(ctx context.Context, _ *rpc.Request) ([]byte, error) {
			started <- struct{}{}
			select {
			case <-release:
				return []byte(`"done"`), nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
	})
	c := dial(t, srv.url(), fastBackoff)
	ctx := testContext(t)
	old := srv.nextConn(t)

	slow := make(chan error, 1)
	go func() {
		var s string
		err := c.Call(ctx, "slow", nil, &s)
		if err == nil && s != "done" {
			err = errors.New("slow returned " + s)
		}
		slow <- err
	}()
	recv(t, started, "slow call on the server")

	const retryAfter = 30 * time.Millisecond
	noticeAt := time.Now()
	drained := make(chan error, 1)
	go func() { drained <- old.Drain(ctx, rpc.Notice{RetryAfter: retryAfter, Reason: "restart"}) }()

	srv.nextConn(t) // the client moved
	if waited := time.Since(noticeAt); waited < retryAfter {
		t.Errorf("reconnected %v after the notice, before the RetryAfter of %v", waited, retryAfter)
	}
	var idx int
	if err := c.Call(ctx, "whoami", nil, &idx); err != nil || idx != 1 {
		t.Errorf("new call went to connection %d (%v), want 1", idx, err)
	}
	select {
	case err := <-slow:
		t.Fatalf("in-flight call ended before the server answered it: %v", err)
	default:
	}

	close(release)
	if err := recv(t, slow, "in-flight call"); err != nil {
		t.Errorf("in-flight call on the draining connection: %v", err)
	}
	if err := recv(t, drained, "server drain"); err != nil {
		t.Errorf("server Drain: %v", err)
	}
	// The client closes the old connection itself once it is idle.
	recv(t, old.Done(), "old connection closed")
	// The Conn's Err, after its Done: the Peer's Err may miss the close code
	// (it reads it when Recv closes, a moment before the Conn's Done).
	recv(t, old.Conn().Done(), "old connection closed")
	if err := old.Conn().Err(); transport.CloseStatus(err) != transport.StatusNormalClosure {
		t.Errorf("old connection closed with %v, want 1000", err)
	}
}

func TestUnavailableIsRetried(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		give     bool // the server drains the connection: notice first, then the refusal
		wantConn int  // the connection the call finally ran on
	}{
		{"server draining", true, 1},
		{"refused on a connection that stays up", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var refused atomic.Bool
			var runs atomic.Int32
			started := make(chan *rpc.Peer, 1)
			release := make(chan struct{})
			srv := newTestServer(t, methods{"work": func(hctx context.Context, req *rpc.Request) ([]byte, error) {
				if refused.CompareAndSwap(false, true) {
					started <- req.Peer()
					<-release
					return nil, rpc.NotStarted("shutting down; the request was not started")
				}
				runs.Add(1)
				return whoami(hctx, req)
			}})
			hook, statuses := recordStatuses()
			c := dial(t, srv.url(), fastBackoff, hook)
			ctx := testContext(t)

			result := make(chan error, 1)
			var idx int
			go func() { result <- c.Call(ctx, "work", nil, &idx) }()
			conn := recv(t, started, "call on the server")
			drained := make(chan error, 1)
			if tt.give {
				go func() { drained <- conn.Drain(ctx, rpc.Notice{}) }() // waits for the call it refuses
				waitStatus(t, statuses, client.Reconnecting)             // the client has the notice
			} else {
				drained <- nil
			}
			close(release)

			if err := recv(t, result, "call result"); err != nil {
				t.Fatalf("Call: %v", err)
			}
			if idx != tt.wantConn {
				t.Errorf("call ran on connection %d, want %d", idx, tt.wantConn)
			}
			if n := runs.Load(); n != 1 {
				t.Errorf("handler ran %d times, want 1", n)
			}
			if err := recv(t, drained, "drain"); err != nil {
				t.Errorf("server Drain: %v", err)
			}
		})
	}
}

func TestConnectionLost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		give     []client.CallOption
		giveGo   bool // call with Go rather than Call
		wantErr  error
		wantRuns int32 // executions on the server
	}{
		{"plain call: outcome unknown", nil, false, rpc.ErrConnectionLost, 1},
		{"idempotent call: retried", []client.CallOption{client.Idempotent()}, false, nil, 2},
		{"plain Go: outcome unknown", nil, true, rpc.ErrConnectionLost, 1},
		{"idempotent Go: retried", []client.CallOption{client.Idempotent()}, true, nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var runs atomic.Int32
			started := make(chan struct{}, 1)
			release := make(chan struct{})
			srv := newTestServer(t, methods{"inc": func(ctx context.Context, _ *rpc.Request) ([]byte, error) {
				n := runs.Add(1)
				if n == 1 {
					// The first execution never answers: the server vanishes
					// under it. It ignores ctx, so that no "canceled" reply
					// can slip out before the connection drops.
					started <- struct{}{}
					<-release
					return nil, errors.New("too late")
				}
				return json.Marshal(n)
			}})
			c := dial(t, srv.url(), fastBackoff)
			ctx := testContext(t)
			conn := srv.nextConn(t)

			done := make(chan error, 1)
			var got int32
			if tt.giveGo {
				reply := make(chan *rpc.Response, 1)
				if err := c.Go(ctx, "inc", nil, reply, tt.give...); err != nil {
					t.Fatalf("Go: %v", err)
				}
				go func() {
					r := <-reply
					if r.Err == nil {
						r.Err = json.Unmarshal(r.Result, &got)
					}
					done <- r.Err
				}()
			} else {
				go func() { done <- c.Call(ctx, "inc", nil, &got, tt.give...) }()
			}
			recv(t, started, "call on the server")
			dropped := make(chan struct{})
			go func() {
				conn.CloseNow() // no close frame, no reply: the client sees 1006; waits for the handler
				close(dropped)
			}()

			err := recv(t, done, "call result")
			close(release)
			recv(t, dropped, "server connection closed")
			switch {
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("Call = %v, want %v", err, tt.wantErr)
			case tt.wantErr != nil && rpc.CodeOf(err) != rpc.CodeConnectionLost:
				t.Errorf("CodeOf = %v, want connection lost", rpc.CodeOf(err))
			case tt.wantErr == nil && (err != nil || got != tt.wantRuns):
				t.Errorf("Call = %d, %v; want %d, nil", got, err, tt.wantRuns)
			}
			if n := runs.Load(); n != tt.wantRuns {
				t.Errorf("handler ran %d times, want %d", n, tt.wantRuns)
			}
		})
	}
}

func TestQueueFull(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, methods{"echo": echo})
	hook, statuses := recordStatuses()
	c := dial(t, srv.url(), fastBackoff, hook, client.WithQueueSize(1))
	ctx := testContext(t)
	srv.stop()
	waitStatus(t, statuses, client.Reconnecting)

	waitCtx, cancel := context.WithCancel(ctx)
	queued := make(chan *rpc.Response, 1)
	if err := c.Go(waitCtx, "echo", nil, queued); err != nil {
		t.Fatalf("Go (fills the queue): %v", err)
	}
	tests := []struct {
		name string
		give func() error
	}{
		{"Call", func() error { return c.Call(ctx, "echo", nil, nil) }},
		{"Go", func() error { return c.Go(ctx, "echo", nil, make(chan *rpc.Response, 1)) }},
		{"Notify", func() error { return c.Notify(ctx, "echo", nil) }},
	}
	for _, tt := range tests {
		err := tt.give()
		var e *rpc.Error
		if !errors.As(err, &e) || e.Code != rpc.CodeUnavailable {
			t.Errorf("%s with a full queue = %v, want CodeUnavailable", tt.name, err)
		}
	}
	cancel()
	if r := recv(t, queued, "reply"); !errors.Is(r.Err, context.Canceled) {
		t.Errorf("queued call cancelled: %v, want context.Canceled", r.Err)
	}
}

func TestReconnectOff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give func(ctx context.Context, p *rpc.Peer)
	}{
		{"connection dropped", func(_ context.Context, p *rpc.Peer) { p.CloseNow() }},
		{"shutdown notice", func(ctx context.Context, p *rpc.Peer) { p.Drain(ctx, rpc.Notice{}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestServer(t, methods{"echo": echo})
			hook, statuses := recordStatuses()
			c := dial(t, srv.url(), fastBackoff, hook, client.WithReconnect(false))
			ctx := testContext(t)
			tt.give(ctx, srv.nextConn(t))
			waitStatus(t, statuses, client.Closed)

			err := c.Call(ctx, "echo", nil, nil)
			if !errors.Is(err, rpc.ErrUnavailable) || errors.Is(err, client.ErrClientClosed) {
				t.Errorf("Call after the drop = %v, want CodeUnavailable (not ErrClosed)", err)
			}
			if err := c.Go(ctx, "echo", nil, make(chan *rpc.Response, 1)); !errors.Is(err, rpc.ErrUnavailable) {
				t.Errorf("Go after the drop = %v, want CodeUnavailable", err)
			}
			if p := c.Peer(); p != nil {
				t.Error("Peer() is not nil")
			}
		})
	}
}

// TestClose is not parallel: it checks that the client leaves no goroutine.
func TestClose(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	started := make(chan struct{}, 1)
	srv := newTestServer(t, methods{
		"echo": echo,
		"block": func(ctx context.Context, _ *rpc.Request) ([]byte, error) {
			started <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		},
	})
	ctx := testContext(t)

	t.Run("pending calls", func(t *testing.T) {
		c := dial(t, srv.url(), fastBackoff)
		call := make(chan error, 1)
		go func() { call <- c.Call(ctx, "block", nil, nil) }()
		recv(t, started, "call on the server")
		reply := make(chan *rpc.Response, 1)
		if err := c.Go(ctx, "block", nil, reply); err != nil {
			t.Fatalf("Go: %v", err)
		}
		recv(t, started, "Go call on the server")

		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		for name, err := range map[string]error{"Call": recv(t, call, "call result"), "Go": recv(t, reply, "reply").Err} {
			if !errors.Is(err, client.ErrClientClosed) || !errors.Is(err, rpc.ErrConnectionLost) {
				t.Errorf("pending %s = %v, want ErrClosed and connection lost (it was sent)", name, err)
			}
		}
		checkClosed(t, ctx, c)
	})

	t.Run("queued calls", func(t *testing.T) {
		hook, statuses := recordStatuses()
		c := dial(t, srv.url(), fastBackoff, hook)
		srv.stop()
		waitStatus(t, statuses, client.Reconnecting)
		reply := make(chan *rpc.Response, 1)
		if err := c.Go(ctx, "echo", nil, reply); err != nil { // queued at once
			t.Fatalf("Go: %v", err)
		}
		call := make(chan error, 1)
		go func() { call <- c.Call(ctx, "echo", nil, nil) }()

		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		for name, err := range map[string]error{"Call": recv(t, call, "call result"), "Go": recv(t, reply, "reply").Err} {
			if !errors.Is(err, client.ErrClientClosed) || rpc.CodeOf(err) != rpc.CodeUnavailable {
				t.Errorf("queued %s = %v, want ErrClosed with CodeUnavailable (never sent)", name, err)
			}
		}
		checkClosed(t, ctx, c)
		waitStatus(t, statuses, client.Closed)
	})

	srv.stop()
	goleak.VerifyNone(t, ignore)
}

// checkClosed checks a closed client: every call fails with ErrClosed, and
// Close is idempotent.
func checkClosed(t *testing.T, ctx context.Context, c *client.Client) {
	t.Helper()
	if s := c.Status(); s != client.Closed {
		t.Errorf("Status = %v, want closed", s)
	}
	if c.Peer() != nil {
		t.Error("Peer() is not nil after Close")
	}
	errs := map[string]error{
		"Call":   c.Call(ctx, "echo", nil, nil),
		"Go":     c.Go(ctx, "echo", nil, make(chan *rpc.Response, 1)),
		"Notify": c.Notify(ctx, "echo", nil),
	}
	for name, err := range errs {
		if !errors.Is(err, client.ErrClientClosed) || !errors.Is(err, rpc.ErrUnavailable) {
			t.Errorf("%s after Close = %v, want ErrClosed and CodeUnavailable", name, err)
		}
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestStatusHook(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, methods{"echo": echo})
	hook, statuses := recordStatuses()
	c := dial(t, srv.url(), fastBackoff, hook)
	if s := c.Status(); s != client.Connected {
		t.Errorf("Status after Dial = %v, want connected", s)
	}
	srv.nextConn(t).CloseNow()
	// Idempotent: the call may go out on the dropped connection before the
	// client notices; it then runs on the next one.
	if err := c.Call(testContext(t), "echo", nil, nil, client.Idempotent()); err != nil {
		t.Fatalf("Call after the drop: %v", err)
	}
	c.Close()

	// Close waited for the manager, so every change has been reported.
	var got []client.Status
	for len(statuses) > 0 {
		got = append(got, <-statuses)
	}
	want := []client.Status{client.Connected, client.Reconnecting, client.Connected, client.Closed}
	if len(got) != len(want) {
		t.Fatalf("statuses %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("statuses %v, want %v", got, want)
		}
	}
}

func TestLogger(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	srv := newTestServer(t, methods{"echo": echo})
	hook, statuses := recordStatuses()
	c := dial(t, srv.url(), fastBackoff, hook, rpc.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	srv.nextConn(t).CloseNow()
	waitStatus(t, statuses, client.Reconnecting)
	waitStatus(t, statuses, client.Connected)
	c.Close()
	for _, want := range []string{"connection lost", "connected"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs do not mention %q:\n%s", want, logs.String())
		}
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestReconnectHonoursRetryAfter: when a reconnect attempt is refused with
// 503 and Retry-After (a server draining, or limiting its handshake rate),
// the next attempt waits that long rather than the short backoff; then the
// client connects and calls go through.
func TestReconnectHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	var handshakes atomic.Int32
	refused := make(chan time.Time, 1)
	gate := func(w http.ResponseWriter, r *http.Request) bool {
		if handshakes.Add(1) != 2 { // the first connection, and the reconnect after the refusal
			return true
		}
		refused <- time.Now()
		refuseWith(http.StatusServiceUnavailable, "Retry-After", "1")(w, r)
		return false
	}
	srv := newGatedTestServer(t, methods{"whoami": whoami}, gate)
	c := dial(t, srv.url(), fastBackoff)
	ctx := testContext(t)
	srv.nextConn(t).CloseNow() // the connection drops; the client redials
	recv(t, refused, "the refused reconnect")
	// With the 5-50 ms backoff, a client that ignored Retry-After would
	// have tried several times by now; noise can only delay attempts.
	time.Sleep(300 * time.Millisecond) // observing that nothing happens, not waiting for an event
	if n := handshakes.Load(); n != 2 {
		t.Fatalf("%d handshakes 300 ms after a refusal with Retry-After: 1, want 2", n)
	}
	srv.nextConn(t)
	var idx int
	if err := c.Call(ctx, "whoami", nil, &idx); err != nil || idx != 1 {
		t.Fatalf("after the wait: connection %d, %v; want connection 1", idx, err)
	}
	if n := handshakes.Load(); n != 3 {
		t.Fatalf("%d handshakes, want 3", n)
	}
}

// TestNoticeThenCloseHonoursHint: a server that sends its notice and closes
// at once (nothing in flight to drain) still gets its retry hint honoured,
// however soon after the notice the close arrives. Many clients at once,
// so that some see both before their manager looks.
func TestNoticeThenCloseHonoursHint(t *testing.T) {
	t.Parallel()
	const clients, hint = 20, 300 * time.Millisecond
	srv := newTestServer(t, methods{"whoami": whoami})
	for range clients {
		dial(t, srv.url(), fastBackoff)
	}
	olds := make([]*rpc.Peer, clients)
	for i := range olds {
		olds[i] = srv.nextConn(t)
	}
	ctx := testContext(t)
	noticeAt := time.Now()
	var wg sync.WaitGroup
	for _, p := range olds {
		wg.Go(func() {
			_ = p.Shutdown(ctx, rpc.Notice{RetryAfter: hint, Reason: "restart", Code: transport.StatusServiceRestart})
		})
	}
	for range clients {
		srv.nextConn(t)
		if waited := time.Since(noticeAt); waited < hint {
			t.Errorf("a client reconnected %v after the notice, before its hint of %v", waited, hint)
		}
	}
	wg.Wait()
}
