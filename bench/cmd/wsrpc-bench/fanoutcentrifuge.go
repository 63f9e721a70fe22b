package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/centrifugal/centrifuge"
	"github.com/coder/websocket"
)

// centrifuge, the reference: a node with its defaults (the in-memory
// broker, no history on the channel), its WebSocket handler, and the
// publisher calling node.Publish. Connecting needs no token (OnConnecting
// gives every connection the same user) and every subscribe is allowed.
//
// Its subscribers speak centrifuge's JSON protocol directly: a connect
// command and a subscribe command, then they read pushes, which the server
// may pack several to a message, separated by newlines. They answer the
// server's application-level ping (an empty object) with one.

type centrifugeFan struct {
	node    *centrifuge.Node
	hs      *http.Server
	serve   chan error
	clients []*websocket.Conn
}

func startCentrifugeFanout(ctx context.Context, size int, subs []*fanSub) (fanTarget, error) {
	node, err := centrifuge.New(centrifuge.Config{LogLevel: centrifuge.LogLevelNone})
	if err != nil {
		return nil, err
	}
	node.OnConnecting(func(context.Context, centrifuge.ConnectEvent) (centrifuge.ConnectReply, error) {
		return centrifuge.ConnectReply{Credentials: &centrifuge.Credentials{UserID: "bench"}}, nil
	})
	node.OnConnect(func(c *centrifuge.Client) {
		c.OnSubscribe(func(_ centrifuge.SubscribeEvent, cb centrifuge.SubscribeCallback) {
			cb(centrifuge.SubscribeReply{}, nil)
		})
	})
	if err := node.Run(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		node.Shutdown(context.Background())
		return nil, err
	}
	s := &centrifugeFan{node: node, serve: make(chan error, 1)}
	s.hs = &http.Server{Handler: centrifuge.NewWebsocketHandler(node, centrifuge.WebsocketConfig{}), ReadHeaderTimeout: 10 * time.Second}
	go func() { s.serve <- s.hs.Serve(ln) }() // owned: waited for in close
	url := "ws://" + ln.Addr().String() + "/"
	s.clients, err = dialFanSubs(ctx, subs, func(ctx context.Context, sub *fanSub) (*websocket.Conn, error) {
		ws, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			return nil, err
		}
		if err := centrifugeCommand(ctx, ws, 1, `{"id":1,"connect":{}}`); err != nil {
			ws.CloseNow()
			return nil, fmt.Errorf("connect: %w", err)
		}
		if err := centrifugeCommand(ctx, ws, 2, `{"id":2,"subscribe":{"channel":"`+fanTopic+`"}}`); err != nil {
			ws.CloseNow()
			return nil, fmt.Errorf("subscribe: %w", err)
		}
		sub.start(ws, func(msg []byte) error {
			if centrifugePing(msg) {
				return ws.Write(context.Background(), websocket.MessageText, []byte("{}"))
			}
			return nil
		})
		return ws, nil
	})
	if err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// centrifugeCommand sends cmd and reads until the reply with that id; an
// error reply fails.
func centrifugeCommand(ctx context.Context, ws *websocket.Conn, id int, cmd string) error {
	if err := ws.Write(ctx, websocket.MessageText, []byte(cmd)); err != nil {
		return err
	}
	want := []byte(fmt.Sprintf(`{"id":%d,`, id))
	for {
		_, msg, err := ws.Read(ctx)
		if err != nil {
			return err
		}
		for line := range bytes.SplitSeq(msg, []byte("\n")) {
			if !bytes.HasPrefix(line, want) {
				continue
			}
			if bytes.Contains(line, []byte(`"error":`)) {
				return fmt.Errorf("%s", line)
			}
			return nil
		}
	}
}

// centrifugePing reports whether msg holds the server's ping, an empty
// object, alone or as one of the lines of a message (a quick scan: the
// pushes hold no "\n{}").
func centrifugePing(msg []byte) bool {
	return string(msg) == "{}" || bytes.HasPrefix(msg, []byte("{}\n")) || bytes.Contains(msg, []byte("\n{}"))
}

func (s *centrifugeFan) publish(p []byte) error {
	_, err := s.node.Publish(fanTopic, p)
	return err
}

func (s *centrifugeFan) close() error {
	return stopFanServer(s.clients, s.node.Shutdown, s.hs.Close, s.serve)
}
