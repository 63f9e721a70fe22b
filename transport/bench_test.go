package transport_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/wsrpc/wsrpc/transport"
)

// The echo benchmarks run this package's channel transport and the same echo
// written directly on coder/websocket side by side, so one run gives the ratio:
//
//	go test -run '^$' -bench Echo -benchtime 2s ./transport

var echoSizes = []struct {
	name string
	n    int
}{{"64B", 64}, {"4KiB", 4096}}

func BenchmarkEcho(b *testing.B) {
	for _, sz := range echoSizes {
		b.Run("mode=pingpong/impl=transport/size="+sz.name, func(b *testing.B) { benchTransport(b, sz.n, false) })
		b.Run("mode=pingpong/impl=coder/size="+sz.name, func(b *testing.B) { benchCoder(b, sz.n, false) })
		b.Run("mode=pipelined/impl=transport/size="+sz.name, func(b *testing.B) { benchTransport(b, sz.n, true) })
		b.Run("mode=pipelined/impl=coder/size="+sz.name, func(b *testing.B) { benchCoder(b, sz.n, true) })
	}
}

func benchTransport(b *testing.B, size int, pipelined bool) {
	done := make(chan struct{})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { done <- struct{}{} }()
		c, err := transport.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		echo(c)
	}))
	defer s.Close()
	c, err := transport.Dial(context.Background(), "ws"+strings.TrimPrefix(s.URL, "http"), nil)
	if err != nil {
		b.Fatal(err)
	}
	msg := transport.Message{Type: transport.Binary, Data: make([]byte, size)}
	ctx := context.Background()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	if pipelined {
		sendErr := make(chan error, 1)
		go func() {
			for range b.N {
				if err := c.Send(ctx, msg); err != nil {
					sendErr <- err
					return
				}
			}
			sendErr <- nil
		}()
		for range b.N {
			if _, ok := <-c.Recv(); !ok {
				b.Fatal(c.Err())
			}
		}
		if err := <-sendErr; err != nil {
			b.Fatal(err)
		}
	} else {
		for range b.N {
			if err := c.Send(ctx, msg); err != nil {
				b.Fatal(err)
			}
			if _, ok := <-c.Recv(); !ok {
				b.Fatal(c.Err())
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	c.Close(transport.StatusNormalClosure, "")
	<-done
}

func benchCoder(b *testing.B, size int, pipelined bool) {
	done := make(chan struct{})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { done <- struct{}{} }()
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ws.SetReadLimit(transport.DefaultReadLimit)
		ctx := context.Background()
		for {
			typ, p, err := ws.Read(ctx)
			if err != nil {
				return
			}
			if ws.Write(ctx, typ, p) != nil {
				return
			}
		}
	}))
	defer s.Close()
	ctx := context.Background()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http"), nil)
	if err != nil {
		b.Fatal(err)
	}
	ws.SetReadLimit(transport.DefaultReadLimit)
	msg := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	if pipelined {
		sendErr := make(chan error, 1)
		go func() {
			for range b.N {
				if err := ws.Write(ctx, websocket.MessageBinary, msg); err != nil {
					sendErr <- err
					return
				}
			}
			sendErr <- nil
		}()
		for range b.N {
			if _, _, err := ws.Read(ctx); err != nil {
				b.Fatal(err)
			}
		}
		if err := <-sendErr; err != nil {
			b.Fatal(err)
		}
	} else {
		for range b.N {
			if err := ws.Write(ctx, websocket.MessageBinary, msg); err != nil {
				b.Fatal(err)
			}
			if _, _, err := ws.Read(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	ws.Close(websocket.StatusNormalClosure, "")
	<-done
}
