package handler_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
)

// gate is a handler whose calls block until release is closed; entered gets
// one value per call that started.
type gate struct {
	entered chan string
	release chan struct{}
}

func newGate() *gate {
	return &gate{entered: make(chan string, 16), release: make(chan struct{})}
}

func (g *gate) ServeRPC(_ context.Context, req *rpc.Request) ([]byte, error) {
	g.entered <- req.Method
	<-g.release
	return []byte("ok"), nil
}

// start runs one call on its own goroutine; its error arrives on the channel.
func start(wg *sync.WaitGroup, ctx context.Context, h handler.Handler, method string) <-chan error {
	done := make(chan error, 1)
	wg.Go(func() {
		_, err := h.ServeRPC(ctx, newReq(method, ""))
		done <- err
	})
	return done
}

func TestLimit(t *testing.T) {
	tests := []struct {
		name    string
		limit   func(n int, wait time.Duration) handler.Middleware
		give    string // the method of the call that finds the limit full
		wantMsg string
	}{
		{"global", handler.Limit, "b", "too many calls at once (limit 2)"}, // another method is refused too
		{"per method", handler.LimitPerMethod, "a", `too many calls to "a" at once (limit 2)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var wg sync.WaitGroup
			defer wg.Wait()
			g := newGate()
			h := tt.limit(2, 0)(g)
			ctx := context.Background()
			first, second := start(&wg, ctx, h, "a"), start(&wg, ctx, h, "a")
			<-g.entered
			<-g.entered

			// Full: refused at once.
			_, err := h.ServeRPC(ctx, newReq(tt.give, ""))
			wantCode(t, err, rpc.CodeBusy)
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q lacks %q", err, tt.wantMsg)
			}

			close(g.release)
			for _, done := range []<-chan error{first, second} {
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			}
			// Slots come back.
			if _, err := h.ServeRPC(ctx, newReq(tt.give, "")); err != nil {
				t.Errorf("after the others ended: %v", err)
			}
		})
	}
}

func TestLimitPerMethodIsPerMethod(t *testing.T) {
	var wg sync.WaitGroup
	defer wg.Wait()
	g := newGate()
	h := handler.LimitPerMethod(1, 0)(g)
	ctx := context.Background()
	a := start(&wg, ctx, h, "a")
	<-g.entered
	b := start(&wg, ctx, h, "b") // another method has its own slot
	<-g.entered
	_, err := h.ServeRPC(ctx, newReq("a", ""))
	wantCode(t, err, rpc.CodeBusy)
	close(g.release)
	if err := errors.Join(<-a, <-b); err != nil {
		t.Fatal(err)
	}
}

// limits are the two limit middlewares, which behave alike for one method.
var limits = []struct {
	name  string
	limit func(n int, wait time.Duration) handler.Middleware
}{
	{"global", handler.Limit},
	{"per method", handler.LimitPerMethod},
}

// TestLimitWait uses a fake clock: every wait is exact and instant.
func TestLimitWait(t *testing.T) {
	for _, l := range limits {
		limit := l.limit
		t.Run(l.name+"/slot frees up", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g := newGate()
				h := limit(1, time.Minute)(g)
				var wg sync.WaitGroup
				first := start(&wg, context.Background(), h, "m")
				<-g.entered
				second := start(&wg, context.Background(), h, "m")
				synctest.Wait() // second is waiting for the slot
				select {
				case err := <-second:
					t.Fatalf("second call ended while the slot was taken: %v", err)
				default:
				}
				t0 := time.Now()
				close(g.release)
				if err := errors.Join(<-first, <-second); err != nil {
					t.Fatal(err)
				}
				if d := time.Since(t0); d != 0 {
					t.Errorf("second call waited %v after the slot freed up", d)
				}
				wg.Wait()
			})
		})
		t.Run(l.name+"/wait runs out", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g := newGate()
				h := limit(1, time.Minute)(g)
				var wg sync.WaitGroup
				first := start(&wg, context.Background(), h, "m")
				<-g.entered
				t0 := time.Now()
				_, err := h.ServeRPC(context.Background(), newReq("m", ""))
				wantCode(t, err, rpc.CodeBusy)
				if d := time.Since(t0); d != time.Minute {
					t.Errorf("refused after %v, want %v", d, time.Minute)
				}
				close(g.release)
				if err := <-first; err != nil {
					t.Fatal(err)
				}
				wg.Wait()
			})
		})
		t.Run(l.name+"/ctx ends first", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g := newGate()
				h := limit(1, time.Minute)(g)
				var wg sync.WaitGroup
				first := start(&wg, context.Background(), h, "m")
				<-g.entered
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				t0 := time.Now()
				_, err := h.ServeRPC(ctx, newReq("m", ""))
				wantCode(t, err, rpc.CodeDeadlineExceeded)
				if d := time.Since(t0); d != time.Second {
					t.Errorf("gave up after %v, want %v", d, time.Second)
				}
				close(g.release)
				if err := <-first; err != nil {
					t.Fatal(err)
				}
				wg.Wait()
			})
		})
	}
}

// TestLimitConcurrent checks the bound under load; run it with -race.
func TestLimitConcurrent(t *testing.T) {
	for _, l := range limits {
		var running, most, ok, busy atomic.Int32
		h := l.limit(3, 0)(handler.HandlerFunc(func(context.Context, *rpc.Request) ([]byte, error) {
			n := running.Add(1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			running.Add(-1)
			return nil, nil
		}))
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 100 {
					_, err := h.ServeRPC(context.Background(), newReq("m", ""))
					switch rpc.CodeOf(err) {
					case 0:
						ok.Add(1)
					case rpc.CodeBusy:
						busy.Add(1)
					default:
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		if most.Load() > 3 {
			t.Errorf("%s: %d calls ran at once, limit 3", l.name, most.Load())
		}
		if ok.Load()+busy.Load() != 800 || ok.Load() == 0 {
			t.Errorf("%s: %d ok + %d busy, want 800 with some ok", l.name, ok.Load(), busy.Load())
		}
	}
}

// TestLimitPerMethodManyNames sends more distinct names than the idle state
// kept, and checks that limits still hold afterwards.
func TestLimitPerMethodManyNames(t *testing.T) {
	var wg sync.WaitGroup
	defer wg.Wait()
	g := newGate()
	h := handler.LimitPerMethod(1, 0)(g)
	ctx := context.Background()
	held := start(&wg, ctx, h, "held")
	<-g.entered
	free := handler.LimitPerMethod(1, 0)(echo)
	for i := range 3000 {
		if _, err := free.ServeRPC(ctx, newReq(fmt.Sprint("m", i), "")); err != nil {
			t.Fatal(err)
		}
		if _, err := h.ServeRPC(ctx, newReq("held", "")); rpc.CodeOf(err) != rpc.CodeBusy {
			t.Fatalf("call %d to a full method: %v, want busy", i, err)
		}
	}
	close(g.release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
}

func TestLimitPanicsOnBadN(t *testing.T) {
	for _, l := range limits {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic for n = 0", l.name)
				}
			}()
			l.limit(0, 0)
		}()
	}
}
