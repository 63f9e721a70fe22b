package rpc_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// holdHandler starts calls and holds each until release is closed; it
// records the methods in the order their handlers started.
type holdHandler struct {
	release chan struct{}
	started chan string
	mu      sync.Mutex
	order   []string
}

func newHoldHandler() *holdHandler {
	return &holdHandler{release: make(chan struct{}), started: make(chan string, 100)}
}

func (h *holdHandler) ServeRPC(ctx context.Context, req *rpc.Request) ([]byte, error) {
	h.mu.Lock()
	h.order = append(h.order, req.Method)
	h.mu.Unlock()
	h.started <- req.Method
	if strings.HasPrefix(req.Method, "hold") {
		<-h.release
	}
	return []byte(`"` + req.Method + `"`), nil
}

func TestBacklogQueuesBeyondMaxInFlight(t *testing.T) {
	for _, cd := range codecs[:2] {
		t.Run(cd.name, func(t *testing.T) {
			h := newHoldHandler()
			c, srv := peers(t, cd.subprotocol, []rpc.Option{rpc.WithHandler(h), rpc.WithMaxInFlight(2), rpc.WithBacklog(3, 0)}, nil)
			reply := make(chan *rpc.Response, 10)
			send := func(ctx context.Context, method string) {
				t.Helper()
				if err := c.Send(ctx, &rpc.Request{Method: method, Reply: reply}); err != nil {
					t.Fatal(err)
				}
			}
			send(ctxT(t), "hold1")
			send(ctxT(t), "hold2")
			<-h.started
			<-h.started
			send(ctxT(t), "wait1")
			ctx, cancel := context.WithCancel(ctxT(t))
			send(ctx, "wait2")
			send(ctxT(t), "wait3")
			for srv.Stats().Backlog != 3 {
				select {
				case <-ctxT(t).Done():
					t.Fatalf("Stats = %+v, want 3 calls in the backlog", srv.Stats())
				default:
				}
			}
			if st := srv.Stats(); st.InFlight != 5 {
				t.Errorf("Stats = %+v, want 5 in flight (2 handled, 3 waiting)", st)
			}
			// A waiting call that its caller cancels never starts. Its
			// caller's reply (context.Canceled) comes once the cancel is
			// queued, so the next call goes after it.
			cancel()
			if r := <-reply; r.Err != context.Canceled {
				t.Fatalf("cancelled call: %+v, want context.Canceled", r)
			}
			// The backlog holds 3: the next call is refused with busy (and
			// its reply says the cancel, sent before it, has been seen).
			if err := c.Call(ctxT(t), "fourth", nil, nil); rpc.CodeOf(err) != rpc.CodeBusy {
				t.Fatalf("call beyond the backlog = %v, want busy", err)
			}
			close(h.release)
			got := map[string]bool{}
			for range 4 {
				r := <-reply
				if r.Err != nil {
					t.Fatalf("reply %d: %v", r.ID, r.Err)
				}
				got[string(r.Result)] = true
			}
			for _, m := range []string{"hold1", "hold2", "wait1", "wait3"} {
				if !got[`"`+m+`"`] {
					t.Errorf("no reply for %s (got %v)", m, got)
				}
			}
			if err := c.Call(ctxT(t), "after", nil, nil); err != nil {
				t.Fatalf("call after the burst: %v", err)
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			// The two held handlers return at once and each takes the next
			// waiting call (wait1, then wait3: the backlog's order), but the
			// two then start on two goroutines, in either order.
			got2 := h.order[2:]
			if len(got2) != 3 || got2[2] != "after" || !(got2[0] == "wait1" && got2[1] == "wait3" || got2[0] == "wait3" && got2[1] == "wait1") {
				t.Errorf("handlers started in order %v after the held ones, want wait1 and wait3 (either first), then after (the cancelled wait2 never)", got2)
			}
		})
	}
}

func TestBacklogBoundedInBytes(t *testing.T) {
	h := newHoldHandler()
	c, _ := peers(t, rpc.SubprotocolBinary, []rpc.Option{rpc.WithHandler(h), rpc.WithMaxInFlight(1), rpc.WithBacklog(100, 1000)}, nil)
	reply := make(chan *rpc.Response, 10)
	if err := c.Send(ctxT(t), &rpc.Request{Method: "hold", Reply: reply}); err != nil {
		t.Fatal(err)
	}
	<-h.started
	big := rpc.Raw(`"` + strings.Repeat("x", 600) + `"`)
	if err := c.Send(ctxT(t), &rpc.Request{Method: "hold-big", Params: big, Reply: reply}); err != nil {
		t.Fatal(err)
	}
	// 600 bytes wait; another 600 would pass the 1000-byte bound.
	if err := c.Call(ctxT(t), "hold-big2", big, nil); rpc.CodeOf(err) != rpc.CodeBusy {
		t.Fatalf("call past the backlog's bytes = %v, want busy", err)
	}
	close(h.release)
	for range 2 {
		if r := <-reply; r.Err != nil {
			t.Fatal(r.Err)
		}
	}
}

func TestDrainServesTheBacklog(t *testing.T) {
	h := newHoldHandler()
	c, srv := peers(t, rpc.SubprotocolBinary, []rpc.Option{rpc.WithHandler(h), rpc.WithMaxInFlight(1)}, nil)
	reply := make(chan *rpc.Response, 10)
	for _, m := range []string{"hold", "waiting1", "waiting2"} {
		if err := c.Send(ctxT(t), &rpc.Request{Method: m, Reply: reply}); err != nil {
			t.Fatal(err)
		}
	}
	<-h.started
	for srv.Stats().Backlog != 2 {
		// the two others are on their way to the backlog
		select {
		case <-ctxT(t).Done():
			t.Fatal("calls never reached the backlog")
		default:
		}
	}
	drained := make(chan error, 1)
	go func() { drained <- srv.Drain(ctxT(t), rpc.Notice{}) }()
	close(h.release)
	if err := <-drained; err != nil {
		t.Fatalf("Drain: %v", err)
	}
	for range 3 {
		if r := <-reply; r.Err != nil {
			t.Fatalf("a call accepted before the drain failed: %v", r.Err)
		}
	}
}

// TestBacklogCountsWholeMessages: a waiting call counts the whole message
// it holds on to, padding included, so the byte bound bounds memory.
func TestBacklogCountsWholeMessages(t *testing.T) {
	h := newHoldHandler()
	c := newRawClient(t, rpc.SubprotocolJSON, rpc.WithHandler(h), rpc.WithMaxInFlight(1), rpc.WithBacklog(100, 100<<10))
	c.send(transport.Text, `{"jsonrpc":"2.0","id":0,"method":"hold","params":[]}`)
	<-h.started
	pad := strings.Repeat(" ", 40<<10) // 40 KiB of JSON whitespace after small params
	for i := 1; i <= 3; i++ {
		c.send(transport.Text, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"hold","params":[]}%s`, i, pad))
	}
	// Two padded calls fit in 100 KiB, the third does not.
	jsonEq(t, c.recv(), `{"jsonrpc":"2.0","id":3,"error":{"code":-32003,"message":"too many calls in flight (limit 1, and 2 waiting); the request was not started"}}`)
	close(h.release)
	for range 3 {
		c.recv()
	}
}

// TestBacklogDroppedWhenTheConnectionEnds: calls still waiting when the
// connection ends never run.
func TestBacklogDroppedWhenTheConnectionEnds(t *testing.T) {
	h := newHoldHandler()
	c, srv := peers(t, rpc.SubprotocolBinary, []rpc.Option{rpc.WithHandler(h), rpc.WithMaxInFlight(1)}, nil)
	reply := make(chan *rpc.Response, 20)
	for range 10 {
		if err := c.Send(ctxT(t), &rpc.Request{Method: "hold", Reply: reply}); err != nil {
			t.Fatal(err)
		}
	}
	<-h.started
	for srv.Stats().Backlog != 9 {
		select {
		case <-ctxT(t).Done():
			t.Fatalf("Stats = %+v, want 9 waiting", srv.Stats())
		default:
		}
	}
	c.CloseNow()
	<-srv.Done()
	close(h.release)
	srv.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.order) != 1 {
		t.Errorf("%d handlers ran, want only the one started before the connection ended", len(h.order))
	}
	if st := srv.Stats(); st.Backlog != 0 || st.InFlight != 0 {
		t.Errorf("Stats after the end = %+v, want nothing waiting or in flight", st)
	}
}

// TestDrainDeadlineAnswersTheBacklog: at a drain deadline, calls still
// waiting are answered unavailable (not started), and never run.
func TestDrainDeadlineAnswersTheBacklog(t *testing.T) {
	h := newHoldHandler()
	c, srv := peers(t, rpc.SubprotocolBinary, []rpc.Option{rpc.WithHandler(h), rpc.WithMaxInFlight(1)}, nil)
	reply := make(chan *rpc.Response, 20)
	for range 3 {
		if err := c.Send(ctxT(t), &rpc.Request{Method: "hold", Reply: reply}); err != nil {
			t.Fatal(err)
		}
	}
	<-h.started
	for srv.Stats().Backlog != 2 {
		select {
		case <-ctxT(t).Done():
			t.Fatalf("Stats = %+v, want 2 waiting", srv.Stats())
		default:
		}
	}
	ctx, cancel := context.WithTimeout(ctxT(t), 100*time.Millisecond)
	defer cancel()
	if err := srv.Drain(ctx, rpc.Notice{}); err == nil {
		t.Fatal("Drain returned nil with a held call past its deadline")
	}
	close(h.release) // the held handler ignores its ctx
	unavailable := 0
	for range 3 {
		if r := <-reply; rpc.CodeOf(r.Err) == rpc.CodeUnavailable {
			unavailable++
		}
	}
	if unavailable != 2 {
		t.Errorf("%d calls answered unavailable, want the 2 that waited", unavailable)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.order) != 1 {
		t.Errorf("%d handlers ran, want 1", len(h.order))
	}
}
