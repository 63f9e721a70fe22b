package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// A slow reader is a client that asks for large replies and never reads
// them: a raw connection (transport.Dial, JSON-RPC, no heartbeat, an
// unbuffered receive queue) whose socket has a small receive buffer. It
// sends at once enough calls to "big" that their replies exceed what the
// kernel can buffer on the server's side (on loopback the send buffer grows
// to the tcp_wmem maximum, 4 MiB by default), then waits. Its reader takes in one message and blocks on
// the Recv channel nobody reads, so from then on nothing is read: no reply,
// no broadcast, no ping. The server's writer blocks, and the server drops
// the connection when its write timeout or its heartbeat gives up, or when
// a reply pushed to it would take its queue past MaxQueuedBytes (1008); the
// server's disconnect hook tells the slow reader, which is then replaced.
// Being refused (503) or dropped is the expected outcome, never an error.

const (
	slowBeyond  = 2 << 20 // bytes asked for beyond the server's largest send buffer
	slowRcvBuf  = 4 << 10
	slowRefusal = 100 * time.Millisecond // pause after a refused handshake
	slowMaxLife = 60 * time.Second       // a server that has not dropped one by then is a finding
)

// slowCalls is how many calls of reply bytes a slow reader sends: enough
// to ask for slowBeyond more than the largest send buffer the kernel gives
// a socket.
func slowCalls(reply int) int {
	return (tcpWmemMax() + slowBeyond + reply - 1) / reply
}

// tcpWmemMax is the largest send buffer the kernel gives a TCP socket (the
// last field of tcp_wmem; 4 MiB when it cannot be read).
func tcpWmemMax() int {
	if b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_wmem"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 3 {
			if n, err := strconv.Atoi(f[2]); err == nil {
				return n
			}
		}
	}
	return 4 << 20
}

// slowClient dials slow readers: a small receive buffer, set before
// connecting so that the window the client advertises stays small.
var slowClient = newRecordingClient(&net.Dialer{
	Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, slowRcvBuf)
		})
		return errors.Join(err, serr)
	},
})

// slowReaders maps the open slow readers, by their address as the server
// sees it, to a channel the server's disconnect hook closes.
type slowReaders struct {
	mu    sync.Mutex
	gone  map[string]chan struct{}
	other string // the first reason for a drop other than the two timeouts
}

func (r *slowReaders) watch(addr string) <-chan struct{} {
	ch := make(chan struct{})
	r.mu.Lock()
	r.gone[addr] = ch
	r.mu.Unlock()
	return ch
}

// forget stops watching addr; it reports whether it was still watched (not
// dropped by the server meanwhile).
func (r *slowReaders) forget(addr string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.gone[addr]
	delete(r.gone, addr)
	return ok
}

// ended is the server's disconnect hook: it counts the slow readers the
// server dropped, by reason, and tells them.
func (r *slowReaders) ended(c *rpc.Peer, err error, n *soakCounters) {
	addr := c.RemoteAddr()
	if addr == nil {
		return
	}
	r.mu.Lock()
	ch, ok := r.gone[addr.String()]
	delete(r.gone, addr.String())
	r.mu.Unlock()
	if !ok {
		return
	}
	n.slowDropped.Add(1)
	switch {
	case errors.Is(err, transport.ErrWriteTimeout):
		n.slowWriteTimeout.Add(1)
	case errors.Is(err, transport.ErrPeerUnresponsive):
		n.slowPong.Add(1)
	case errors.Is(err, transport.ErrSlowReader):
		n.slowQueueFull.Add(1)
	default:
		r.mu.Lock()
		if r.other == "" {
			r.other = fmt.Sprint(err)
		}
		r.mu.Unlock()
	}
	close(ch)
}

// slowReader keeps one slow reader open, replacing it when the server
// drops it.
func (s *soakRun) slowReader(ctx context.Context) {
	for ctx.Err() == nil {
		s.slowOnce(ctx)
	}
}

func (s *soakRun) slowOnce(ctx context.Context) {
	pause := func(d time.Duration) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
	slot := &dialSlot{}
	dctx, cancel := context.WithTimeout(ctx, soakHandshake)
	tc, err := transport.Dial(context.WithValue(dctx, dialSlotKey{}, slot), s.url, &transport.DialOptions{
		HTTPClient:   slowClient,
		Subprotocols: []string{rpc.SubprotocolJSON},
		ConnOptions:  transport.ConnOptions{HeartbeatInterval: -1, RecvQueue: -1},
	})
	cancel()
	if err != nil {
		if slot.nc != nil {
			slot.nc.Close()
		}
		var he *transport.HandshakeError
		switch {
		case ctx.Err() != nil:
		case errors.As(err, &he) && he.StatusCode == http.StatusServiceUnavailable:
			s.n.slowRefused.Add(1)
		default:
			s.n.slowErrs.Add(1)
			s.fail("slow readers", err)
		}
		pause(slowRefusal)
		return
	}
	defer tc.CloseNow()
	addr := slot.nc.LocalAddr().String()
	gone := s.slow.watch(addr)
	s.n.slowOpened.Add(1)
	for i := range s.slowCalls {
		msg := fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"big"}`, i+1)
		if err := tc.Send(ctx, transport.Message{Type: transport.Text, Data: msg}); err != nil {
			break // the server may drop it at any time: wait for the hook below
		}
	}
	life := time.NewTimer(slowMaxLife)
	defer life.Stop()
	select {
	case <-gone: // dropped by the server, as expected
	case <-ctx.Done():
		if s.slow.forget(addr) {
			s.n.slowKept.Add(1)
		}
	case <-life.C:
		if s.slow.forget(addr) {
			s.n.slowErrs.Add(1)
			s.fail("slow readers", fmt.Errorf("the server did not drop a reader that never reads within %s", slowMaxLife))
		}
	}
}
