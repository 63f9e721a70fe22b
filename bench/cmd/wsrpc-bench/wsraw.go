package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"
)

// rawWS is a client WebSocket connection framed by hand (RFC 6455), for the
// attack mode: an attacker does what transport.Dial never does (leaves a
// message unfinished, never reads its socket), and the bench module cannot
// import the core's internal/wstest. It buffers nothing of its own beyond
// the handshake's reader, so that this process's memory is the server's.
//
// Frames are written under wmu, so a goroutine answering pings may write
// while another sends; one goroutine at a time reads.
type rawWS struct {
	nc    net.Conn
	br    *bufio.Reader // the handshake's reader: it may hold the first frames
	wmu   sync.Mutex
	proto string // the subprotocol the server chose
}

// The opcodes of RFC 6455, section 5.2.
const (
	opContinuation byte = 0x0
	opText         byte = 0x1
	opBinary       byte = 0x2
	opClose        byte = 0x8
	opPing         byte = 0x9
	opPong         byte = 0xA
)

// rawMaxPayload bounds the frames and messages rawWS reads, so that a
// corrupt length cannot make it allocate.
const rawMaxPayload = 2 << 20

// acceptGUID is the fixed GUID of RFC 6455, section 1.3.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// rcvBufDialer dials with SO_RCVBUF set to n before connecting (so that the
// window the client advertises stays small), or plainly for n ≤ 0.
func rcvBufDialer(n int) *net.Dialer {
	if n <= 0 {
		return &net.Dialer{}
	}
	return &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
		})
		return errors.Join(err, serr)
	}}
}

// dialWS connects to addr (host:port) with d and performs the opening
// handshake for path "/", offering subprotocols (none: the server speaks
// JSON-RPC). ctx bounds the dial and the handshake.
func dialWS(ctx context.Context, d *net.Dialer, addr string, subprotocols ...string) (*rawWS, error) {
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &rawWS{nc: nc, br: bufio.NewReaderSize(nc, 4096)}
	if err := c.handshake(ctx, addr, subprotocols); err != nil {
		nc.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	return c, nil
}

func (c *rawWS) handshake(ctx context.Context, addr string, subprotocols []string) error {
	dl, _ := ctx.Deadline()
	c.nc.SetDeadline(dl)
	defer c.nc.SetDeadline(time.Time{})
	var k [16]byte
	rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	var b strings.Builder
	fmt.Fprintf(&b, "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n", addr, key)
	if len(subprotocols) > 0 {
		fmt.Fprintf(&b, "Sec-WebSocket-Protocol: %s\r\n", strings.Join(subprotocols, ", "))
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(c.nc, b.String()); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return err
	}
	resp.Body.Close() // a 101 has no body
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("status %s", resp.Status)
	}
	sum := sha1.Sum([]byte(key + acceptGUID))
	if resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		return errors.New("wrong Sec-WebSocket-Accept")
	}
	c.proto = resp.Header.Get("Sec-WebSocket-Protocol")
	return nil
}

// localAddr is the connection's address as the server sees it remotely.
func (c *rawWS) localAddr() string { return c.nc.LocalAddr().String() }

// appendFrame appends one client frame to dst, masked with a fresh key.
func appendFrame(dst []byte, fin bool, op byte, payload []byte) []byte {
	var key [4]byte
	rand.Read(key[:])
	dst = appendFrameHeader(dst, fin, op, len(payload), key)
	start := len(dst)
	dst = append(dst, payload...)
	for i := range dst[start:] {
		dst[start+i] ^= key[i&3]
	}
	return dst
}

func appendFrameHeader(dst []byte, fin bool, op byte, n int, key [4]byte) []byte {
	b0 := op & 0x0f
	if fin {
		b0 |= 0x80
	}
	switch {
	case n <= 125:
		dst = append(dst, b0, 0x80|byte(n))
	case n <= 0xffff:
		dst = append(dst, b0, 0x80|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, b0, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, key[:]...)
}

// write writes frames already encoded (one or many, back to back).
func (c *rawWS) write(frames []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.nc.Write(frames)
	return err
}

// writeFrame writes one frame masked with a fresh key.
func (c *rawWS) writeFrame(fin bool, op byte, payload []byte) error {
	return c.write(appendFrame(nil, fin, op, payload))
}

// writeShared writes one frame whose payload is shared with other
// connections and must not be modified: it is masked with the all-zero
// key, which RFC 6455 allows (the key must be unpredictable, and no server
// can check that), so the payload goes out as it is, without a copy.
func (c *rawWS) writeShared(fin bool, op byte, payload []byte) error {
	hdr := appendFrameHeader(make([]byte, 0, 14), fin, op, len(payload), [4]byte{})
	bufs := net.Buffers{hdr, payload}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := bufs.WriteTo(c.nc)
	return err
}

// readFrame reads one frame from the server (unmasked).
func (c *rawWS) readFrame() (fin bool, op byte, payload []byte, err error) {
	var h [2]byte
	if _, err = io.ReadFull(c.br, h[:]); err != nil {
		return
	}
	fin, op = h[0]&0x80 != 0, h[0]&0x0f
	if h[1]&0x80 != 0 {
		return fin, op, nil, errors.New("masked frame from the server")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var e [2]byte
		if _, err = io.ReadFull(c.br, e[:]); err != nil {
			return
		}
		n = uint64(binary.BigEndian.Uint16(e[:]))
	case 127:
		var e [8]byte
		if _, err = io.ReadFull(c.br, e[:]); err != nil {
			return
		}
		n = binary.BigEndian.Uint64(e[:])
	}
	if n > rawMaxPayload {
		return fin, op, nil, fmt.Errorf("frame of %d bytes", n)
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(c.br, payload)
	return
}

// closeFrame is the close frame the server sent, as an error.
type closeFrame struct {
	code   int // 1005 when the frame carried none
	reason string
}

func (e *closeFrame) Error() string {
	return fmt.Sprintf("closed by the server: %d %q", e.code, e.reason)
}

// control handles a control frame: a ping is answered, a close frame is
// answered and returned as a *closeFrame. It reports whether op was one.
func (c *rawWS) control(op byte, payload []byte) (bool, error) {
	switch op {
	case opPing:
		return true, c.writeFrame(true, opPong, payload)
	case opPong:
		return true, nil
	case opClose:
		cf := &closeFrame{code: 1005}
		if len(payload) >= 2 {
			cf.code = int(binary.BigEndian.Uint16(payload))
			cf.reason = string(payload[2:])
			c.writeFrame(true, opClose, payload[:2]) // the closing handshake; the server may be gone
		}
		return true, cf
	}
	return false, nil
}

// readMessage reads the next data message, answering pings; a close frame
// ends it with a *closeFrame.
func (c *rawWS) readMessage() (op byte, data []byte, err error) {
	for {
		fin, fop, payload, err := c.readFrame()
		if err != nil {
			return 0, nil, err
		}
		if ok, err := c.control(fop, payload); ok {
			if err != nil {
				return 0, nil, err
			}
			continue
		}
		if fop != opContinuation {
			op = fop
		}
		if len(data)+len(payload) > rawMaxPayload {
			return 0, nil, errors.New("message too large")
		}
		data = append(data, payload...)
		if fin {
			return op, data, nil
		}
	}
}

// waitClose reads until the server closes: it returns the server's close
// frame (a *closeFrame), or the read error when the connection ended
// without one. Data frames are discarded, pings answered.
func (c *rawWS) waitClose() error {
	for {
		_, op, payload, err := c.readFrame()
		if err != nil {
			return err
		}
		if _, err := c.control(op, payload); err != nil {
			return err
		}
	}
}

// close ends the connection without a closing handshake.
func (c *rawWS) close() error { return c.nc.Close() }
