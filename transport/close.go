package transport

import (
	"errors"
	"fmt"

	"github.com/coder/websocket"
)

// StatusCode is a WebSocket close code (RFC 6455 section 7.4).
type StatusCode = websocket.StatusCode

// Close codes used by this module. Any code from 1000 to 4999 that RFC 6455
// allows on the wire may be passed to [Conn.Close].
const (
	StatusNormalClosure   = websocket.StatusNormalClosure           // 1000
	StatusGoingAway       = websocket.StatusGoingAway               // 1001
	StatusProtocolError   = websocket.StatusProtocolError           // 1002
	StatusUnsupportedData = websocket.StatusUnsupportedData         // 1003
	StatusNoStatus        = websocket.StatusNoStatusRcvd            // 1005, never sent
	StatusAbnormal        = websocket.StatusAbnormalClosure         // 1006, never sent
	StatusInvalidPayload  = websocket.StatusInvalidFramePayloadData // 1007
	StatusPolicyViolation = websocket.StatusPolicyViolation         // 1008
	StatusMessageTooBig   = websocket.StatusMessageTooBig           // 1009
	StatusInternalError   = websocket.StatusInternalError           // 1011
	StatusServiceRestart  = websocket.StatusServiceRestart          // 1012
	StatusTryAgainLater   = websocket.StatusTryAgainLater           // 1013
)

// Sentinel causes carried by [CloseError.Err]; test for them with errors.Is.
var (
	// ErrClosed is returned by Send once the connection is closing or closed.
	ErrClosed = errors.New("wsrpc: connection closed")
	// ErrMessageTooBig: the peer sent a message larger than the read limit (close code 1009).
	ErrMessageTooBig = errors.New("wsrpc: message exceeds the read limit")
	// ErrInvalidUTF8: the peer sent a text message that is not valid UTF-8 (close code 1007).
	ErrInvalidUTF8 = errors.New("wsrpc: text message is not valid UTF-8")
	// ErrPeerUnresponsive: the peer did not answer a ping within the pong timeout.
	ErrPeerUnresponsive = errors.New("wsrpc: peer stopped answering pings")
	// ErrWriteTimeout: a message could not be written within the write timeout.
	ErrWriteTimeout = errors.New("wsrpc: write timed out")
	// ErrSlowReader: the peer did not read what was queued for it, and a Push
	// would have taken the queue past MaxQueuedBytes (close code 1008).
	ErrSlowReader = errors.New("wsrpc: peer reads too slowly: outgoing queue full")
	// ErrMessageTimeout: the peer started a message and did not finish it
	// within MessageTimeout (close code 1008).
	ErrMessageTimeout = errors.New("wsrpc: message not finished in time")
	// ErrMessageAbandoned: a message sent by [Conn.SendReader] could not be
	// finished once its first frame had gone out (its ctx ended, or its
	// reader failed), and since a half-sent message cannot be taken back
	// the connection was closed (close code 1011).
	ErrMessageAbandoned = errors.New("wsrpc: message abandoned part-way")
)

// CloseError says why a connection ended. [Conn.Err] returns one once the
// connection has ended, whatever the reason.
type CloseError struct {
	// Code is the close code: the one received from the peer when Remote is
	// true, the one sent otherwise. 1006 (StatusAbnormal) means no close frame
	// was exchanged (the network failed or a side closed without a handshake).
	Code StatusCode
	// Reason is the close reason that went with Code (at most 123 bytes).
	Reason string
	// Remote is true when the peer (or the network) ended the connection and
	// false when this side did.
	Remote bool
	// Err is the underlying cause, if any: one of the sentinels above, or an
	// I/O error from the network.
	Err error
}

func (e *CloseError) Error() string {
	side := "closed by this side"
	if e.Remote {
		side = "closed by peer"
	}
	msg := fmt.Sprintf("wsrpc: connection %s: %d %s", side, int(e.Code), StatusText(e.Code))
	if e.Reason != "" {
		msg += fmt.Sprintf(" %q", e.Reason)
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the cause.
func (e *CloseError) Unwrap() error { return e.Err }

var statusText = map[StatusCode]string{
	StatusNormalClosure:   "normal closure",
	StatusGoingAway:       "going away",
	StatusProtocolError:   "protocol error",
	StatusUnsupportedData: "unsupported data",
	StatusNoStatus:        "no status",
	StatusAbnormal:        "abnormal closure",
	StatusInvalidPayload:  "invalid payload",
	StatusPolicyViolation: "policy violation",
	StatusMessageTooBig:   "message too big",
	StatusInternalError:   "internal error",
	StatusServiceRestart:  "service restart",
	StatusTryAgainLater:   "try again later",
}

// StatusText returns a short lower-case name for a close code ("normal
// closure"), or "application code" for 4000–4999 and "code" otherwise.
func StatusText(code StatusCode) string {
	if s, ok := statusText[code]; ok {
		return s
	}
	if code >= 4000 && code <= 4999 {
		return "application code"
	}
	return "code"
}

// CloseStatus returns the close code carried by err, or -1 if err carries none.
func CloseStatus(err error) StatusCode {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return websocket.CloseStatus(err)
}

// maxReason is the longest close reason that fits a control frame (125 bytes
// minus the 2-byte code).
const maxReason = 123

// truncateReason cuts reason to fit a close frame without splitting a UTF-8
// sequence.
func truncateReason(reason string) string {
	if len(reason) <= maxReason {
		return reason
	}
	cut := maxReason
	for cut > 0 && reason[cut]&0xC0 == 0x80 {
		cut--
	}
	return reason[:cut]
}
