package transport

import (
	crand "crypto/rand"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"

	"github.com/wsrpc/wsrpc/internal/bufpool"
)

// Writing data frames here rather than through coder/websocket.
//
// coder/websocket's Write takes two of its channel-based locks per message
// (the message writer's and the frame writer's), checks its close state
// under a third, copies the payload into its buffered writer and flushes
// it into the corkConn. On a connection whose frames the corkConn follows
// (an accepted one, or a dialed one without TLS) and without compression,
// a message of one frame is written here instead, straight into the
// corkConn: the header and the payload appended to the corked buffer, or
// to a pooled one written at once. With one small call at a time on each
// of many connections, those locks were the largest part of the time a
// message spends in user space, above the system calls.
//
// It is safe beside coder/websocket's own writes because:
//   - data messages are written only under the Conn's wmu, so no data frame
//     of coder/websocket's is unfinished while one is written here (checked:
//     the corkConn follows the frames, and a frame is written here only
//     between two);
//   - coder/websocket writes its control frames (pong, close, ping) whole,
//     flushed in one Write each, under the corkConn's mu, which a frame
//     written here holds too;
//   - once a close frame went out (the corkConn sees it), nothing is written
//     here, as coder/websocket refuses to.

// maxOwnFrame bounds the payload of a frame written here: it is built whole
// in one buffer. Larger messages go through coder/websocket.
const maxOwnFrame = maxCork - 14

// masker makes the masking keys of a client's frames (RFC 6455, section
// 5.3: unpredictable, from a strong source of entropy): ChaCha8, a
// cryptographically secure generator, seeded from crypto/rand for each
// connection. Used under the corkConn's mu only.
type masker struct {
	rng  *rand.ChaCha8
	next uint32 // the second half of the last 64 bits drawn, when have
	have bool
}

func newMasker() *masker {
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // never fails (crypto/rand.Read panics rather than return an error)
	return &masker{rng: rand.NewChaCha8(seed)}
}

func (m *masker) key() uint32 {
	if m.have {
		m.have = false
		return m.next
	}
	v := m.rng.Uint64()
	m.next, m.have = uint32(v>>32), true
	return uint32(v)
}

// maskBytes XORs b with the masking key, whose bytes are key's in little-endian
// order (the order the header carries them in), starting at key's first byte.
func maskBytes(b []byte, key uint32) {
	k := uint64(key) | uint64(key)<<32
	for len(b) >= 32 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k)
		binary.LittleEndian.PutUint64(b[8:], binary.LittleEndian.Uint64(b[8:])^k)
		binary.LittleEndian.PutUint64(b[16:], binary.LittleEndian.Uint64(b[16:])^k)
		binary.LittleEndian.PutUint64(b[24:], binary.LittleEndian.Uint64(b[24:])^k)
		b = b[32:]
	}
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k)
		b = b[8:]
	}
	for i := range b {
		b[i] ^= byte(key >> (8 * (i & 3)))
	}
}

// appendFrame appends a final frame of a message of type typ holding p,
// masked with a key from mk when mk is not nil (a client's frame).
func appendFrame(b []byte, typ MessageType, p []byte, mk *masker) []byte {
	if mk == nil {
		return append(appendFrameHeader(b, typ, len(p)), p...)
	}
	b = appendFrameHeader(b, typ, len(p))
	b[len(b)-frameLenBytes(len(p))-1] |= 0x80 // the mask bit, in the length's first byte
	key := mk.key()
	b = binary.LittleEndian.AppendUint32(b, key)
	start := len(b)
	b = append(b, p...)
	maskBytes(b[start:], key)
	return b
}

// frameLenBytes is how many bytes follow the length's first byte in the
// header of a frame of n bytes.
func frameLenBytes(n int) int {
	switch {
	case n < 126:
		return 0
	case n <= 0xffff:
		return 2
	}
	return 8
}

// writeMessage writes a data message as one final frame built here (see
// above). It reports false, having written nothing, when it cannot: the
// frames are not followed, a frame written through Write is unfinished, or
// the message is larger than maxOwnFrame; the caller then writes it
// through coder/websocket. After a close frame went out it reports true
// with net.ErrClosed.
func (c *corkConn) writeMessage(typ MessageType, p []byte, mk *masker) (bool, error) {
	if len(p) > maxOwnFrame {
		return false, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.follow || !c.betweenFrames() {
		return false, nil
	}
	if err := c.flushRestLocked(); err != nil {
		return true, err
	}
	if c.closeSent {
		return true, net.ErrClosed
	}
	size := len(p) + 14
	if c.corked {
		if len(c.buf)+size > maxCork {
			if err := c.flushLocked(); err != nil {
				return true, err
			}
		}
		if c.buf == nil {
			c.buf = bufpool.Get(maxCork)
		}
		c.buf = appendFrame(c.buf, typ, p, mk)
		return true, nil
	}
	b := appendFrame(bufpool.Get(size)[:0], typ, p, mk)
	_, err := c.Conn.Write(b)
	bufpool.Put(b)
	return true, err
}

// writePackedMessage is writeMessage for the one message pk makes of ms,
// at most bound bytes: it is packed straight into the frame's buffer (the
// corked one, or a pooled one written at once), after room for the header,
// rather than packed apart and then copied in. It reports false, having
// written nothing, as writeMessage does.
func (c *corkConn) writePackedMessage(typ MessageType, bound int, pk Packer, ms []Message, mk *masker) (int, bool, error) {
	if bound > maxOwnFrame {
		return 0, false, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.follow || !c.betweenFrames() {
		return 0, false, nil
	}
	if err := c.flushRestLocked(); err != nil {
		return 0, true, err
	}
	if c.closeSent {
		return 0, true, net.ErrClosed
	}
	size := bound + 14
	var n int
	if c.corked {
		if len(c.buf)+size > maxCork {
			if err := c.flushLocked(); err != nil {
				return 0, true, err
			}
		}
		if c.buf == nil {
			c.buf = bufpool.Get(maxCork)
		}
		c.buf, n = appendPackedFrame(c.buf, typ, bound, pk, ms, mk)
		return n, true, nil
	}
	b, n := appendPackedFrame(bufpool.Get(size)[:0], typ, bound, pk, ms, mk)
	_, err := c.Conn.Write(b)
	bufpool.Put(b)
	return n, true, err
}

// appendPackedFrame appends a final frame holding the message pk makes of
// ms (about bound bytes; b has room for bound and a header), masked with a
// key from mk when mk is not nil, and returns it with the message's length.
// The message is packed after room for the header its bound needs, then
// the header is written in front; a message whose length needs a shorter
// header (or, from a packer past its bound, a longer one) is moved to fit.
func appendPackedFrame(b []byte, typ MessageType, bound int, pk Packer, ms []Message, mk *masker) ([]byte, int) {
	start := len(b)
	hl := 2 + frameLenBytes(bound)
	if mk != nil {
		hl += 4
	}
	b = pk.Pack(b[:start+hl], ms)
	n := len(b) - start - hl
	var hdr [14]byte
	h := appendFrameHeader(hdr[:0], typ, n)
	var key uint32
	if mk != nil {
		h[1] |= 0x80 // the mask bit
		key = mk.key()
		h = binary.LittleEndian.AppendUint32(h, key)
	}
	if len(h) != hl {
		if len(h) > hl {
			b = append(b, make([]byte, len(h)-hl)...)
		}
		copy(b[start+len(h):], b[start+hl:start+hl+n]) // overlapping: copy moves them as memmove does
		b = b[:start+len(h)+n]
	}
	copy(b[start:], h)
	if mk != nil {
		maskBytes(b[start+len(h):], key)
	}
	return b, n
}

// frameFollower follows a stream of frames as it goes by in pieces: where
// the current frame ends, and whether a close frame began.
type frameFollower struct {
	left uint64   // what is left of the current frame's payload
	hdr  [14]byte // the part of the current header seen so far, hdr[:hdrN]
	hdrN uint8
}

// frameHeaderLen parses the start of a frame header, h: the header's
// length and the payload's, or ok false while h holds less than the
// whole header.
func frameHeaderLen(h []byte) (n int, payload uint64, ok bool) {
	if len(h) < 2 {
		return 0, 0, false
	}
	n = 2
	switch h[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if h[1]&0x80 != 0 { // masked (a client's)
		n += 4
	}
	if len(h) < n {
		return 0, 0, false
	}
	payload = uint64(h[1] & 0x7f)
	switch payload {
	case 126:
		payload = uint64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		payload = binary.BigEndian.Uint64(h[2:10])
	}
	return n, payload, true
}

// follow follows p, the next bytes of the stream, and reports whether a
// close frame began in it.
func (f *frameFollower) follow(p []byte) (closing bool) {
	for len(p) > 0 {
		if f.left > 0 {
			n := min(f.left, uint64(len(p)))
			f.left -= n
			p = p[n:]
			continue
		}
		f.hdr[f.hdrN] = p[0]
		f.hdrN++
		p = p[1:]
		_, n, ok := frameHeaderLen(f.hdr[:f.hdrN])
		if !ok {
			continue
		}
		if f.hdr[0]&0x0f == 0x8 {
			closing = true
		}
		f.left, f.hdrN = n, 0
	}
	return closing
}

// between reports whether the stream followed so far ends at the end of a frame.
func (f *frameFollower) between() bool { return f.left == 0 && f.hdrN == 0 }

// limit is how many of the bytes b, which come next in the stream, belong
// to the current frame (its header included): what may be handed out
// without passing the frame's end. At least 1 when b is not empty.
func (f *frameFollower) limit(b []byte) int {
	if f.left > 0 {
		return int(min(f.left, uint64(len(b))))
	}
	var h [14]byte
	n := copy(h[:], f.hdr[:f.hdrN])
	n += copy(h[n:], b)
	hl, payload, ok := frameHeaderLen(h[:n])
	if !ok || payload >= uint64(len(b)) {
		// All of b is header, or the frame goes past b: all of b is in it.
		// (The length is the peer's, up to 2^64-1: no sum with it may wrap.)
		return len(b)
	}
	return int(min(uint64(hl-int(f.hdrN))+payload, uint64(len(b))))
}

// release gives back the read-ahead buffer when reading has ended with
// bytes left in it (the start of a frame nobody will read).
func (c *corkConn) release() {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.aheadBuf != nil {
		c.held.Add(-1)
		bufpool.Put(c.aheadBuf)
		c.aheadBuf, c.ahead = nil, nil
		c.aheadN.Store(0)
	}
}

// readFramed is Read for a connection whose frames are read here
// (ownReads): it hands out what was read ahead, never past the end of the
// frame being read, reading more from the socket when nothing is left.
func (c *corkConn) readFramed(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(c.ahead) == 0 {
		if err := c.watch.pending(); err != nil {
			return 0, err
		}
		if c.rf.left >= uint64(len(p)) && len(p) >= readAhead {
			// A large payload read into its message's buffer in place.
			n, err := c.Conn.Read(p)
			c.rf.left -= uint64(n)
			return c.watch.took(n, err)
		}
		if err := c.fill(); err != nil {
			return c.watch.took(0, err)
		}
	}
	n := min(len(p), c.rf.limit(c.ahead))
	copy(p, c.ahead[:n])
	c.rf.follow(c.ahead[:n])
	c.consume(n)
	return n, nil
}

// fill waits for the socket to have data and reads what it has into a
// pooled buffer, taken only once there is something (an idle connection
// holds none), leaving it in ahead. The caller holds rmu; ahead is empty.
func (c *corkConn) fill() error {
	b, n, err := c.now.readWait(max(int(c.fillSize), minFill))
	if err != nil {
		return err
	}
	if n == len(b) {
		c.fillSize = readAhead
	} else {
		c.fillSize = int32(2 * n)
	}
	c.held.Add(1)
	c.aheadBuf, c.ahead = b, b[:n]
	c.aheadN.Store(int32(n))
	return nil
}

// minFill is the smallest buffer fill reads into (bufpool's smallest
// class holds it): enough for a small call or a pong, and small enough
// that a heartbeat round over many idle connections, whose pongs all come
// at once, takes little memory from the pool.
const minFill = 256

// consume takes n bytes off the front of ahead, giving the buffer back
// once it is drained.
func (c *corkConn) consume(n int) {
	c.ahead = c.ahead[n:]
	c.aheadN.Store(int32(len(c.ahead)))
	if len(c.ahead) == 0 {
		c.held.Add(-1)
		bufpool.Put(c.aheadBuf)
		c.aheadBuf, c.ahead = nil, nil
	}
}

// nextMessage reads the next message itself when it comes as one final
// text or binary frame (waiting for the socket first if nothing was read),
// well formed for this end (masked from a client, unmasked from a server:
// server says which end this is), without extension bits and of at most
// limit bytes. A frame whose header was read but not all of its payload
// is read to its end here too, straight from the socket into the
// message's buffer (see readRest). Otherwise it reports false, having
// taken nothing, and coder/websocket reads what comes next (a control
// frame, a fragment, a header not all here yet, a protocol error it
// answers). coder/websocket's per-message locks and its byte-at-a-time
// header reads are then paid only for those. hint is the size of the last
// message read, which the buffer of a message not all here starts at;
// start is called before waiting for the rest of one (the message
// timeout starts).
func (c *corkConn) nextMessage(server bool, limit int64, hint int, start func()) (Message, bool, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if !c.rf.between() {
		return Message{}, false, nil
	}
	if len(c.ahead) == 0 {
		if err := c.watch.pending(); err != nil {
			return Message{}, false, err
		}
		if err := c.fill(); err != nil {
			_, err = c.watch.took(0, err)
			return Message{}, false, err
		}
	}
	b := c.ahead
	hl, n, ok := frameHeaderLen(b)
	if !ok || b[0]&0xf0 != 0x80 || n > uint64(limit) || n > maxOwnRead {
		return Message{}, false, nil // not final, extension bits, too large, or the header not all here
	}
	op, masked := b[0]&0x0f, b[1]&0x80 != 0
	if op != byte(Text) && op != byte(Binary) || masked != server {
		return Message{}, false, nil
	}
	m := Message{Type: MessageType(op)}
	var key uint32
	if masked {
		key = binary.LittleEndian.Uint32(b[hl-4 : hl])
	}
	switch have := len(b) - hl; {
	case n == 0:
		m.Data = []byte{}
		c.consume(hl)
	case uint64(have) >= n:
		m.Data = bufpool.Get(int(n))[:n]
		copy(m.Data, b[hl:])
		c.consume(hl + int(n))
	default:
		start()
		data, err := c.readRest(b[hl:], int(n), hint)
		if err != nil {
			return Message{}, false, err
		}
		m.Data = data
	}
	if masked {
		maskBytes(m.Data, key)
	}
	if bufpool.Pooled(m.Data) {
		m.Recycle = receivedBuffer{}
	}
	return m, true, nil
}

// maxOwnRead bounds a frame read by nextMessage when no read limit does
// (a negative ReadLimit); larger ones are coder/websocket's.
const maxOwnRead = 1 << 30

// readRest reads a frame of n payload bytes whose beginning, got, is all
// that is left of the read-ahead buffer: it takes got and reads the rest
// from the socket into the message's buffer, with no copy on the way.
// The buffer starts at the size of the last message (hint) or twice what
// is here, and grows as the payload arrives, so that a peer that sends a
// large frame's header and stops holds no more memory than it sent. A
// read that fails (the connection lost mid-frame) ends reading; the
// partial message is dropped.
func (c *corkConn) readRest(got []byte, n, hint int) ([]byte, error) {
	buf := bufpool.Get(min(n, max(hint, 2*len(got), readAhead)))
	buf = append(buf, got...)
	c.consume(len(c.ahead)) // the header and got: all that was read ahead
	for len(buf) < n {
		if len(buf) == cap(buf) {
			buf = bufpool.Grow(buf, min(n-len(buf), len(buf)))
		}
		err := c.watch.pending()
		if err == nil {
			var k int
			k, err = c.Conn.Read(buf[len(buf):min(cap(buf), n)])
			buf = buf[:len(buf)+k]
			_, err = c.watch.took(k, err)
		}
		if err != nil {
			bufpool.Put(buf)
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return buf, nil
}
