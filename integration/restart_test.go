package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
)

// ledger counts how many times each call ran, across every server instance.
type ledger struct {
	mu   sync.Mutex
	runs map[string]int
}

func (l *ledger) run(token string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.runs[token]++
	return l.runs[token]
}

func (l *ledger) count(token string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.runs[token]
}

// instance is one server process stand-in on a fixed loopback address.
type instance struct {
	addr   string
	srv    *server.Server
	served chan error
}

func startInstance(t *testing.T, addr string, l *ledger) *instance {
	t.Helper()
	mux := handler.NewMux()
	mux.Handle("record", handler.Func(func(ctx context.Context, token string) (int, error) {
		select { // keep calls in flight long enough to be caught by restarts
		case <-time.After(time.Millisecond):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		return l.run(token), nil
	}))
	srv, err := server.New(mux)
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	for range 100 { // the previous instance's port may take a moment to free
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond) // retry pacing, not synchronisation
	}
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	in := &instance{addr: ln.Addr().String(), srv: srv, served: make(chan error, 1)}
	go func() { in.served <- srv.Serve(ln) }()
	return in
}

func (in *instance) stop(t *testing.T, graceful bool) {
	t.Helper()
	if graceful {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := in.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown %s: %v", in.addr, err)
		}
	} else {
		in.srv.Close()
	}
	if err := <-in.served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve %s: %v", in.addr, err)
	}
}

// TestRollingRestart runs three instances and several reconnecting clients
// calling all the time, and restarts each instance in turn: first gracefully
// (Shutdown), then abruptly (Close). No idempotent call may be lost, and every
// other call either succeeded exactly once or reported an unknown outcome.
func TestRollingRestart(t *testing.T) {
	l := &ledger{runs: map[string]int{}}
	instances := make([]*instance, 3)
	urls := make([]string, 3)
	for i := range instances {
		instances[i] = startInstance(t, "127.0.0.1:0", l)
		urls[i] = "ws://" + instances[i].addr + "/rpc"
	}
	defer func() {
		for _, in := range instances {
			in.stop(t, false)
		}
	}()

	const clients, workers = 4, 8
	var (
		done      atomic.Int64 // calls finished
		progress  = make(chan struct{}, 1)
		stop      = make(chan struct{})
		wg        sync.WaitGroup
		mu        sync.Mutex
		failures  []string
		unknown   atomic.Int64
		graceful  atomic.Bool // the current round restarts with Shutdown
		idemOK    atomic.Int64
		nonIdemOK atomic.Int64
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	for ci := range clients {
		c, err := client.Dial(context.Background(), urls[ci%3],
			client.WithEndpoints(urls...), client.WithBackoff(5*time.Millisecond, 50*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for w := range workers {
			wg.Go(func() {
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					token := fmt.Sprintf("c%d-w%d-%d", ci, w, n)
					idempotent := n%2 == 0
					var opts []client.CallOption
					if idempotent {
						opts = append(opts, client.Idempotent())
					}
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					var runs int
					err := c.Call(ctx, "record", token, &runs, opts...)
					cancel()
					switch {
					case err == nil && idempotent:
						idemOK.Add(1)
					case err == nil:
						nonIdemOK.Add(1)
						if got := l.count(token); got != 1 {
							fail("non-idempotent %s succeeded but ran %d times", token, got)
						}
					case idempotent:
						fail("idempotent %s lost: %v", token, err)
					case errors.Is(err, rpc.ErrConnectionLost) && graceful.Load():
						fail("non-idempotent %s: unknown outcome across a graceful restart: %v", token, err)
					case errors.Is(err, rpc.ErrConnectionLost):
						unknown.Add(1) // the outcome is unknown, and says so
						if got := l.count(token); got > 1 {
							fail("non-idempotent %s ran %d times", token, got)
						}
					default:
						fail("non-idempotent %s: %v", token, err)
					}
					done.Add(1)
					select {
					case progress <- struct{}{}:
					default:
					}
				}
			})
		}
	}
	// Wait until calls have flowed for a while: progress, not time.
	waitCalls := func(n int64) {
		target := done.Load() + n
		deadline := time.After(30 * time.Second)
		for done.Load() < target {
			select {
			case <-progress:
			case <-deadline:
				t.Fatalf("calls stalled at %d (waiting for %d)", done.Load(), target)
			}
		}
	}
	waitCalls(300)
	for round, g := range []bool{true, false} {
		graceful.Store(g)
		for i, in := range instances {
			in.stop(t, g)
			instances[i] = startInstance(t, in.addr, l)
			waitCalls(300)
			t.Logf("round %d: restarted %s (graceful %v); %d calls so far", round, in.addr, g, done.Load())
		}
		waitCalls(100) // calls that straddled the last restart of this round finish under its rule
	}
	close(stop)
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	t.Logf("%d idempotent and %d non-idempotent calls succeeded; %d reported an unknown outcome",
		idemOK.Load(), nonIdemOK.Load(), unknown.Load())
	if idemOK.Load() == 0 || nonIdemOK.Load() == 0 {
		t.Fatal("no calls succeeded")
	}
}
