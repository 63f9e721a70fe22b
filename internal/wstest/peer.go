package wstest

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Peer is one raw WebSocket connection, either the client side (from
// DialPeer) or the server side (from Server.Accept). See the package
// documentation for its concurrency rules.
type Peer struct {
	conn        net.Conn
	br          *bufio.Reader // wraps conn; may hold bytes read past the handshake
	client      bool          // client peers mask what they write and expect unmasked frames
	subprotocol string
	header      http.Header
}

// IsClient reports whether p is the client side of the connection.
func (p *Peer) IsClient() bool { return p.client }

// Subprotocol returns the subprotocol selected in the handshake, or "" if
// none was.
func (p *Peer) Subprotocol() string { return p.subprotocol }

// Header returns the HTTP headers received from the other side during the
// handshake: the response headers for a client-side Peer, the request
// headers for a server-side Peer.
func (p *Peer) Header() http.Header { return p.header }

// LocalAddr returns the local network address of the connection.
func (p *Peer) LocalAddr() net.Addr { return p.conn.LocalAddr() }

// RemoteAddr returns the remote network address of the connection.
func (p *Peer) RemoteAddr() net.Addr { return p.conn.RemoteAddr() }

// SetDeadline sets the read and write deadlines of the underlying
// connection. A read that times out leaves the stream at an unknown
// position inside a frame; the Peer should then only be closed.
func (p *Peer) SetDeadline(t time.Time) error { return p.conn.SetDeadline(t) }

// SetReadDeadline sets the read deadline of the underlying connection.
func (p *Peer) SetReadDeadline(t time.Time) error { return p.conn.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline of the underlying connection.
func (p *Peer) SetWriteDeadline(t time.Time) error { return p.conn.SetWriteDeadline(t) }

// EncodeFrame returns the wire encoding of f as WriteFrame would send it,
// masked with a fresh random key if p is a client. Tests can modify or
// truncate the result and send it with WriteRaw. It panics if f.Opcode does
// not fit in four bits.
func (p *Peer) EncodeFrame(f Frame) []byte {
	if f.Opcode > 0x0f {
		panic(fmt.Sprintf("wstest: opcode %#x does not fit in four bits", f.Opcode))
	}
	var key *[4]byte
	if p.client {
		k := newMaskKey()
		key = &k
	}
	return appendFrame(make([]byte, 0, 14+len(f.Payload)), f, key)
}

// WriteFrame encodes f with the shortest length encoding (7, 16 or 64 bit)
// and writes it in a single write. Client-side peers mask the payload with a
// random key; f.Payload is not modified. No validation is done beyond the
// opcode fitting in four bits, so control frames that are fragmented or
// longer than 125 bytes, reserved opcodes and so on can be sent on purpose.
func (p *Peer) WriteFrame(f Frame) error {
	if f.Opcode > 0x0f {
		return fmt.Errorf("wstest: opcode %#x does not fit in four bits", f.Opcode)
	}
	return p.WriteRaw(p.EncodeFrame(f))
}

// WriteRaw writes b to the socket unchanged, for truncated or garbage
// frames.
func (p *Peer) WriteRaw(b []byte) error {
	_, err := p.conn.Write(b)
	return err
}

// CloseFrame writes a close frame carrying code and reason. A negative code
// sends a close frame with an empty payload (reason must then be empty).
// Codes that are invalid on the wire (such as 1005 or 0) and reasons longer
// than 123 bytes are sent as asked, to let tests provoke errors.
func (p *Peer) CloseFrame(code int, reason string) error {
	var payload []byte
	switch {
	case code < 0:
		if reason != "" {
			return errors.New("wstest: close frame without a code cannot carry a reason")
		}
	case code > 0xffff:
		return fmt.Errorf("wstest: close code %d does not fit in 16 bits", code)
	default:
		payload = ClosePayload(uint16(code), reason)
	}
	return p.WriteFrame(Frame{Fin: true, Opcode: OpClose, Payload: payload})
}

// Close closes the TCP connection without sending a close frame, like a
// peer that vanishes. It may be called from any goroutine and unblocks a
// concurrent ReadFrame.
func (p *Peer) Close() error { return p.conn.Close() }

// CloseWrite sends a FIN without a close frame and keeps reading open, like
// a peer whose process is gone while its socket lingers: the other side must
// notice and close its own socket, which the Peer then reads as io.EOF. It
// fails if the connection is not TCP.
func (p *Peer) CloseWrite() error {
	tc, ok := p.conn.(*net.TCPConn)
	if !ok {
		return fmt.Errorf("wstest: CloseWrite needs a TCP connection, have %T", p.conn)
	}
	return tc.CloseWrite()
}

// Reset drops the TCP connection with a RST (SO_LINGER 0) instead of a FIN,
// like a peer whose host vanished or whose firewall cut it.
func (p *Peer) Reset() error {
	if tc, ok := p.conn.(*net.TCPConn); ok {
		if err := tc.SetLinger(0); err != nil {
			return err
		}
	}
	return p.conn.Close()
}

// ReadFrame reads one frame and returns it with its payload unmasked. It
// honours the read deadline of the connection.
//
// At a frame boundary, a connection closed by the other side yields io.EOF
// itself; a connection closed inside a frame yields an error wrapping
// io.ErrUnexpectedEOF. A frame that violates RFC 6455 yields an error
// wrapping ErrProtocol: reserved bits set, a reserved opcode, wrong masking
// for the direction (a client must receive unmasked frames, a server masked
// ones), a fragmented or over-long control frame, a non-minimal or
// out-of-range length. Payloads longer than MaxPayload are also rejected.
// After any error the stream position is unspecified and the Peer should
// only be closed.
func (p *Peer) ReadFrame() (Frame, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(p.br, hdr[:2]); err != nil {
		if err == io.EOF {
			return Frame{}, io.EOF
		}
		return Frame{}, fmt.Errorf("wstest: reading frame header: %w", err)
	}
	b0, b1 := hdr[0], hdr[1]
	f := Frame{Fin: b0&0x80 != 0, Opcode: b0 & 0x0f}
	if rsv := b0 & 0x70; rsv != 0 {
		return Frame{}, fmt.Errorf("%w: reserved bits %#x set", ErrProtocol, rsv)
	}
	switch f.Opcode {
	case OpContinuation, OpText, OpBinary, OpClose, OpPing, OpPong:
	default:
		return Frame{}, fmt.Errorf("%w: reserved opcode %#x", ErrProtocol, f.Opcode)
	}
	masked := b1&0x80 != 0
	if masked && p.client {
		return Frame{}, fmt.Errorf("%w: client received a masked frame", ErrProtocol)
	}
	if !masked && !p.client {
		return Frame{}, fmt.Errorf("%w: server received an unmasked frame", ErrProtocol)
	}

	var n uint64
	switch l := b1 & 0x7f; l {
	case 126:
		if err := readFull(p.br, hdr[:2], "frame length"); err != nil {
			return Frame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(hdr[:2]))
		if n <= 125 {
			return Frame{}, fmt.Errorf("%w: length %d not minimally encoded in 16 bits", ErrProtocol, n)
		}
	case 127:
		if err := readFull(p.br, hdr[:8], "frame length"); err != nil {
			return Frame{}, err
		}
		n = binary.BigEndian.Uint64(hdr[:8])
		if n>>63 != 0 {
			return Frame{}, fmt.Errorf("%w: 64-bit length has its most significant bit set", ErrProtocol)
		}
		if n <= 0xffff {
			return Frame{}, fmt.Errorf("%w: length %d not minimally encoded in 64 bits", ErrProtocol, n)
		}
	default:
		n = uint64(l)
	}
	if IsControl(f.Opcode) {
		if !f.Fin {
			return Frame{}, fmt.Errorf("%w: fragmented control frame (opcode %#x)", ErrProtocol, f.Opcode)
		}
		if n > 125 {
			return Frame{}, fmt.Errorf("%w: control frame (opcode %#x) with %d-byte payload", ErrProtocol, f.Opcode, n)
		}
	}
	if n > MaxPayload {
		return Frame{}, fmt.Errorf("wstest: frame payload of %d bytes exceeds MaxPayload", n)
	}

	var key [4]byte
	if masked {
		if err := readFull(p.br, key[:], "masking key"); err != nil {
			return Frame{}, err
		}
	}
	f.Payload = make([]byte, n)
	if err := readFull(p.br, f.Payload, "frame payload"); err != nil {
		return Frame{}, err
	}
	if masked {
		maskBytes(f.Payload, key)
	}
	return f, nil
}

// readFull reads exactly len(b) bytes from inside a frame, so that EOF is
// always unexpected.
func readFull(r io.Reader, b []byte, what string) error {
	if _, err := io.ReadFull(r, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("wstest: reading %s: %w", what, err)
	}
	return nil
}

// ReadClose reads frames until a close frame arrives and returns the code
// and reason it carries, without replying. Data, ping and pong frames read
// before it are discarded. A close frame with an empty payload gives code
// 1005 (CloseNoStatus) and an empty reason; a close frame with a one-byte
// payload is a protocol error. If the connection ends before a close frame
// arrives, the error wraps io.EOF (or io.ErrUnexpectedEOF inside a frame).
func (p *Peer) ReadClose() (code int, reason string, err error) {
	for {
		f, err := p.ReadFrame()
		if err != nil {
			if err == io.EOF {
				return 0, "", fmt.Errorf("wstest: connection closed before a close frame: %w", err)
			}
			return 0, "", err
		}
		if f.Opcode != OpClose {
			continue
		}
		switch len(f.Payload) {
		case 0:
			return CloseNoStatus, "", nil
		case 1:
			return 0, "", fmt.Errorf("%w: close frame with a one-byte payload", ErrProtocol)
		}
		return int(binary.BigEndian.Uint16(f.Payload)), string(f.Payload[2:]), nil
	}
}

// aLongTimeAgo is a deadline in the past, used to interrupt blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// watchContext arranges for interrupt to be called once ctx is done. The
// returned stop function disarms it and reports whether interrupt was never
// called; if interrupt had already started, stop waits for it to finish, so
// that after stop returns no interrupt is in flight.
func watchContext(ctx context.Context, interrupt func()) (stop func() bool) {
	done := make(chan struct{})
	stopAfter := context.AfterFunc(ctx, func() {
		defer close(done)
		interrupt()
	})
	return func() bool {
		if stopAfter() {
			return true
		}
		<-done
		return false
	}
}
