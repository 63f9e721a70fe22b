package main

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/coder/websocket"

	"github.com/wsrpc/wsrpc/transport"
)

// rawPacked is the ceiling of -stream for a design that packs results the
// way wsrpc does: coder/websocket alone, the server writing, as fast as the
// socket takes them, binary messages that each hold as many results as
// wsrpc packs into one (transport.MaxPack, at most transport.MaxPackBytes
// in all, at least one), the client reading each into a reused buffer and
// counting its results. No envelope, no flow control beyond TCP's, no
// copy but coder/websocket's; each stream is a connection of its own.
var rawPacked = impl{name: "raw-packed", listen: listenRawPacked}

// rawPerMessage is how many results of size bytes wsrpc packs into one
// message: the pack bounds, counting its framing (4 bytes a result).
func rawPerMessage(size int) int {
	return max(1, min(transport.MaxPack, transport.MaxPackBytes/(size+4)))
}

type rawPackedServer struct {
	rawBase
	size int
}

func listenRawPacked(_ context.Context, size int) (endpoint, error) {
	s := &rawPackedServer{size: size}
	if err := s.listen(s.stream); err != nil {
		return nil, err
	}
	return s, nil
}

// stream writes packed messages once the client's first message came,
// until writing fails (the client closed).
func (s *rawPackedServer) stream(ws *websocket.Conn) {
	ctx := context.Background()
	if _, _, err := ws.Read(ctx); err != nil {
		return
	}
	// Reading goes on (for the close frame) while this goroutine writes,
	// with context.Background(): a context that can end costs allocations
	// per frame (DEPENDENCIES.md).
	ws.CloseRead(context.Background())
	msg := make([]byte, rawPerMessage(s.size)*(s.size+4))
	for ws.Write(ctx, websocket.MessageBinary, msg) == nil {
	}
}

// dial returns a client that dials a connection for each stream it opens.
func (s *rawPackedServer) dial(context.Context) (client, error) {
	return &rawPackedClient{url: "ws://" + s.address + "/", size: s.size}, nil
}

type rawPackedClient struct {
	url  string
	size int
	mu   sync.Mutex
	ws   []*websocket.Conn // the open streams' connections
}

func (c *rawPackedClient) caller() func() error {
	return func() error { return errors.New("raw-packed only streams") }
}

// openStream dials the stream's connection and asks for results; recv
// hands them out one at a time, reading a message when the last is used up.
func (c *rawPackedClient) openStream(ctx context.Context, _ int) (recv func() error, end func(), err error) {
	ws, _, err := websocket.Dial(ctx, c.url, nil)
	if err != nil {
		return nil, nil, err
	}
	c.mu.Lock()
	c.ws = append(c.ws, ws)
	c.mu.Unlock()
	if err := ws.Write(ctx, websocket.MessageBinary, []byte("go")); err != nil {
		return nil, nil, err
	}
	per := rawPerMessage(c.size)
	buf := make([]byte, per*(c.size+4))
	left := 0
	bg := context.Background()
	recv = func() error {
		if left == 0 {
			_, r, err := ws.Reader(bg)
			if err != nil {
				return err
			}
			if _, err := readFull(r, buf); err != nil {
				return err
			}
			left = per
		}
		left--
		return nil
	}
	return recv, func() { ws.CloseNow() }, nil
}

// readFull reads a message that must hold exactly len(buf) bytes into buf.
func readFull(r io.Reader, buf []byte) (int, error) {
	n, err := io.ReadFull(r, buf)
	if err != nil {
		return n, err
	}
	var one [1]byte
	if m, err := r.Read(one[:]); m > 0 || err != io.EOF {
		return n + m, errShortReply
	}
	return n, nil
}

func (c *rawPackedClient) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ws := range c.ws {
		ws.CloseNow()
	}
	return nil
}
