package client

import (
	"errors"
	"fmt"

	"github.com/wsrpc/wsrpc/rpc"
)

// ErrClientClosed is matched (errors.Is) by the error of every call that
// [Client.Close] ended or that was made after it. A call that never reached
// the server also carries an *[rpc.Error] with [rpc.CodeUnavailable]; one
// that was in flight carries [rpc.CodeConnectionLost] (outcome unknown).
// It is not transport.ErrClosed, which a connection returns once it is
// closed.
var ErrClientClosed = errors.New("wsrpc: client closed")

// closedErr is why a call ended because the client closed: cause is what the
// call itself saw.
func closedErr(cause error) error { return fmt.Errorf("%w: %w", ErrClientClosed, cause) }

// errNotSent is the error of a call the client closed before it was sent.
func errNotSent() error {
	return closedErr(&rpc.Error{Code: rpc.CodeUnavailable, Message: "the request was not sent"})
}

// errQueueFull is the error of a new call made while the wait queue is full.
func errQueueFull(size int) error {
	return &rpc.Error{Code: rpc.CodeUnavailable,
		Message: fmt.Sprintf("queue full: %d calls already waiting for a connection; the request was not sent", size)}
}

// errNoReconnect is the error of calls made once the connection has ended
// with reconnection off.
func errNoReconnect(why error) error {
	msg := "reconnect is off and the connection is gone; the request was not sent"
	if why != nil {
		msg += " (" + why.Error() + ")"
	}
	return &rpc.Error{Code: rpc.CodeUnavailable, Message: msg}
}
