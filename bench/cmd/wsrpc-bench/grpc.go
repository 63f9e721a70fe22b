package main

import (
	"context"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
)

// grpcEcho is gRPC-go unary over loopback TCP without TLS: a service
// registered by hand (no protoc) whose one method echoes opaque bytes, with a
// codec that passes []byte through, so no protobuf work is measured.
var grpcEcho = impl{name: "grpc", listen: listenGRPC}

// bytesCodec passes a *[]byte through unchanged. Unmarshal copies, because
// gRPC may reuse the buffer it decodes from once Unmarshal returns.
type bytesCodec struct{}

const bytesCodecName = "wsrpc-bench-bytes"

func (bytesCodec) Name() string { return bytesCodecName }

func (bytesCodec) Marshal(v any) ([]byte, error) {
	p, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("bytes codec: cannot marshal %T", v)
	}
	return *p, nil
}

func (bytesCodec) Unmarshal(data []byte, v any) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("bytes codec: cannot unmarshal into %T", v)
	}
	*p = append((*p)[:0], data...)
	return nil
}

func init() { encoding.RegisterCodec(bytesCodec{}) }

// echoService is the service's handler type; it needs no method, the one
// unary method is the function below.
type echoService interface{}

type echoServer struct{}

const grpcEchoMethod = "/wsrpcbench.Echo/Echo"

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
	Metadata: "wsrpcbench.proto",
}

type grpcServer struct {
	srv   *grpc.Server
	addr  string
	serve chan error
	size  int
}

func listenGRPC(_ context.Context, size int) (endpoint, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := grpc.NewServer()
	srv.RegisterService(&echoServiceDesc, echoServer{})
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
	return &grpcClient{cc: cc, size: s.size}, nil
}

func (s *grpcServer) close() error {
	s.srv.Stop()
	return <-s.serve
}

type grpcClient struct {
	cc   *grpc.ClientConn
	size int
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

func (c *grpcClient) close() error { return c.cc.Close() }
