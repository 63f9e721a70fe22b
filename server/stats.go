package server

import (
	"errors"
	"net/http"
	"sync/atomic"

	"github.com/wsrpc/wsrpc/transport"
)

// Refusal says why the server refused a handshake, for [Stats.Refused].
type Refusal int

// The reasons a handshake is refused. Their String forms are the values of
// the reason label of the wsrpc_server_handshakes_refused_total metric
// (contrib/prometheus, and `wsrpc serve --metrics-addr`).
const (
	RefusedHost        Refusal = iota // "host": the Host is not allowed (403; WithAllowedHosts)
	RefusedUpgrade                    // "upgrade": not a WebSocket upgrade request (426)
	RefusedBadRequest                 // "bad_request": an invalid WebSocket handshake (400, 405, ...)
	RefusedOrigin                     // "origin": a cross-origin request not allowed (403; WithOriginPatterns)
	RefusedMaxConns                   // "max_conns": too many connections (503; WithMaxConns)
	RefusedDraining                   // "draining": the server is refusing new work, shutting down (503)
	RefusedAuth                       // "auth": the WithAuth hook refused it, or its credential had expired (401, 403)
	RefusedSubprotocol                // "subprotocol": no subprotocol this server speaks (1008 right after the upgrade)
	RefusedRate                       // "rate": over the handshake rate limit (503; WithHandshakeRate)
	numRefusals
)

var refusalNames = [numRefusals]string{
	RefusedHost:        "host",
	RefusedUpgrade:     "upgrade",
	RefusedBadRequest:  "bad_request",
	RefusedOrigin:      "origin",
	RefusedMaxConns:    "max_conns",
	RefusedDraining:    "draining",
	RefusedAuth:        "auth",
	RefusedSubprotocol: "subprotocol",
	RefusedRate:        "rate",
}

// String returns the reason's name, such as "origin".
func (r Refusal) String() string {
	if r < 0 || r >= numRefusals {
		return "unknown"
	}
	return refusalNames[r]
}

// Refusals returns every [Refusal], in order: what a collector iterates
// over to report each reason, zero counts included.
func Refusals() []Refusal {
	out := make([]Refusal, numRefusals)
	for i := range out {
		out[i] = Refusal(i)
	}
	return out
}

// Stats are a Server's state and counters since [New], read by
// [Server.Stats]: what a metrics collector reports at each scrape.
type Stats struct {
	State    State
	Conns    int    // open connections now (those [Server.Conns] returns)
	Accepted uint64 // handshakes that became connections
	// Refused counts the refused handshakes by reason; every reason is
	// present.
	Refused map[Refusal]uint64
	// The data messages and payload bytes of every connection, open or
	// ended, as [transport.Conn.Stats] counts them: In is what clients
	// sent, Out what the server sent them. A connection's counts join the
	// sums when it is registered (just after its handshake; it may have
	// served a call by then). They never decrease.
	transport.Stats
}

// counters are the Server's own: atomic, so that counting costs no lock.
type counters struct {
	accepted atomic.Uint64
	refused  [numRefusals]atomic.Uint64
	// ended is the traffic of the connections that have left the
	// registry; guarded by Server.mu, so that a connection's counts move
	// from the open ones to it in one step.
	ended transport.Stats
}

// refuse counts a refused handshake.
func (s *Server) refuse(r Refusal) { s.counts.refused[r].Add(1) }

// Stats returns the server's state and counters. It is safe to call at any
// time. It locks the registry while it sums the open connections' counts (a
// few atomic loads each), so call it at a scrape's pace, not per call.
func (s *Server) Stats() Stats {
	st := Stats{Refused: make(map[Refusal]uint64, numRefusals)}
	for r := range numRefusals {
		st.Refused[r] = s.counts.refused[r].Load()
	}
	s.mu.Lock()
	st.State = s.state
	st.Accepted = s.counts.accepted.Load() // counted under mu, with the registry
	st.Conns = len(s.conns)
	st.Stats = s.counts.ended
	for _, c := range s.conns {
		st.Stats = st.Stats.Add(c.peer.Conn().Stats())
	}
	s.mu.Unlock()
	return st
}

// leftRegistryLocked moves an ended connection's traffic to the ended counts;
// the caller holds s.mu and has just removed c from the registry.
func (s *Server) leftRegistryLocked(c *conn) {
	s.counts.ended = s.counts.ended.Add(c.peer.Conn().Stats())
}

// acceptRefusal is the reason for a handshake transport.Accept refused.
func acceptRefusal(err error) Refusal {
	var ae *transport.AcceptError
	if errors.As(err, &ae) && ae.Status == http.StatusForbidden {
		return RefusedOrigin
	}
	return RefusedBadRequest
}
