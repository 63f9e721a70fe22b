package cli

import (
	"errors"
	"log/slog"
	"net"
	"net/http"

	"github.com/wsrpc/wsrpc/server"
)

// The paths of the health checks, on the main listener and on --health-addr.
const (
	readyPath = "/readyz"
	livePath  = "/livez"
)

// mountHealth mounts srv's readiness and liveness handlers on mux.
func mountHealth(mux *http.ServeMux, srv *server.Server) {
	mux.Handle(readyPath, srv.ReadyHandler())
	mux.Handle(livePath, srv.LiveHandler())
}

// healthServer serves the health checks on a listener of its own, which the
// server's Shutdown does not close: probes keep getting answers (503 from
// /readyz, 200 from /livez) through the drain.
type healthServer struct {
	hs     *http.Server
	url    string // http://host:port
	served chan struct{}
}

// listenHealth starts serving srv's health checks on addr, on one
// goroutine that close waits for.
func listenHealth(srv *server.Server, addr string, logger *slog.Logger) (*healthServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mountHealth(mux, srv)
	h := &healthServer{
		// The same bounds as the server's own http.Server: a probe needs
		// a few hundred bytes.
		hs: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: server.DefaultReadHeaderTimeout,
			IdleTimeout:       server.DefaultIdleTimeout,
			MaxHeaderBytes:    server.DefaultMaxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
		url:    "http://" + displayAddr(ln.Addr()),
		served: make(chan struct{}),
	}
	go func() { // owned: close waits for it
		defer close(h.served)
		if err := h.hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			logger.Error("health checks: serving failed", "err", err)
		}
	}()
	return h, nil
}

// close stops the health listener and waits for its goroutine.
func (h *healthServer) close() {
	h.hs.Close()
	<-h.served
}
