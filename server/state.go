package server

import (
	"net/http"
	"strconv"
)

// State is where a [Server] is in its life, as its health handlers report
// it: ready, then draining from the moment Shutdown (or Close) begins, then
// stopped once every connection has ended. It never goes back.
type State int

const (
	// StateReady: the Server accepts handshakes and serves its connections.
	StateReady State = iota
	// StateDraining: Shutdown or Close has begun. Readiness is off; during
	// the [WithReadyDelay] handshakes are still accepted, then they are
	// refused and the connections are told to go and drained.
	StateDraining
	// StateStopped: Shutdown or Close has returned; every connection has
	// ended.
	StateStopped
)

// String returns "ready", "draining" or "stopped".
func (st State) String() string {
	switch st {
	case StateReady:
		return "ready"
	case StateDraining:
		return "draining"
	case StateStopped:
		return "stopped"
	}
	return "State(" + strconv.Itoa(int(st)) + ")"
}

// State returns the Server's state.
func (s *Server) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// ReadyHandler returns an http.Handler for a readiness probe (/readyz): 200
// with the body "ready" while the Server is ready, 503 with its state
// ("draining", "stopped") from the moment Shutdown begins, before the
// Server refuses anything when [WithReadyDelay] is set. A load balancer
// that polls it stops sending new connections to a Server that is going
// away. It answers GET and HEAD (405 otherwise), is never cached, and may
// be mounted on any mux; it does no Host or Origin check.
//
// Mounted on the mux the Server's own http.Server serves (see
// [Server.HTTPServer]), it stops answering at all when Shutdown closes that
// listener, after the ready delay; serve it from a listener of its own to
// keep it answering 503 until the process exits.
func (s *Server) ReadyHandler() http.Handler {
	return healthHandler{s: s, ok: func(st State) bool { return st == StateReady }}
}

// LiveHandler returns an http.Handler for a liveness probe (/livez): 200
// with the state ("ready", "draining") while the Server serves, draining
// included, so that an orchestrator does not kill a process that is
// finishing its calls, and 503 "stopped" once Shutdown or Close has
// returned. Like [Server.ReadyHandler] it answers GET and HEAD, is never
// cached, may be mounted on any mux, and keeps answering through the
// drain only on a listener the Server does not close.
func (s *Server) LiveHandler() http.Handler {
	return healthHandler{s: s, ok: func(st State) bool { return st != StateStopped }}
}

// healthHandler answers a probe with the Server's state.
type healthHandler struct {
	s  *Server
	ok func(State) bool
}

func (h healthHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Content-Type", "text/plain; charset=utf-8")
	hdr.Set("X-Content-Type-Options", "nosniff")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	st := h.s.State()
	code := http.StatusOK
	if !h.ok(st) {
		code = http.StatusServiceUnavailable
	}
	body := st.String() + "\n"
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(body))
	}
}
