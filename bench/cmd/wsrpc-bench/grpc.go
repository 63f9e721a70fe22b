package main

import (
	"context"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
)

// grpcEcho is gRPC-go unary over loopback TCP without TLS: a service
// registered by hand (no protoc) whose unary method echoes opaque bytes (and
// whose server stream sends them, for -stream), with a codec that passes
// []byte through, so no protobuf work is measured.
var grpcEcho = impl{name: "grpc", listen: listenGRPC}

// bytesCodec passes a *[]byte through unchanged, as an encoding.CodecV2:
// Marshal hands gRPC the caller's bytes without a copy, and Unmarshal
// copies the received buffers straight into the caller's slice, reusing
// its capacity (gRPC frees the buffers once Unmarshal returns). A codec of
// the older encoding.Codec interface would have gRPC join the buffers into
// a fresh slice first, an allocation per message that a user who reuses
// its message does not need.
type bytesCodec struct{}

const bytesCodecName = "wsrpc-bench-bytes"

func (bytesCodec) Name() string { return bytesCodecName }

func (bytesCodec) Marshal(v any) (mem.BufferSlice, error) {
	p, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("bytes codec: cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(*p)}, nil
}

func (bytesCodec) Unmarshal(data mem.BufferSlice, v any) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("bytes codec: cannot unmarshal into %T", v)
	}
	n := data.Len()
	if cap(*p) < n {
		*p = make([]byte, n)
	}
	*p = (*p)[:n]
	data.CopyTo(*p)
	return nil
}

func init() { encoding.RegisterCodecV2(bytesCodec{}) }

// echoService is the service's handler type; it needs no method, the
// unary method and the stream are the functions below.
type echoService interface{}

// echoServer holds what the stream sends: one payload of the cell's size.
type echoServer struct{ payload []byte }

const (
	grpcEchoMethod   = "/wsrpcbench.Echo/Echo"
	grpcStreamMethod = "/wsrpcbench.Echo/Stream"
)

var echoServiceDesc = grpc.ServiceDesc{
	ServiceName: "wsrpcbench.Echo",
	HandlerType: (*echoService)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Echo",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := new([]byte)
			if err := dec(in); err != nil {
				return nil, err
			}
			if interceptor == nil {
				return in, nil
			}
			info := &grpc.UnaryServerInfo{Server: srv, FullMethod: grpcEchoMethod}
			return interceptor(ctx, in, info, func(_ context.Context, req any) (any, error) { return req, nil })
		},
	}},
	// Stream is server streaming: after the (empty) request it sends the
	// payload again and again until the caller cancels.
	Streams: []grpc.StreamDesc{{
		StreamName:    "Stream",
		ServerStreams: true,
		Handler: func(srv any, ss grpc.ServerStream) error {
			var in []byte
			if err := ss.RecvMsg(&in); err != nil {
				return err
			}
			out := srv.(*echoServer).payload
			for {
				if err := ss.SendMsg(&out); err != nil {
					return err
				}
			}
		},
	}},
	Metadata: "wsrpcbench.proto",
}

type grpcServer struct {
	srv   *grpc.Server
	addr  string
	serve chan error
	size  int
	own   bool // streams receive each result into a fresh slice
}

func listenGRPC(_ context.Context, size int) (endpoint, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := grpc.NewServer()
	srv.RegisterService(&echoServiceDesc, &echoServer{payload: make([]byte, size)})
	s := &grpcServer{srv: srv, addr: ln.Addr().String(), serve: make(chan error, 1), size: size}
	go func() { s.serve <- srv.Serve(ln) }() // owned: waited for in close
	return s, nil
}

func (s *grpcServer) dial(context.Context) (client, error) {
	cc, err := grpc.NewClient("passthrough:///"+s.addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.CallContentSubtype(bytesCodecName)))
	if err != nil {
		return nil, err
	}
	cc.Connect()
	return &grpcClient{cc: cc, size: s.size, own: s.own}, nil
}

func (s *grpcServer) close() error {
	s.srv.Stop()
	return <-s.serve
}

type grpcClient struct {
	cc   *grpc.ClientConn
	size int
	own  bool // see grpcServer
}

func (c *grpcClient) caller() func() error {
	in := make([]byte, c.size)
	var out []byte
	var args, reply any = &in, &out
	ctx := context.Background()
	return func() error {
		if err := c.cc.Invoke(ctx, grpcEchoMethod, args, reply); err != nil {
			return err
		}
		if len(out) != c.size {
			return errShortReply
		}
		return nil
	}
}

// openStream opens the server stream and receives its results: the window
// is wsrpc's, gRPC keeps its own flow control (HTTP/2 windows).
func (c *grpcClient) openStream(ctx context.Context, _ int) (recv func() error, end func(), err error) {
	ctx, cancel := context.WithCancel(ctx)
	cs, err := c.cc.NewStream(ctx, &echoServiceDesc.Streams[0], grpcStreamMethod)
	if err == nil {
		in := []byte{}
		if err = cs.SendMsg(&in); err == nil {
			err = cs.CloseSend()
		}
	}
	if err != nil {
		cancel()
		return nil, nil, err
	}
	var out []byte
	recv = func() error {
		if c.own {
			out = nil // what generated code does: a new message per Recv
		}
		if err := cs.RecvMsg(&out); err != nil {
			return err
		}
		if len(out) != c.size {
			return errShortReply
		}
		return nil
	}
	return recv, cancel, nil
}

func (c *grpcClient) close() error { return c.cc.Close() }
