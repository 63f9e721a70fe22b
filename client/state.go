package client

import "fmt"

// State is where a [Client] is in its life cycle.
type State int32

// The states of a Client. A Client returned by [Dial] starts Connected;
// Connecting is the state during Dial's first handshake (and the zero value).
const (
	// Connecting: the first connection is being made.
	Connecting State = iota
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

func (s State) String() string {
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
	return fmt.Sprintf("State(%d)", int32(s))
}
