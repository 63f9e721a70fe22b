package main

import (
	"context"
	"net"
	"net/rpc"
	"sync"
)

// netRPC is the standard library's net/rpc over plain TCP with gob: the
// reference a Go user would otherwise reach for.
var netRPC = impl{name: "net/rpc", listen: listenNetRPC}

// EchoService is the net/rpc service: the same echo, []byte in and out.
type EchoService struct{}

// Echo returns its argument.
func (EchoService) Echo(in []byte, out *[]byte) error { *out = in; return nil }

type netRPCServer struct {
	ln   net.Listener
	size int

	wg    sync.WaitGroup // the accept loop and one per connection
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func listenNetRPC(_ context.Context, size int) (endpoint, error) {
	srv := rpc.NewServer()
	if err := srv.Register(EchoService{}); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &netRPCServer{ln: ln, size: size, conns: make(map[net.Conn]struct{})}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			s.wg.Go(func() {
				srv.ServeConn(c) // closes c when the client goes
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			})
		}
	})
	return s, nil
}

func (s *netRPCServer) dial(context.Context) (client, error) {
	c, err := rpc.Dial("tcp", s.ln.Addr().String())
	if err != nil {
		return nil, err
	}
	return &netRPCClient{c: c, size: s.size}, nil
}

func (s *netRPCServer) close() error {
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

type netRPCClient struct {
	c    *rpc.Client
	size int
}

func (c *netRPCClient) caller() func() error {
	var out []byte
	var args, reply any = make([]byte, c.size), &out
	return func() error {
		if err := c.c.Call("EchoService.Echo", args, reply); err != nil {
			return err
		}
		if len(out) != c.size {
			return errShortReply
		}
		return nil
	}
}

func (c *netRPCClient) close() error { return c.c.Close() }
