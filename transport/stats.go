package transport

import "sync/atomic"

// Stats are the counts of a connection's data messages since it was made:
// the WebSocket messages received and sent, and their payload bytes (frame
// headers, control frames and the handshake are not counted). A message
// received in parts ([ConnOptions.PartsAbove]) counts once, when its last
// part arrives, and its bytes as each part does; a message sent with
// [Conn.SendReader] counts once, and its bytes frame by frame; messages
// packed into one (publications) count as the one message written. A
// message is counted sent once coder/websocket has written it.
type Stats struct {
	MessagesIn  uint64
	BytesIn     uint64
	MessagesOut uint64
	BytesOut    uint64
}

// Add returns the sum of s and t.
func (s Stats) Add(t Stats) Stats {
	return Stats{
		MessagesIn:  s.MessagesIn + t.MessagesIn,
		BytesIn:     s.BytesIn + t.BytesIn,
		MessagesOut: s.MessagesOut + t.MessagesOut,
		BytesOut:    s.BytesOut + t.BytesOut,
	}
}

// Stats returns the connection's counts. It is safe to call at any time,
// from any goroutine, and costs four atomic loads.
func (c *Conn) Stats() Stats {
	return Stats{
		MessagesIn:  c.counts.msgsIn.Load(),
		BytesIn:     c.counts.bytesIn.Load(),
		MessagesOut: c.counts.msgsOut.Load(),
		BytesOut:    c.counts.bytesOut.Load(),
	}
}

// counts are a Conn's Stats. Each side has one writer at a time: the reader
// goroutine counts what it reads, and whoever holds wmu what it writes. So
// a count is bumped with a load and a store, which are plain moves on
// common hardware, rather than a locked read-modify-write; Stats reads them
// from anywhere.
//
// The reader's pair and the writer's pair sit on cache lines of their own,
// so that the two goroutines, on two cores, do not pass a line back and
// forth with every message.
type counts struct {
	_                 [cacheLine]byte
	msgsIn, bytesIn   atomic.Uint64
	_                 [cacheLine - 16]byte
	msgsOut, bytesOut atomic.Uint64
	_                 [cacheLine - 16]byte
}

// cacheLine is the size of a cache line on common hardware.
const cacheLine = 64

// received counts n payload bytes read, and a message when it is whole;
// only the reader calls it.
func (k *counts) received(n int, whole bool) {
	k.bytesIn.Store(k.bytesIn.Load() + uint64(n))
	if whole {
		k.msgsIn.Store(k.msgsIn.Load() + 1)
	}
}

// sent counts n payload bytes written, and a message when it is whole; the
// caller holds wmu.
func (k *counts) sent(n int, whole bool) {
	k.bytesOut.Store(k.bytesOut.Load() + uint64(n))
	if whole {
		k.msgsOut.Store(k.msgsOut.Load() + 1)
	}
}
