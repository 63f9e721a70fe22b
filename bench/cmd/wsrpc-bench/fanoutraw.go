package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// The raw broadcast loops: a server on coder/websocket holding N
// connections, each with its own queue and writer goroutine. publish
// appends the publication (one shared slice, encoded once) to every
// connection's queue and wakes its writer; it never waits on one. The plain
// writer sends each queued publication as a WebSocket message of its own;
// the batching writer sends everything queued as one message, the
// publications separated by newlines (centrifuge's JSON framing): the
// ceiling for a hub built on this library.

func startRawPlainFanout(ctx context.Context, size int, subs []*fanSub) (fanTarget, error) {
	return startRawFanout(ctx, subs, false)
}

func startRawBatchFanout(ctx context.Context, size int, subs []*fanSub) (fanTarget, error) {
	return startRawFanout(ctx, subs, true)
}

// rawBatchMax bounds one batched message; a writer with more queued sends
// several.
const rawBatchMax = 1 << 20

// rawReady is the first message of the raw server: the connection is in
// the broadcast set.
const rawReady = "ready"

type rawFanServer struct {
	batch bool
	hs    *http.Server
	serve chan error
	wg    sync.WaitGroup // the connection handlers

	mu    sync.RWMutex
	conns map[*rawFanConn]struct{}
	list  []*rawFanConn // conns as a slice, rebuilt when it changes

	clients []*websocket.Conn
}

type rawFanConn struct {
	ws    *websocket.Conn
	kick  chan struct{} // capacity 1: the queue is not empty
	mu    sync.Mutex
	queue [][]byte
}

func startRawFanout(ctx context.Context, subs []*fanSub, batch bool) (fanTarget, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &rawFanServer{batch: batch, serve: make(chan error, 1), conns: make(map[*rawFanConn]struct{})}
	s.hs = &http.Server{Handler: http.HandlerFunc(s.handle), ReadHeaderTimeout: 10 * time.Second}
	go func() { s.serve <- s.hs.Serve(ln) }() // owned: waited for in close
	url := "ws://" + ln.Addr().String() + "/"
	s.clients, err = dialFanSubs(ctx, subs, func(ctx context.Context, sub *fanSub) (*websocket.Conn, error) {
		ws, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			return nil, err
		}
		// The server says when the connection is in the broadcast set.
		if _, msg, err := ws.Read(ctx); err != nil || string(msg) != rawReady {
			ws.CloseNow()
			return nil, fmt.Errorf("no ready message: %q, %v", msg, err)
		}
		sub.start(ws, nil)
		return ws, nil
	})
	if err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *rawFanServer) handle(w http.ResponseWriter, r *http.Request) {
	s.wg.Add(1)
	defer s.wg.Done()
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer ws.CloseNow()
	c := &rawFanConn{ws: ws, kick: make(chan struct{}, 1)}
	// Something must read for the control frames; it ends with the
	// connection and then cancels done.
	done := ws.CloseRead(context.Background())
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.rebuild()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.rebuild()
		s.mu.Unlock()
	}()
	if ws.Write(context.Background(), websocket.MessageText, []byte(rawReady)) != nil {
		return
	}
	c.writeLoop(done, s.batch)
}

func (s *rawFanServer) rebuild() {
	s.list = s.list[:0:0]
	for c := range s.conns {
		s.list = append(s.list, c)
	}
}

// writeLoop sends what is queued until the connection ends.
func (c *rawFanConn) writeLoop(done context.Context, batch bool) {
	ctx := context.Background() // see DEPENDENCIES.md: a Done channel costs allocations per frame
	var spare [][]byte
	var buf []byte
	for {
		select {
		case <-c.kick:
		case <-done.Done():
			return
		}
		c.mu.Lock()
		q := c.queue
		c.queue = spare[:0]
		c.mu.Unlock()
		if len(q) == 0 { // woken for publications an earlier round took
			spare = q
			continue
		}
		if batch {
			buf = buf[:0]
			for i, p := range q {
				if len(buf) > 0 && len(buf)+1+len(p) > rawBatchMax {
					if c.ws.Write(ctx, websocket.MessageText, buf) != nil {
						return
					}
					buf = buf[:0]
				}
				if len(buf) > 0 {
					buf = append(buf, '\n')
				}
				buf = append(buf, p...)
				q[i] = nil
			}
			if c.ws.Write(ctx, websocket.MessageText, buf) != nil {
				return
			}
		} else {
			for i, p := range q {
				if c.ws.Write(ctx, websocket.MessageText, p) != nil {
					return
				}
				q[i] = nil
			}
		}
		spare = q
	}
}

func (s *rawFanServer) publish(p []byte) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.list) == 0 {
		return errors.New("no connection")
	}
	for _, c := range s.list {
		c.mu.Lock()
		c.queue = append(c.queue, p)
		c.mu.Unlock()
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

func (s *rawFanServer) close() error {
	closeFanConns(s.clients)
	s.mu.RLock()
	for c := range s.conns {
		c.ws.CloseNow()
	}
	s.mu.RUnlock()
	err := s.hs.Close()
	if serr := <-s.serve; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	s.wg.Wait()
	return err
}
