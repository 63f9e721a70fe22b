package rpc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/pipe"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

var codecs = []struct {
	name        string
	subprotocol string
}{
	{"binary", rpc.SubprotocolBinary},
	{"jsonrpc", rpc.SubprotocolJSON},
	{"jsonrpc-no-subprotocol", ""},
}

// peers connects a client peer and a server peer over loopback.
func peers(t *testing.T, subprotocol string, server, client []rpc.Option) (c, s *rpc.Peer) {
	t.Helper()
	cc, sc := pipe.New(t, pipe.Options{Subprotocol: subprotocol})
	s, err := rpc.New(sc, server...)
	if err != nil {
		t.Fatal(err)
	}
	c, err = rpc.New(cc, client...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.CloseNow()
		s.CloseNow()
	})
	return c, s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// services is a small handler used by most tests.
func services(t *testing.T) rpc.Handler {
	return rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		switch req.Method {
		case "echo":
			return req.Params, nil
		case "add":
			var xs []float64
			if err := json.Unmarshal(req.Params, &xs); err != nil {
				return nil, rpc.Errorf(rpc.CodeInvalidParams, "add: %v", err)
			}
			sum := 0.0
			for _, x := range xs {
				sum += x
			}
			return json.Marshal(sum)
		case "fail":
			return nil, &rpc.Error{Code: rpc.CodePermissionDenied, Message: "not for you", Data: []byte(`{"why":"test"}`)}
		case "plain-error":
			return nil, errors.New("something broke")
		case "panic":
			panic("handler exploded")
		case "nothing":
			return nil, nil
		case "wait": // until cancelled
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return nil, rpc.Errorf(rpc.CodeMethodNotFound, "no method %q", req.Method)
	})
}

func TestCallRoundTrip(t *testing.T) {
	for _, cd := range codecs {
		t.Run(cd.name, func(t *testing.T) {
			c, _ := peers(t, cd.subprotocol, []rpc.Option{rpc.WithHandler(services(t))}, nil)
			var sum float64
			if err := c.Call(ctxT(t), "add", []float64{1, 2, 3.5}, &sum); err != nil {
				t.Fatal(err)
			}
			if sum != 6.5 {
				t.Fatalf("add = %v, want 6.5", sum)
			}
			var echoed map[string]any
			if err := c.Call(ctxT(t), "echo", map[string]any{"a": "b"}, &echoed); err != nil {
				t.Fatal(err)
			}
			if echoed["a"] != "b" {
				t.Fatalf("echo = %v", echoed)
			}
			var raw rpc.Raw
			if err := c.Call(ctxT(t), "nothing", nil, &raw); err != nil {
				t.Fatal(err)
			}
			if cd.subprotocol != rpc.SubprotocolBinary && string(raw) != "null" {
				t.Fatalf("nothing = %q, want null", raw)
			}
		})
	}
}

func TestErrorsRoundTrip(t *testing.T) {
	tests := []struct {
		give     string
		wantCode rpc.Code
		wantMsg  string
	}{
		{"fail", rpc.CodePermissionDenied, "not for you"},
		{"plain-error", rpc.CodeInternalError, "something broke"},
		{"panic", rpc.CodeInternalError, "internal error: handler panicked"},
		{"missing", rpc.CodeMethodNotFound, `no method "missing"`},
	}
	for _, cd := range codecs {
		t.Run(cd.name, func(t *testing.T) {
			c, _ := peers(t, cd.subprotocol, []rpc.Option{rpc.WithHandler(services(t))}, nil)
			for _, tt := range tests {
				err := c.Call(ctxT(t), tt.give, []int{1}, nil)
				var e *rpc.Error
				if !errors.As(err, &e) || e.Code != tt.wantCode || e.Message != tt.wantMsg {
					t.Errorf("%s: err = %v, want code %d message %q", tt.give, err, tt.wantCode, tt.wantMsg)
				}
				if rpc.CodeOf(err) != tt.wantCode {
					t.Errorf("%s: CodeOf = %v", tt.give, rpc.CodeOf(err))
				}
				if tt.give == "fail" {
					if !errors.Is(err, rpc.ErrPermissionDenied) {
						t.Errorf("errors.Is(err, ErrPermissionDenied) = false")
					}
					if string(e.Data) != `{"why":"test"}` {
						t.Errorf("data = %q", e.Data)
					}
				}
			}
			// The connection survived the panic.
			if err := c.Call(ctxT(t), "echo", []int{1}, nil); err != nil {
				t.Fatalf("call after panic: %v", err)
			}
		})
	}
}

func TestCodeOf(t *testing.T) {
	tests := []struct {
		give error
		want rpc.Code
	}{
		{nil, 0},
		{context.Canceled, rpc.CodeCanceled},
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), rpc.CodeDeadlineExceeded},
		{fmt.Errorf("wrapped: %w", rpc.ErrBusy), rpc.CodeBusy},
		{errors.New("other"), rpc.CodeInternalError},
	}
	for _, tt := range tests {
		if got := rpc.CodeOf(tt.give); got != tt.want {
			t.Errorf("CodeOf(%v) = %v, want %v", tt.give, got, tt.want)
		}
	}
	if !errors.Is(fmt.Errorf("x: %w", rpc.Errorf(rpc.CodeBusy, "full")), rpc.ErrBusy) {
		t.Error("errors.Is does not match by code through wrapping")
	}
}

func TestOutOfOrderReplies(t *testing.T) {
	for _, cd := range codecs[:2] {
		t.Run(cd.name, func(t *testing.T) {
			const n = 20
			gates := make([]chan struct{}, n)
			for i := range gates {
				gates[i] = make(chan struct{})
			}
			started := make(chan int, n)
			h := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
				var i int
				if json.Unmarshal(req.Params, &i) != nil {
					var arr []int
					json.Unmarshal(req.Params, &arr)
					i = arr[0]
				}
				started <- i
				select {
				case <-gates[i]:
				case <-ctx.Done():
				}
				return req.Params, nil
			})
			c, _ := peers(t, cd.subprotocol, []rpc.Option{rpc.WithHandler(h)}, nil)
			reply := make(chan *rpc.Response, n)
			ids := map[uint64]int{}
			for i := range n {
				req := &rpc.Request{Method: "gate", Params: []byte(fmt.Sprint(i)), Reply: reply}
				if cd.subprotocol != rpc.SubprotocolBinary {
					req.Params = []byte(fmt.Sprint("[", i, "]"))
				}
				if err := c.Send(ctxT(t), req); err != nil {
					t.Fatal(err)
				}
				ids[req.ID] = i
			}
			for range n {
				<-started
			}
			for i := n - 1; i >= 0; i-- { // release in reverse order
				close(gates[i])
				r := <-reply
				if r.Err != nil {
					t.Fatal(r.Err)
				}
				var got int
				if cd.subprotocol == rpc.SubprotocolBinary {
					json.Unmarshal(r.Result, &got)
				} else {
					var arr []int
					json.Unmarshal(r.Result, &arr)
					got = arr[0]
				}
				if got != i || ids[r.ID] != i {
					t.Fatalf("reply for id %d carries %d, want %d", r.ID, got, i)
				}
			}
		})
	}
}

func TestManyConcurrentCalls(t *testing.T) {
	const n = 10000
	for _, cd := range codecs[:2] {
		t.Run(cd.name, func(t *testing.T) {
			c, _ := peers(t, cd.subprotocol, []rpc.Option{rpc.WithHandler(services(t)), rpc.WithMaxInFlight(n)}, nil)
			var wg sync.WaitGroup
			var bad atomic.Int32
			for i := range n {
				wg.Go(func() {
					var got []int
					if err := c.Call(ctxT(t), "echo", []int{i}, &got); err != nil || len(got) != 1 || got[0] != i {
						if bad.Add(1) == 1 {
							t.Errorf("call %d: got %v, %v", i, got, err)
						}
					}
				})
			}
			wg.Wait()
			if bad.Load() != 0 {
				t.Fatalf("%d of %d calls failed", bad.Load(), n)
			}
		})
	}
}

func TestServerCallsClient(t *testing.T) {
	for _, cd := range codecs[:2] {
		t.Run(cd.name, func(t *testing.T) {
			clientHandler := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
				if req.Method != "client.hello" {
					return nil, rpc.ErrMethodNotFound
				}
				return json.Marshal("hello from the client")
			})
			// The server's handler calls back into the client while serving a call.
			serverHandler := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
				var answer string
				if err := req.Peer().Call(ctx, "client.hello", nil, &answer); err != nil {
					return nil, err
				}
				return json.Marshal("client said: " + answer)
			})
			c, s := peers(t, cd.subprotocol, []rpc.Option{rpc.WithHandler(serverHandler)}, []rpc.Option{rpc.WithHandler(clientHandler)})
			var got string
			if err := c.Call(ctxT(t), "relay", nil, &got); err != nil {
				t.Fatal(err)
			}
			if got != "client said: hello from the client" {
				t.Fatalf("got %q", got)
			}
			// And directly, server to client.
			if err := s.Call(ctxT(t), "client.hello", nil, &got); err != nil || got != "hello from the client" {
				t.Fatalf("server→client call: %q, %v", got, err)
			}
		})
	}
}

func TestNotifications(t *testing.T) {
	for _, cd := range codecs[:2] {
		t.Run(cd.name, func(t *testing.T) {
			got := make(chan string, 10)
			h := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
				if req.Method == "sync" {
					if req.IsNotification() || req.WireID() == "" {
						t.Errorf("call seen as a notification")
					}
					return nil, errors.New("sync error")
				}
				if !req.IsNotification() || req.WireID() != "" {
					t.Errorf("notification seen as a request: %q", req.WireID())
				}
				got <- req.Method + string(req.Params)
				return []byte("ignored"), errors.New("ignored too")
			})
			c, _ := peers(t, cd.subprotocol, []rpc.Option{rpc.WithHandler(h)}, nil)
			if err := c.Notify(ctxT(t), "note", []string{"x"}); err != nil {
				t.Fatal(err)
			}
			if err := c.Send(ctxT(t), &rpc.Request{Method: "note2", Params: []byte(`{}`)}); err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{<-got: true, <-got: true}
			if !seen[`note["x"]`] || !seen[`note2{}`] {
				t.Fatalf("got %v", seen)
			}
			// No reply came back for either: nothing is pending or unknown.
			if err := c.Call(ctxT(t), "sync", nil, nil); err == nil {
				t.Fatal("expected an error from the notification handler used as a call")
			}
			if st := c.Stats(); st.UnknownReplies != 0 {
				t.Fatalf("unknown replies %d: a notification was answered", st.UnknownReplies)
			}
		})
	}
}

func TestCancellationTravels(t *testing.T) {
	for _, cd := range codecs[:2] {
		t.Run(cd.name, func(t *testing.T) {
			started := make(chan struct{})
			handlerErr := make(chan error, 1)
			h := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
				close(started)
				<-ctx.Done()
				handlerErr <- ctx.Err()
				return nil, ctx.Err()
			})
			c, _ := peers(t, cd.subprotocol, []rpc.Option{rpc.WithHandler(h)}, nil)
			ctx, cancel := context.WithCancel(context.Background())
			callErr := make(chan error, 1)
			go func() { callErr <- c.Call(ctx, "slow", nil, nil) }()
			<-started
			cancel()
			select {
			case err := <-callErr:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("Call = %v, want context.Canceled", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Call did not return when its ctx was cancelled")
			}
			select {
			case err := <-handlerErr:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("handler ctx err = %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the handler's ctx was not cancelled")
			}
			// The late reply was not sent (or was dropped): the connection is fine.
			if err := c.Call(ctxT(t), "x", nil, nil); err == nil {
				t.Fatal("expected the handler's error")
			}
		})
	}
}

func TestAsyncCallCancelled(t *testing.T) {
	c, _ := peers(t, rpc.SubprotocolBinary, []rpc.Option{rpc.WithHandler(services(t))}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	reply := make(chan *rpc.Response, 1)
	if err := c.Send(ctx, &rpc.Request{Method: "wait", Reply: reply}); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case r := <-reply:
		if !errors.Is(r.Err, context.Canceled) {
			t.Fatalf("reply err = %v, want Canceled", r.Err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no reply after cancel")
	}
	if err := c.Send(ctxT(t), &rpc.Request{Method: "x", Reply: make(chan *rpc.Response)}); err == nil {
		t.Fatal("Send accepted an unbuffered Reply channel")
	}
}

func TestDeadlinePropagates(t *testing.T) {
	for _, cd := range codecs[:2] {
		t.Run(cd.name, func(t *testing.T) {
			got := make(chan time.Duration, 1)
			h := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
				dl, ok := ctx.Deadline()
				if !ok {
					got <- -1
				} else {
					got <- time.Until(dl)
				}
				<-ctx.Done()
				return nil, ctx.Err()
			})
			c, _ := peers(t, cd.subprotocol, []rpc.Option{rpc.WithHandler(h)}, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := c.Call(ctx, "deadline", nil, nil)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Call = %v, want DeadlineExceeded", err)
			}
			if el := time.Since(start); el > 3*time.Second {
				t.Fatalf("Call took %s with a 300ms deadline", el)
			}
			left := <-got
			if left <= 0 || left > 300*time.Millisecond {
				t.Fatalf("handler saw %s left, want (0, 300ms]", left)
			}
		})
	}
}

func TestNoDeadlineMeansNone(t *testing.T) {
	got := make(chan bool, 1)
	h := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		_, ok := ctx.Deadline()
		got <- ok
		return nil, nil
	})
	c, _ := peers(t, rpc.SubprotocolBinary, []rpc.Option{rpc.WithHandler(h)}, nil)
	if err := c.Call(context.Background(), "x", nil, nil); err != nil {
		t.Fatal(err)
	}
	if <-got {
		t.Fatal("handler has a deadline the caller never set")
	}
}

// TestBusyRejectsAtOnce: with the backlog off, a call beyond MaxInFlight is
// refused at once.
func TestBusyRejectsAtOnce(t *testing.T) {
	for _, cd := range codecs[:2] {
		t.Run(cd.name, func(t *testing.T) {
			release := make(chan struct{})
			started := make(chan struct{}, 2)
			h := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
				started <- struct{}{}
				<-release
				return nil, nil
			})
			c, _ := peers(t, cd.subprotocol, []rpc.Option{rpc.WithHandler(h), rpc.WithMaxInFlight(2), rpc.WithBacklog(-1, 0)}, nil)
			reply := make(chan *rpc.Response, 3)
			for range 2 {
				if err := c.Send(ctxT(t), &rpc.Request{Method: "hold", Reply: reply}); err != nil {
					t.Fatal(err)
				}
			}
			<-started
			<-started
			err := c.Call(ctxT(t), "third", nil, nil)
			if rpc.CodeOf(err) != rpc.CodeBusy {
				t.Fatalf("third call = %v, want busy", err)
			}
			close(release)
			for range 2 {
				if r := <-reply; r.Err != nil {
					t.Fatal(r.Err)
				}
			}
			if err := c.Call(ctxT(t), "after", nil, nil); err != nil {
				t.Fatalf("call after the burst: %v", err)
			}
		})
	}
}

func TestConnectionEndFailsPendingAndCancelsHandlers(t *testing.T) {
	for _, cd := range codecs[:2] {
		t.Run(cd.name, func(t *testing.T) {
			started := make(chan struct{})
			handlerDone := make(chan error, 1)
			h := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
				close(started)
				<-ctx.Done()
				handlerDone <- ctx.Err()
				return nil, nil
			})
			c, s := peers(t, cd.subprotocol, []rpc.Option{rpc.WithHandler(h)}, nil)
			callErr := make(chan error, 1)
			go func() { callErr <- c.Call(context.Background(), "hang", nil, nil) }()
			<-started
			s.CloseNow()
			select {
			case err := <-callErr:
				if rpc.CodeOf(err) != rpc.CodeConnectionLost || !errors.Is(err, rpc.ErrConnectionLost) {
					t.Fatalf("pending call = %v, want connection lost", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("pending call did not fail when the connection ended")
			}
			if err := <-handlerDone; err == nil {
				t.Fatal("handler ctx not cancelled")
			}
			<-c.Done()
			err := c.Call(ctxT(t), "after", nil, nil)
			if rpc.CodeOf(err) != rpc.CodeUnavailable {
				t.Fatalf("call after close = %v, want unavailable (not sent)", err)
			}
		})
	}
}

func TestDrain(t *testing.T) {
	for _, cd := range codecs[:2] {
		t.Run(cd.name, func(t *testing.T) {
			release := make(chan struct{})
			started := make(chan struct{}, 1)
			h := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
				if req.Method == "slow" {
					started <- struct{}{}
					<-release
				}
				return json.Marshal(req.Method)
			})
			c, s := peers(t, cd.subprotocol, []rpc.Option{rpc.WithHandler(h)}, nil)
			reply := make(chan *rpc.Response, 1)
			if err := c.Send(ctxT(t), &rpc.Request{Method: "slow", Reply: reply}); err != nil {
				t.Fatal(err)
			}
			<-started
			drained := make(chan error, 1)
			go func() {
				drained <- s.Drain(ctxT(t), rpc.Notice{RetryAfter: 1500 * time.Millisecond, Reason: "restart"})
			}()
			select {
			case <-c.GoingAway():
			case <-time.After(5 * time.Second):
				t.Fatal("client never saw the shutdown notice")
			}
			if got := c.RetryAfter(); got != 1500*time.Millisecond {
				t.Errorf("RetryAfter = %v", got)
			}
			if err := c.Call(ctxT(t), "new", nil, nil); rpc.CodeOf(err) != rpc.CodeUnavailable {
				t.Fatalf("new call after notice = %v, want unavailable", err)
			}
			select {
			case err := <-drained:
				t.Fatalf("Drain returned %v with a call in flight", err)
			default:
			}
			close(release)
			if r := <-reply; r.Err != nil || string(r.Result) != `"slow"` {
				t.Fatalf("in-flight call: %q %v", r.Result, r.Err)
			}
			if err := <-drained; err != nil {
				t.Fatalf("Drain = %v", err)
			}
			s.CloseWith(transport.StatusServiceRestart, "restart")
			<-c.Done()
			if transport.CloseStatus(c.Err()) != transport.StatusServiceRestart {
				t.Fatalf("client saw %v", c.Err())
			}
		})
	}
}

func TestDrainDeadline(t *testing.T) {
	h := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	c, s := peers(t, rpc.SubprotocolBinary, []rpc.Option{rpc.WithHandler(h)}, nil)
	reply := make(chan *rpc.Response, 1)
	if err := c.Send(ctxT(t), &rpc.Request{Method: "stuck", Reply: reply}); err != nil {
		t.Fatal(err)
	}
	waitCtx := ctxT(t) // one deadline for the whole wait
	for s.Stats().InFlight == 0 {
		select {
		case <-time.After(time.Millisecond):
		case <-waitCtx.Done():
			t.Fatal("call never arrived")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := s.Drain(ctx, rpc.Notice{})
	var de *rpc.DrainError
	if !errors.As(err, &de) || de.Incoming != 1 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain = %v, want a DrainError counting 1 incoming", err)
	}
	r := <-reply // the cancelled handler's reply still went out
	if rpc.CodeOf(r.Err) != rpc.CodeCanceled {
		t.Fatalf("cut-short call got %v, want canceled", r.Err)
	}
}

func TestHandlerClosesItsOwnConnection(t *testing.T) {
	closed := make(chan error, 1)
	h := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		closed <- req.Peer().CloseWith(4003, "kicked") // must not wait for this very handler
		return nil, nil
	})
	c, s := peers(t, rpc.SubprotocolBinary, []rpc.Option{rpc.WithHandler(h)}, nil)
	err := c.Call(ctxT(t), "logout", nil, nil)
	if rpc.CodeOf(err) != rpc.CodeConnectionLost {
		t.Fatalf("call = %v, want connection lost", err)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("CloseWith from the handler = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("CloseWith from a handler deadlocked")
	}
	s.Wait()
	<-c.Done()
	if code := transport.CloseStatus(c.Err()); code != 4003 {
		t.Fatalf("client saw %v", c.Err())
	}
}

func TestHandlerErrorCodesReservedForTheRuntime(t *testing.T) {
	tests := []struct {
		give rpc.Code
		want rpc.Code
	}{
		{rpc.CodeUnavailable, rpc.CodeInternalError},
		{rpc.CodeConnectionLost, rpc.CodeInternalError},
		{rpc.CodeBusy, rpc.CodeBusy},
	}
	notStarted := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		return nil, rpc.NotStarted("warming up")
	})
	c, _ := peers(t, rpc.SubprotocolBinary, []rpc.Option{rpc.WithHandler(notStarted)}, nil)
	if got := rpc.CodeOf(c.Call(ctxT(t), "x", nil, nil)); got != rpc.CodeUnavailable {
		t.Errorf("NotStarted arrived as %v, want unavailable", got)
	}
	for _, tt := range tests {
		// A handler passing on the error of a call it made itself.
		h2 := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
			return nil, fmt.Errorf("calling B: %w", rpc.NewError(tt.give, "from downstream"))
		})
		c2, _ := peers(t, rpc.SubprotocolBinary, []rpc.Option{rpc.WithHandler(h2)}, nil)
		if got := rpc.CodeOf(c2.Call(ctxT(t), "x", nil, nil)); got != tt.want {
			t.Errorf("handler returned %v: caller got %v, want %v", tt.give, got, tt.want)
		}
	}
}

func TestNonUTF8TextIsRepairedNotFatal(t *testing.T) {
	for _, cd := range codecs[:2] {
		t.Run(cd.name, func(t *testing.T) {
			h := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
				if req.Method == "bad-result" {
					return []byte("\"\xff\""), nil
				}
				return nil, errors.New("open /data/caf\xe9.txt: no such file")
			})
			c, _ := peers(t, cd.subprotocol, []rpc.Option{rpc.WithHandler(h)}, nil)
			err := c.Call(ctxT(t), "bad-message", nil, nil)
			var e *rpc.Error
			if !errors.As(err, &e) || !strings.Contains(e.Message, "caf\uFFFD.txt") {
				t.Fatalf("call = %v, want the error with its bad byte replaced", err)
			}
			if cd.subprotocol == rpc.SubprotocolJSON {
				if err := c.Call(ctxT(t), "bad-result", nil, nil); rpc.CodeOf(err) != rpc.CodeInternalError {
					t.Fatalf("non-UTF-8 JSON result = %v, want internal error", err)
				}
			}
			if err := c.Call(ctxT(t), "bad-message", nil, nil); rpc.CodeOf(err) != rpc.CodeInternalError {
				t.Fatalf("the connection did not survive: %v", err)
			}
		})
	}
}

// TestCallsRacingAClose: calls made while the connection closes each get
// their own result or an error, never another call's reply.
func TestCallsRacingAClose(t *testing.T) {
	for range 30 {
		c, s := peers(t, rpc.SubprotocolBinary, []rpc.Option{rpc.WithHandler(services(t))}, nil)
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				for j := range 20 {
					want := i*1000 + j
					var got []int
					err := c.Call(ctxT(t), "echo", []int{want}, &got)
					if err == nil && (len(got) != 1 || got[0] != want) {
						t.Errorf("call %d got %v", want, got)
					}
					if err != nil {
						return
					}
				}
			})
		}
		s.CloseNow()
		wg.Wait()
	}
}
