package server_test

import (
	"errors"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/wstest"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
	"github.com/wsrpc/wsrpc/transport"
)

// TestHeartbeatOptionOrder: rpc.WithHeartbeat applies whether it comes
// before or after rpc.WithTransport, and whatever server options come
// between them.
func TestHeartbeatOptionOrder(t *testing.T) {
	hb := rpc.WithHeartbeat(50*time.Millisecond, 50*time.Millisecond)
	tr := rpc.WithTransport(transport.ConnOptions{ReadLimit: 1 << 16})
	mc := server.WithMaxConns(10)
	for name, order := range map[string][]server.Option{
		"heartbeat first":        {hb, tr},
		"transport first":        {tr, hb},
		"server options between": {tr, mc, server.WithReadHeaderTimeout(time.Second), hb},
		"server options around":  {mc, hb, tr, server.WithTrustedProxies("127.0.0.1")},
	} {
		t.Run(name, func(t *testing.T) {
			ended := make(chan error, 1)
			s := newServer(t, append(order, server.WithOnDisconnect(func(_ *rpc.Peer, err error) { ended <- err }))...)
			url := start(t, s)
			p, _, err := wstest.DialPeer(ctxT(t), url, nil) // never reads, so never answers a ping
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			select {
			case err := <-ended:
				if !errors.Is(err, transport.ErrPeerUnresponsive) {
					t.Fatalf("the connection ended with %v, want ErrPeerUnresponsive", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("a client that answers no ping was not dropped: the heartbeat was lost")
			}
		})
	}
}
