package main

import (
	"bytes"
	"context"
	"fmt"
	"net"

	"github.com/coder/websocket"

	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
)

// wsrpc's hub: pubsub.New with its defaults (the in-memory broker),
// mounted with server.WithHub on server.New with its defaults (heartbeat
// on), and the publisher calling Hub.Publish with the payload as rpc.Raw.
//
// Its subscribers speak plain JSON-RPC 2.0 (no subprotocol offered,
// docs/PROTOCOL.md §1.2): one $/subscribe call, then they read $/publication
// notifications, one to a message or several packed as a JSON array; the
// reader counts the stamps whatever the packing.

type wsrpcFan struct {
	hub     *pubsub.Hub
	srv     *server.Server
	serve   chan error
	clients []*websocket.Conn
}

func startWSRPCFanout(ctx context.Context, size int, subs []*fanSub) (fanTarget, error) {
	hub, err := pubsub.New()
	if err != nil {
		return nil, err
	}
	srv, err := server.New(echoHandler, server.WithHub(hub))
	if err != nil {
		hub.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		hub.Close()
		return nil, err
	}
	s := &wsrpcFan{hub: hub, srv: srv, serve: make(chan error, 1)}
	go func() { s.serve <- srv.Serve(ln) }() // owned: waited for in close
	url := "ws://" + ln.Addr().String() + "/"
	s.clients, err = dialFanSubs(ctx, subs, func(ctx context.Context, sub *fanSub) (*websocket.Conn, error) {
		return dialWSRPCSubscriber(ctx, url, fanTopic, sub)
	})
	if err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// dialWSRPCSubscriber connects sub to the wsrpc server at url, subscribes
// it to topic and starts its reader.
func dialWSRPCSubscriber(ctx context.Context, url, topic string, sub *fanSub) (*websocket.Conn, error) {
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	if err := wsrpcSubscribe(ctx, ws, topic); err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("%s: %w", pubsub.MethodSubscribe, err)
	}
	sub.start(ws, nil)
	return ws, nil
}

// wsrpcSubscribe makes the $/subscribe call to topic and reads its reply
// (the only message before the first publication).
func wsrpcSubscribe(ctx context.Context, ws *websocket.Conn, topic string) error {
	req := `{"jsonrpc":"2.0","id":1,"method":"` + pubsub.MethodSubscribe + `","params":{"topic":"` + topic + `"}}`
	if err := ws.Write(ctx, websocket.MessageText, []byte(req)); err != nil {
		return err
	}
	_, msg, err := ws.Read(ctx)
	if err != nil {
		return err
	}
	if !bytes.Contains(msg, []byte(`"result":`)) {
		return fmt.Errorf("reply %s", msg)
	}
	return nil
}

func (s *wsrpcFan) publish(p []byte) error {
	_, err := s.hub.Publish(context.Background(), fanTopic, rpc.Raw(p))
	return err
}

func (s *wsrpcFan) close() error {
	err := stopFanServer(s.clients, s.srv.Shutdown, s.srv.Close, s.serve)
	if herr := s.hub.Close(); err == nil {
		err = herr
	}
	return err
}
