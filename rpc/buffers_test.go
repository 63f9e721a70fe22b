package rpc_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/rpc"
)

// Received messages come in pooled buffers that a blocking Call recycles.
// These tests keep what the API says stays valid and check that it does
// while later traffic reuses buffers (the race detector sees a buffer handed
// out twice).

// payloadFor returns distinct params of about n bytes, valid on both codecs.
func payloadFor(i, n int) rpc.Raw {
	return rpc.Raw(fmt.Sprintf(`["%d-%s"]`, i, bytes.Repeat([]byte{'a' + byte(i%26)}, n)))
}

// churn makes calls of assorted sizes so that buffers are reused.
func churn(t *testing.T, c *rpc.Peer) {
	t.Helper()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			var out rpc.Raw
			for i := range 50 {
				want := payloadFor(1000+g*50+i, (i*97)%5000)
				if err := c.Call(ctxT(t), "echo", want, &out); err != nil || !bytes.Equal(out, want) {
					t.Errorf("churn call: %v, %d bytes back", err, len(out))
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestRawResultReusesTheCallersBuffer(t *testing.T) {
	for _, cd := range codecs[:2] {
		t.Run(cd.name, func(t *testing.T) {
			c, _ := peers(t, cd.subprotocol, []rpc.Option{rpc.WithHandler(services(t))}, nil)
			out := make(rpc.Raw, 0, 64)
			backing := &out[:1][0]
			if err := c.Call(ctxT(t), "echo", rpc.Raw(`["abc"]`), &out); err != nil {
				t.Fatal(err)
			}
			if string(out) != `["abc"]` || &out[0] != backing {
				t.Fatalf("out = %q (reused backing: %v)", out, &out[0] == backing)
			}
			first := out
			var second rpc.Raw
			if err := c.Call(ctxT(t), "echo", rpc.Raw(`["xyz"]`), &second); err != nil {
				t.Fatal(err)
			}
			churn(t, c)
			if string(first) != `["abc"]` || string(second) != `["xyz"]` {
				t.Fatalf("results changed by later calls: %q %q", first, second)
			}
		})
	}
}

func TestKeptBytesStayValid(t *testing.T) {
	for _, cd := range codecs[:2] {
		t.Run(cd.name, func(t *testing.T) {
			var mu sync.Mutex
			var params []rpc.Raw // kept by the handler after it returns (WithOwnedParams)
			h := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
				switch req.Method {
				case "keep":
					mu.Lock()
					params = append(params, req.Params)
					mu.Unlock()
					return nil, nil
				case "fail":
					return nil, &rpc.Error{Code: rpc.CodeInvalidParams, Message: "kept", Data: req.Params}
				}
				return services(t).ServeRPC(ctx, req)
			})
			// Params kept past the handler's return need WithOwnedParams;
			// the rest is the caller's to keep in any case.
			c, _ := peers(t, cd.subprotocol, []rpc.Option{rpc.WithHandler(h), rpc.WithOwnedParams()}, nil)
			const n = 40
			var sent []rpc.Raw
			var results []*rpc.Response
			var errData [][]byte
			for i := range n {
				p := payloadFor(i, (i*613)%6000)
				sent = append(sent, p)
				if err := c.Call(ctxT(t), "keep", p, nil); err != nil {
					t.Fatal(err)
				}
				reply := make(chan *rpc.Response, 1)
				if err := c.Send(ctxT(t), &rpc.Request{Method: "echo", Params: p, Reply: reply}); err != nil {
					t.Fatal(err)
				}
				results = append(results, <-reply)
				err := c.Call(ctxT(t), "fail", p, nil)
				e, ok := err.(*rpc.Error)
				if !ok {
					t.Fatalf("fail: %v", err)
				}
				errData = append(errData, e.Data)
			}
			churn(t, c)
			mu.Lock()
			defer mu.Unlock()
			for i, p := range sent {
				if !bytes.Equal(params[i], p) {
					t.Errorf("params %d kept by the handler changed", i)
				}
				if results[i].Err != nil || !bytes.Equal(results[i].Result, p) {
					t.Errorf("async result %d changed (err %v)", i, results[i].Err)
				}
				if !bytes.Equal(errData[i], p) {
					t.Errorf("error data %d changed", i)
				}
			}
		})
	}
}

func TestIdleHandlerGoroutinesExit(t *testing.T) {
	defer rpc.SetWorkerIdle(20 * time.Millisecond)()
	release := make(chan struct{})
	var started sync.WaitGroup
	h := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		started.Done()
		<-release
		return nil, nil
	})
	c, _ := peers(t, rpc.SubprotocolBinary, []rpc.Option{rpc.WithHandler(h)}, nil)
	before := runtime.NumGoroutine()
	const n = 50
	started.Add(n)
	var calls sync.WaitGroup
	for range n {
		calls.Go(func() {
			if err := c.Call(ctxT(t), "block", nil, nil); err != nil {
				t.Error(err)
			}
		})
	}
	started.Wait() // n handlers at once: none waits for another to finish
	close(release)
	calls.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines 5s after the calls ended, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// By default Params is valid until the handler returns; a reply that aliases
// it (an echo, an error carrying it as data) is encoded before the buffer is
// reused.
func TestRepliesMayAliasParams(t *testing.T) {
	for _, cd := range codecs[:2] {
		t.Run(cd.name, func(t *testing.T) {
			h := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
				if req.Method == "fail" {
					return nil, &rpc.Error{Code: rpc.CodeInvalidParams, Message: "echoed", Data: req.Params}
				}
				return req.Params, nil
			})
			c, _ := peers(t, cd.subprotocol, []rpc.Option{rpc.WithHandler(h)}, nil)
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Go(func() {
					var out rpc.Raw
					for i := range 60 {
						want := payloadFor(g*100+i, (g*i*131)%7000)
						err := c.Call(ctxT(t), "echo", want, &out)
						if err != nil || !bytes.Equal(out, want) {
							t.Errorf("echo: %v, %d bytes back", err, len(out))
							return
						}
						e, ok := c.Call(ctxT(t), "fail", want, nil).(*rpc.Error)
						if !ok || !bytes.Equal(e.Data, want) {
							t.Errorf("fail: error data does not match the params")
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}
}
