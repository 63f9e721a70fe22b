package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// dropKind is how a client connection ends, as the server sees it.
type dropKind int

const (
	// dropFIN closes the client's TCP socket under the WebSocket: no close
	// frame; the server reads the end of the stream.
	dropFIN dropKind = iota
	// dropRST sets SO_LINGER to 0 and closes the socket: no close frame;
	// the server's read fails with a connection reset.
	dropRST
	// dropClean is the closing handshake (1000).
	dropClean
)

func (k dropKind) String() string {
	switch k {
	case dropFIN:
		return "FIN"
	case dropRST:
		return "RST"
	default:
		return "clean"
	}
}

// tcpConn is a client connection (transport.Dial and rpc.New, as a minimal
// client) whose TCP socket is at hand, so that it can be dropped the way a
// crashed client or a lost network drops it.
type tcpConn struct {
	peer *rpc.Peer
	nc   net.Conn // the TCP connection under the WebSocket, as dialed
}

// dialSlot is where recordingClient's dialer leaves the connection it made
// for one handshake; it travels in the handshake's ctx.
type dialSlot struct{ nc net.Conn }

type dialSlotKey struct{}

// recordingClient performs handshakes over connections it records in the
// handshake ctx's dialSlot.
var recordingClient = newRecordingClient(&net.Dialer{})

// newRecordingClient returns an HTTP client dialing with d that records
// each connection it makes in the dialSlot of the dial's ctx.
// transport.Dial clones its Transport for every handshake and calls this
// DialContext through its own, so each dial has a slot of its own and no
// idle connection stays behind.
func newRecordingClient(d *net.Dialer) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := d.DialContext(ctx, network, addr)
			if slot, ok := ctx.Value(dialSlotKey{}).(*dialSlot); ok && err == nil {
				slot.nc = nc
			}
			return nc, err
		},
	}}
}

// dialTCP opens a connection to url with the binary codec and no client
// heartbeat.
func dialTCP(ctx context.Context, url string) (*tcpConn, error) {
	slot := &dialSlot{}
	tc, err := transport.Dial(context.WithValue(ctx, dialSlotKey{}, slot), url, &transport.DialOptions{
		HTTPClient:   recordingClient,
		Subprotocols: []string{rpc.SubprotocolBinary},
		ConnOptions:  transport.ConnOptions{HeartbeatInterval: -1},
	})
	if err != nil {
		if slot.nc != nil {
			slot.nc.Close()
		}
		return nil, err
	}
	if slot.nc == nil {
		tc.CloseNow()
		return nil, errors.New("dial: the TCP connection was not recorded")
	}
	p, err := rpc.New(tc)
	if err != nil {
		tc.CloseNow()
		return nil, err
	}
	return &tcpConn{peer: p, nc: slot.nc}, nil
}

// echo makes one call and checks its reply.
func (c *tcpConn) echo(ctx context.Context, params rpc.Raw) error {
	var out rpc.Raw
	if err := c.peer.Call(ctx, "echo", params, &out); err != nil {
		return fmt.Errorf("call: %w", err)
	}
	if len(out) != len(params) {
		return errShortReply
	}
	return nil
}

// drop ends the connection the way kind says, then stops the client's own
// goroutines (CloseNow writes nothing: the socket is already closed). It
// returns the error of a clean close.
func (c *tcpConn) drop(kind dropKind) error {
	var err error
	switch kind {
	case dropClean:
		err = c.peer.Close()
	case dropRST:
		if tcp, ok := c.nc.(*net.TCPConn); ok {
			tcp.SetLinger(0)
		}
		c.nc.Close()
	case dropFIN:
		c.nc.Close()
	}
	c.peer.CloseNow()
	return err
}
