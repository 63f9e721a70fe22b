package transport

import (
	"context"
	"sync"

	"github.com/wsrpc/wsrpc/internal/bufpool"
)

// openPackType marks, in the send queue, an open pack: messages sent with
// SendPacked, gathered back to back in one buffer as they are sent, which
// the writer writes as one packed message. Its Recycle is the *openPack.
const openPackType MessageType = -2

// An openPack is messages of one Packer and type, sent by SendPacked while
// the writer was busy, gathered in one pooled buffer at the end of the send
// queue: each costs its sender one copy into the buffer, where a message of
// its own would cost a buffer, a place in the queue and, when the writer
// packs it, another copy. Senders add to it under qmu while it is the
// queue's last entry (c.open); once the writer has taken the queue it is
// the writer's.
type openPack struct {
	pk       Packer
	typ      MessageType
	buf      []byte           // the messages, back to back
	ends     [MaxPack]uint32  // where each message ends in buf
	n        int              // messages
	size     int              // of the packed message, as packRun counts it
	reserved int64            // the queue bytes its messages reserved
	ms       [MaxPack]Message // the writer's, to write them (see messages)
}

var openPacks = sync.Pool{New: func() any { return new(openPack) }}

// fits reports whether a message of size bytes may join p within the pack
// bounds (those of packRun).
func (p *openPack) fits(pk Packer, typ MessageType, size int) bool {
	return p.pk == pk && p.typ == typ && p.n < MaxPack && p.size+size+4 <= MaxPackBytes
}

// add appends the message head+body+tail, which reserved n queue bytes.
func (p *openPack) add(head, body, tail []byte, n int64) {
	size := len(head) + len(body) + len(tail)
	p.buf = append(append(append(p.buf, head...), body...), tail...)
	p.ends[p.n] = uint32(len(p.buf))
	if p.n == 0 {
		p.size = 8 + size
	} else {
		p.size += size + 4
	}
	p.n++
	p.reserved += n
}

// messages returns p's messages as Send would have queued them (without
// a Recycle: the buffer is p's), for the writer.
func (p *openPack) messages() []Message {
	start := uint32(0)
	for i := range p.n {
		p.ms[i] = Message{Type: p.typ, Data: p.buf[start:p.ends[i]:p.ends[i]], Pack: p.pk}
		start = p.ends[i]
	}
	return p.ms[:p.n]
}

// Recycle gives p's buffer back, and p, once it is written or dropped.
func (p *openPack) Recycle([]byte) {
	bufpool.Put(p.buf)
	clear(p.ms[:p.n])
	p.pk, p.buf, p.n, p.size, p.reserved = nil, nil, 0, 0, 0
	openPacks.Put(p)
}

// maxOpenItem bounds the messages SendPacked gathers: a larger one is sent
// as a message of its own.
const maxOpenItem = 8 << 10

// SendPacked is Send for the message head, then body, then tail (copied:
// all stay the caller's), of type typ and packable by pk (see [Message.Pack]).
// While the writer is busy, messages sent this way one after another are
// gathered straight into one buffer at the end of the queue, which goes
// out as one packed message (or as the message itself, when it is alone):
// a stream's results queued together cost their sender a copy each, and
// no buffer or place in the queue of their own. It waits for room as Send
// does: each message counts its bytes against the queue's byte bound, but
// a pack counts as one message against ConnOptions.SendQueue.
func (c *Conn) SendPacked(ctx context.Context, typ MessageType, pk Packer, head, body, tail []byte) error {
	size := len(head) + len(body) + len(tail)
	if typ != Text && typ != Binary || pk == nil || size > maxOpenItem || c.pending.Load() == 0 {
		// Nothing queued: sent alone (perhaps written at once, see
		// enqueue); the next ones find it queued, or the writer busy.
		data := append(append(append(bufpool.Get(size), head...), body...), tail...)
		err := c.Send(ctx, Message{Type: typ, Data: data, Recycle: bufpool.Recycler{}, Pack: pk})
		if err != nil {
			bufpool.Put(data)
		}
		return err
	}
	select {
	case <-c.stop:
		return c.closedErr()
	default:
	}
	n := int64(size) + msgOverhead
	if err := c.reserve(ctx, n); err != nil {
		return err
	}
	c.qmu.Lock()
	if c.closed {
		c.qmu.Unlock()
		c.unreserve(n)
		return c.closedErr()
	}
	if p := c.open; p != nil && p.fits(pk, typ, size) {
		p.add(head, body, tail, n)
		c.qmu.Unlock()
		return nil // its queue entry has told the writer already
	}
	p := openPacks.Get().(*openPack)
	p.pk, p.typ, p.buf = pk, typ, bufpool.Get(MaxPackBytes)
	p.add(head, body, tail, n)
	c.open = p
	c.appendLocked(Message{Type: openPackType, Recycle: p})
	return nil
}

// writeOpenPack writes the open pack p, taken from the queue, as one packed
// message (or as its one message); the caller holds wmu.
func (c *Conn) writeOpenPack(p *openPack) bool {
	ms := p.messages()
	if len(ms) == 1 {
		return c.write(ms[0])
	}
	return c.writePacked(ms)
}
