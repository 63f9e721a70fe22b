package server

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
)

// Broadcast sends a notification to every open connection for which keep
// returns true (every one when keep is nil). The notification is encoded
// once per wire codec (params are encoded with the server's value codec; an
// rpc.Raw is sent as it is), and every connection it is queued on shares
// that one buffer. On JSON-RPC connections params must be a JSON array or
// object, and Broadcast returns an error before sending anything if they
// are not. A connection that does not read what is queued for it is closed
// (1008) once its send queue would pass its byte bound, rather than holding
// up the broadcast or growing memory. Sends run concurrently (up to 64 at a
// time), each bounded by ctx. It returns how many connections the
// notification was queued on; connections that are closing, or whose send
// did not complete before ctx ended, are not counted.
//
// A handler may broadcast: [FromContext] gives it its Server. A broadcast
// does not pass through the connections' outgoing middleware
// (rpc.WithOutgoingMiddleware): it is one message shared by all of them.
func (s *Server) Broadcast(ctx context.Context, method string, params any, keep func(*rpc.Peer) bool) (int, error) {
	type target struct {
		peer *rpc.Peer
		msg  *rpc.Encoded
	}
	// One encoding per wire: the first peer of each group encodes it, and
	// every peer of the group shares it (they share the server's value
	// codec too).
	type group struct {
		first *rpc.Peer
		msg   *rpc.Encoded
	}
	var groups []group
	var targets []target
	for _, p := range s.Conns() {
		if keep != nil && !keep(p) {
			continue
		}
		var msg *rpc.Encoded
		for _, g := range groups {
			if g.first.SameWire(p) {
				msg = g.msg
				break
			}
		}
		if msg == nil {
			var err error
			if msg, err = encodeNotification(p, method, params); err != nil {
				return 0, err
			}
			groups = append(groups, group{first: p, msg: msg})
		}
		targets = append(targets, target{peer: p, msg: msg})
	}
	var sent atomic.Int64
	var g errgroup.Group
	g.SetLimit(64)
	for _, t := range targets {
		g.Go(func() error {
			if t.peer.SendEncoded(ctx, t.msg) == nil {
				sent.Add(1)
			}
			return nil
		})
	}
	g.Wait()
	return int(sent.Load()), ctx.Err()
}

// encodeNotification encodes a broadcast once for p's wire codec.
func encodeNotification(p *rpc.Peer, method string, params any) (*rpc.Encoded, error) {
	var raw rpc.Raw
	switch v := params.(type) {
	case nil:
	case rpc.Raw:
		raw = v
	default:
		b, err := p.Codec().Marshal(params)
		if err != nil {
			return nil, fmt.Errorf("wsrpc: broadcast: encode params: %w", err)
		}
		raw = b
	}
	e, err := p.EncodeNotification(method, raw)
	if err != nil {
		return nil, fmt.Errorf("wsrpc: broadcast: %w", err)
	}
	return e, nil
}

// Publish publishes v on topic through the hub of [WithHub], to every
// subscriber on every node (see pubsub.Hub.Publish). Without a hub it
// returns an error. A handler reaches its Server with [FromContext].
func (s *Server) Publish(ctx context.Context, topic string, v any) (pubsub.Position, error) {
	if s.opts.hub == nil {
		return pubsub.Position{}, errors.New("wsrpc: Publish: the server has no pub/sub hub (server.WithHub)")
	}
	return s.opts.hub.Publish(ctx, topic, v)
}

// Hub returns the hub of [WithHub], or nil.
func (s *Server) Hub() *pubsub.Hub { return s.opts.hub }
