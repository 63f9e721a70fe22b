package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/wsrpc/wsrpc/transport"
)

// rawEcho is the ceiling: an echo written directly on coder/websocket, one
// Read/Write loop per connection on the server, reading with
// context.Background() on both ends (see DEPENDENCIES.md).
var rawEcho = impl{name: "raw-echo", listen: listenRaw}

type rawServer struct {
	rawBase
	size int
}

func listenRaw(_ context.Context, size int) (endpoint, error) {
	s := &rawServer{size: size}
	if err := s.listen(s.echo); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *rawServer) echo(ws *websocket.Conn) {
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
}

// rawBase is the server side of the raw implementations: an HTTP server on
// loopback that accepts WebSocket connections with coder/websocket and
// runs serve on each, and closes them all when it is closed.
type rawBase struct {
	hs      *http.Server
	address string
	serve   chan error

	wg    sync.WaitGroup // one per connection handler
	mu    sync.Mutex
	conns map[*websocket.Conn]struct{}
}

// listen starts the server; serve runs on each accepted connection, which
// is closed when it returns.
func (b *rawBase) listen(serve func(*websocket.Conn)) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	b.address, b.serve, b.conns = ln.Addr().String(), make(chan error, 1), make(map[*websocket.Conn]struct{})
	b.hs = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.wg.Add(1)
		defer b.wg.Done()
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		b.mu.Lock()
		b.conns[ws] = struct{}{}
		b.mu.Unlock()
		defer func() {
			b.mu.Lock()
			delete(b.conns, ws)
			b.mu.Unlock()
		}()
		serve(ws)
	})}
	go func() { b.serve <- b.hs.Serve(ln) }() // owned: waited for in close
	return nil
}

func (b *rawBase) close() error {
	b.hs.Close() // the listener; hijacked connections are ours
	b.mu.Lock()
	for ws := range b.conns {
		ws.CloseNow()
	}
	b.mu.Unlock()
	b.wg.Wait()
	if err := <-b.serve; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *rawServer) dial(ctx context.Context) (client, error) {
	ws, _, err := websocket.Dial(ctx, "ws://"+s.address+"/", nil)
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(transport.DefaultReadLimit)
	return &rawClient{ws: ws, size: s.size}, nil
}

type rawClient struct {
	ws   *websocket.Conn
	size int
}

// caller is a ping-pong: write one message, read the echo.
func (c *rawClient) caller() func() error {
	msg := make([]byte, c.size)
	ctx := context.Background()
	return func() error {
		if err := c.ws.Write(ctx, websocket.MessageBinary, msg); err != nil {
			return err
		}
		_, p, err := c.ws.Read(ctx)
		if err != nil {
			return err
		}
		if len(p) != c.size {
			return errShortReply
		}
		return nil
	}
}

// pipeline writes from one goroutine and reads on this one, with at most
// window messages in flight. The send time of each message written travels
// from writer to reader through a channel whose capacity, plus the one the
// reader holds and the one the writer has written but not yet queued, is the
// window; the echo keeps messages in order.
func (c *rawClient) pipeline(stop *atomic.Bool, window int, h *hist) (int64, error) {
	ctx := context.Background()
	msg := make([]byte, c.size)
	sent := make(chan time.Time, max(window-2, 0))
	werr := make(chan error, 1)
	go func() { // owned: it closes sent, which ends the loop below; werr is read after
		defer close(sent)
		for !stop.Load() {
			t := time.Now()
			if err := c.ws.Write(ctx, websocket.MessageBinary, msg); err != nil {
				werr <- err
				return
			}
			sent <- t
		}
		werr <- nil
	}()
	var n int64
	var rerr error
	for t := range sent {
		if rerr != nil {
			continue // drain so the writer can finish
		}
		_, p, err := c.ws.Read(ctx)
		if err != nil {
			rerr = err
			stop.Store(true)
			continue
		}
		if len(p) != c.size {
			rerr = errShortReply
			stop.Store(true)
			continue
		}
		h.add(time.Since(t))
		n++
	}
	if err := <-werr; err != nil {
		return n, err
	}
	return n, rerr
}

func (c *rawClient) close() error {
	return c.ws.Close(websocket.StatusNormalClosure, "")
}
