package pubsub_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
)

// BenchmarkFanout publishes on one topic to subs subscribers, each a raw
// WebSocket client that counts the publications it reads (packed or not),
// never letting the publisher run more than 256 publications ahead of the
// slowest. One op is one publication; deliveries/s counts every
// subscriber's.
func BenchmarkFanout(b *testing.B) {
	for _, codec := range []string{rpc.SubprotocolBinary, rpc.SubprotocolJSON} {
		for _, subs := range []int{1, 100, 1000} {
			for _, size := range []int{64, 1024} {
				b.Run(fmt.Sprintf("codec=%s/subs=%d/size=%d", codec, subs, size), func(b *testing.B) {
					benchFanout(b, codec, subs, size)
				})
			}
		}
	}
}

func benchFanout(b *testing.B, codec string, subs, size int) {
	hub, err := pubsub.New()
	if err != nil {
		b.Fatal(err)
	}
	srv, err := server.New(rpc.HandlerFunc(func(context.Context, *rpc.Request) ([]byte, error) { return nil, nil }),
		server.WithHub(hub), server.WithMaxConns(subs+10))
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	url := "ws" + strings.TrimPrefix(hs.URL, "http")
	counts := make([]atomic.Int64, subs)
	var wg sync.WaitGroup
	conns := make([]*websocket.Conn, subs)
	marker := []byte("$/publication")
	if codec == rpc.SubprotocolBinary {
		marker = []byte("\x0d$/publication") // the method's length byte, then its text
	}
	for i := range subs {
		c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{codec}})
		if err != nil {
			b.Fatal(err)
		}
		c.SetReadLimit(1 << 20)
		conns[i] = c
		req := `{"jsonrpc":"2.0","id":1,"method":"$/subscribe","params":{"topic":"bench"}}`
		typ := websocket.MessageText
		if codec == rpc.SubprotocolBinary {
			req = "\x01\x00\x01\x00\x0b$/subscribe" + `{"topic":"bench"}`
			typ = websocket.MessageBinary
		}
		if err := c.Write(ctx, typ, []byte(req)); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.Read(ctx); err != nil { // the reply
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			for {
				_, r, err := c.Reader(context.Background())
				if err != nil {
					return
				}
				n := 0
				for {
					m, err := r.Read(buf[n:])
					n += m
					if err != nil {
						break
					}
					if n == len(buf) {
						buf = append(buf, make([]byte, len(buf))...)
					}
				}
				counts[i].Add(int64(bytes.Count(buf[:n], marker)))
			}
		}()
	}
	data := []byte(`"` + strings.Repeat("x", size-2) + `"`)
	slowest := func() int64 {
		m := counts[0].Load()
		for i := range counts {
			m = min(m, counts[i].Load())
		}
		return m
	}
	b.ReportAllocs()
	b.SetBytes(int64(size))
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		for int64(i)-slowest() >= 256 {
			time.Sleep(20 * time.Microsecond)
		}
		if _, err := hub.Publish(ctx, "bench", rpc.Raw(data)); err != nil {
			b.Fatal(err)
		}
	}
	for slowest() < int64(b.N) {
		if ctx.Err() != nil {
			b.Fatalf("subscribers got %d of %d", slowest(), b.N)
		}
		time.Sleep(50 * time.Microsecond)
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)*float64(subs)/el.Seconds(), "deliveries/s")
	b.ReportMetric(float64(el.Nanoseconds())/float64(b.N*subs), "ns/delivery")
	for _, c := range conns {
		c.CloseNow()
	}
	wg.Wait()
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	_ = srv.Shutdown(sctx)
	hs.Close()
	_ = hub.Close()
}
