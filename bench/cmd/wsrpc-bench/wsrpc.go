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
	wsrpcBinary       = wsrpcImpl("wsrpc-binary", rpc.SubprotocolBinary, false, echo)
	wsrpcJSON         = wsrpcImpl("wsrpc-json", rpc.SubprotocolJSON, false, echo)
	wsrpcClientBinary = wsrpcImpl("wsrpc-client-binary", rpc.SubprotocolBinary, true, echo)
	wsrpcClientJSON   = wsrpcImpl("wsrpc-client-json", rpc.SubprotocolJSON, true, echo)
)

// wsrpcImpl is a wsrpc implementation: server.New serving the handler made
// by newHandler for the cell's subprotocol and size, dialed with client.Dial
// (viaClient) or transport.Dial + rpc.New.
func wsrpcImpl(name, subprotocol string, viaClient bool, newHandler func(subprotocol string, size int) handler.Handler) impl {
	return impl{name: name, listen: func(ctx context.Context, size int) (endpoint, error) {
		return listenWSRPC(ctx, subprotocol, size, viaClient, newHandler(subprotocol, size))
	}}
}

// echo makes echoHandler, whatever the cell.
func echo(string, int) handler.Handler { return echoHandler }

// echoHandler answers every call with its params.
var echoHandler = handler.HandlerFunc(func(_ context.Context, req *rpc.Request) ([]byte, error) {
	return req.Params, nil
})

// streamHandler makes the handler of -stream: every call is a stream that sends
// a payload of size bytes (wsrpcParams: opaque bytes, or valid JSON) again
// and again, with handler.Stream, until the caller closes it. A caller that
// did not ask for a stream gets handler.Stream's refusal once it sent too
// many.
func streamHandler(subprotocol string, size int) handler.Handler {
	payload := wsrpcParams(subprotocol, size)
	return handler.Stream(func(_ context.Context, _ struct{}, send func(rpc.Raw) error) error {
		for {
			if err := send(payload); err != nil {
				return err
			}
		}
	})
}

type wsrpcServer struct {
	srv         *server.Server
	url         string
	serve       chan error
	subprotocol string
	size        int
	viaClient   bool // dial with client.Dial
	recvValue   bool // read streams with Stream.RecvValue into a reused Raw
}

func listenWSRPC(_ context.Context, subprotocol string, size int, viaClient bool, h handler.Handler) (endpoint, error) {
	srv, err := server.New(h)
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
		return &wsrpcClient{call: call, stream: c.Stream, closeFn: c.Close, params: wsrpcParams(s.subprotocol, s.size), size: s.size, recvValue: s.recvValue}, nil
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
	return &wsrpcClient{call: p.Call, stream: p.Stream, closeFn: p.Close, params: wsrpcParams(s.subprotocol, s.size), size: s.size}, nil
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

// wsrpcClient makes echo calls with call: rpc.Peer.Call, or Client.Call;
// and opens streams with stream: rpc.Peer.Stream, or Client.Stream.
type wsrpcClient struct {
	call    func(ctx context.Context, method string, params, result any) error
	stream  func(ctx context.Context, method string, params any, opts ...rpc.StreamOption) (*rpc.Stream, error)
	closeFn func() error
	params  rpc.Raw
	size    int
	// recvValue: a stream's results are read with RecvValue into one
	// reused Raw, rather than with Recv.
	recvValue bool
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

// openStream opens a stream with the given window (0: the default) and
// receives its results, each of which must be the payload's size.
func (c *wsrpcClient) openStream(ctx context.Context, window int) (recv func() error, end func(), err error) {
	var opts []rpc.StreamOption
	if window > 0 {
		opts = append(opts, rpc.WithWindow(window))
	}
	s, err := c.stream(ctx, "stream", nil, opts...)
	if err != nil {
		return nil, nil, err
	}
	var into rpc.Raw
	recv = func() error {
		r, err := into, error(nil)
		if c.recvValue {
			err = s.RecvValue(&into)
			r = into
		} else {
			r, err = s.Recv()
		}
		if err != nil {
			return err
		}
		if len(r) != c.size {
			return errShortReply
		}
		return nil
	}
	return recv, s.Close, nil
}
