package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/server"
)

// liveServer is a wsrpc server serving on a loopback port of this process,
// for the churn and soak modes.
type liveServer struct {
	srv    *server.Server
	url    string
	served chan error
}

func startServer(h handler.Handler, opts ...server.Option) (*liveServer, error) {
	srv, err := server.New(h, opts...)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &liveServer{srv: srv, url: "ws://" + ln.Addr().String() + "/", served: make(chan error, 1)}
	go func() { s.served <- srv.Serve(ln) }() // owned: waited for in shutdown
	return s, nil
}

// shutdown stops the server gracefully, at most for d, then at once.
func (s *liveServer) shutdown(d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	s.srv.Close()
	if serr := <-s.served; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
