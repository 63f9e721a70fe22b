package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"

	wsclient "github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
	"github.com/wsrpc/wsrpc/transport"
)

// The two wsrpc codecs, served by server.New with its defaults (heartbeat
// on, both subprotocols). The wsrpc-binary and wsrpc-json clients are
// transport.Dial plus rpc.New (the core); the wsrpc-client ones are
// client.Dial and Client.Call, the front door users call, with its defaults.
var (
	wsrpcBinary = impl{name: "wsrpc-binary", listen: func(ctx context.Context, size int) (endpoint, error) {
		return listenWSRPC(ctx, rpc.SubprotocolBinary, size, false)
	}}
	wsrpcJSON = impl{name: "wsrpc-json", listen: func(ctx context.Context, size int) (endpoint, error) {
		return listenWSRPC(ctx, rpc.SubprotocolJSON, size, false)
	}}
	wsrpcClientBinary = impl{name: "wsrpc-client-binary", listen: func(ctx context.Context, size int) (endpoint, error) {
		return listenWSRPC(ctx, rpc.SubprotocolBinary, size, true)
	}}
	wsrpcClientJSON = impl{name: "wsrpc-client-json", listen: func(ctx context.Context, size int) (endpoint, error) {
		return listenWSRPC(ctx, rpc.SubprotocolJSON, size, true)
	}}
)

// echoHandler answers every call with its params.
var echoHandler = handler.HandlerFunc(func(_ context.Context, req *rpc.Request) ([]byte, error) {
	return req.Params, nil
})

type wsrpcServer struct {
	srv         *server.Server
	url         string
	serve       chan error
	subprotocol string
	size        int
	viaClient   bool // dial with client.Dial
}

func listenWSRPC(_ context.Context, subprotocol string, size int, viaClient bool) (endpoint, error) {
	srv, err := server.New(echoHandler)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &wsrpcServer{srv: srv, url: "ws://" + ln.Addr().String() + "/", serve: make(chan error, 1),
		subprotocol: subprotocol, size: size, viaClient: viaClient}
	go func() { s.serve <- srv.Serve(ln) }() // owned: waited for in close
	return s, nil
}

func (s *wsrpcServer) dial(ctx context.Context) (client, error) {
	if s.viaClient {
		c, err := wsclient.Dial(ctx, s.url, rpc.WithSubprotocols(s.subprotocol))
		if err != nil {
			return nil, err
		}
		call := func(ctx context.Context, method string, params, result any) error {
			return c.Call(ctx, method, params, result)
		}
		return &wsrpcClient{call: call, closeFn: c.Close, params: wsrpcParams(s.subprotocol, s.size), size: s.size}, nil
	}
	tc, err := transport.Dial(ctx, s.url, &transport.DialOptions{Subprotocols: []string{s.subprotocol}})
	if err != nil {
		return nil, err
	}
	if tc.Subprotocol() != s.subprotocol {
		tc.CloseNow()
		return nil, errors.New("server chose subprotocol " + tc.Subprotocol())
	}
	p, err := rpc.New(tc)
	if err != nil {
		tc.CloseNow()
		return nil, err
	}
	return &wsrpcClient{call: p.Call, closeFn: p.Close, params: wsrpcParams(s.subprotocol, s.size), size: s.size}, nil
}

func (s *wsrpcServer) close() error {
	s.srv.Close()
	if err := <-s.serve; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// wsrpcParams returns params of exactly size bytes: opaque bytes for the
// binary codec, a JSON array holding one string for JSON-RPC.
func wsrpcParams(subprotocol string, size int) rpc.Raw {
	if subprotocol == rpc.SubprotocolBinary {
		return make(rpc.Raw, size)
	}
	return rpc.Raw(`["` + strings.Repeat("x", size-4) + `"]`)
}

// wsrpcClient makes echo calls with call: rpc.Peer.Call, or Client.Call.
type wsrpcClient struct {
	call    func(ctx context.Context, method string, params, result any) error
	closeFn func() error
	params  rpc.Raw
	size    int
}

func (c *wsrpcClient) caller() func() error {
	var params any = c.params // boxed once, as a caller reusing its params would
	var out rpc.Raw
	var result any = &out
	ctx := context.Background()
	return func() error {
		if err := c.call(ctx, "echo", params, result); err != nil {
			return err
		}
		if len(out) != c.size {
			return errShortReply
		}
		return nil
	}
}

func (c *wsrpcClient) close() error { return c.closeFn() }
