package client

import "fmt"

// Status is where a [Client] is in its life cycle.
type Status int32

// The statuses of a Client. A Client returned by [Dial] starts Connected;
// Connecting is its status during Dial's first handshake (and the zero
// value).
const (
	// Connecting: the first connection is being made.
	Connecting Status = iota
	// Connected: a connection is up; calls go out at once.
	Connected
	// Reconnecting: the connection ended or the server announced its
	// shutdown; the client is making a new one. Calls wait (see
	// [WithQueueSize]).
	Reconnecting
	// Closed: [Client.Close] was called, or the connection ended with
	// reconnection off. Calls fail at once.
	Closed
)

func (s Status) String() string {
	switch s {
	case Connecting:
		return "connecting"
	case Connected:
		return "connected"
	case Reconnecting:
		return "reconnecting"
	case Closed:
		return "closed"
	}
	return fmt.Sprintf("Status(%d)", int32(s))
}
