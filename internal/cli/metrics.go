package cli

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/internal/promtext"
	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/server"
)

// figures are what serve's /metrics reports: the server's, its hub's (nil:
// none) and the calls served and made, counted by handler.Instrument.
type figures struct {
	srv           *server.Server
	hub           *pubsub.Hub
	incoming, out *handler.MemoryMetrics
}

func newFigures() *figures {
	bounds := promtext.DurationBounds()
	return &figures{incoming: handler.NewMemoryMetrics(bounds...), out: handler.NewMemoryMetrics(bounds...)}
}

// ServeHTTP writes the figures in the Prometheus text format.
func (f *figures) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var pw promtext.Writer
	promtext.WriteServer(&pw, f.srv.Stats())
	if f.hub != nil {
		promtext.WriteHub(&pw, f.hub.Stats())
	}
	promtext.WriteCallDirections(&pw, f.incoming.Snapshot(), f.out.Snapshot())
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(pw.Bytes())
}

// metricsListener is serve's second listener: /metrics, and with --pprof
// net/http/pprof's handlers at /debug/pprof/. It outlives the graceful
// shutdown of the RPC endpoint, so that the drain can be watched.
type metricsListener struct {
	hs       *http.Server
	url      string // of /metrics
	loopback bool   // it listens on a loopback address only
	served   chan error
}

// listenMetrics starts the metrics listener on addr.
func listenMetrics(addr string, f *figures, withPprof bool) (*metricsListener, error) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", f)
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	m := &metricsListener{
		// No WriteTimeout: a CPU profile takes its ?seconds= to write.
		hs: &http.Server{Handler: mux, ReadHeaderTimeout: server.DefaultReadHeaderTimeout,
			IdleTimeout: server.DefaultIdleTimeout, MaxHeaderBytes: server.DefaultMaxHeaderBytes},
		url:      "http://" + displayAddr(ln.Addr()) + "/metrics",
		loopback: isLoopback(ln.Addr()),
		served:   make(chan error, 1),
	}
	go func() { // owned: close waits for it
		err := m.hs.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		m.served <- err
	}()
	return m, nil
}

// metricsCloseTimeout bounds how long close waits for scrapes (and
// profiles) under way.
const metricsCloseTimeout = 2 * time.Second

// close stops the listener, letting requests under way finish for a
// moment, and waits for its goroutine.
func (m *metricsListener) close() {
	ctx, cancel := context.WithTimeout(context.Background(), metricsCloseTimeout)
	defer cancel()
	if m.hs.Shutdown(ctx) != nil {
		m.hs.Close()
	}
	<-m.served
}

// isLoopback reports whether a listener's address is on loopback only.
func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
