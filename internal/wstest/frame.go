package wstest

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
)

// Opcodes defined by RFC 6455, section 5.2.
const (
	OpContinuation byte = 0x0
	OpText         byte = 0x1
	OpBinary       byte = 0x2
	OpClose        byte = 0x8
	OpPing         byte = 0x9
	OpPong         byte = 0xA
)

// Close codes that tests commonly need (RFC 6455, section 7.4.1).
const (
	CloseNormal         = 1000
	CloseGoingAway      = 1001
	CloseProtocolError  = 1002
	CloseUnsupported    = 1003
	CloseNoStatus       = 1005 // never sent on the wire; reported by ReadClose for an empty close frame
	CloseAbnormal       = 1006 // never sent on the wire
	CloseInvalidPayload = 1007
	ClosePolicy         = 1008
	CloseTooBig         = 1009
	CloseInternalError  = 1011
)

// MaxPayload is the largest payload ReadFrame accepts. Larger frames are
// reported as errors rather than allocated, so that a corrupt length field
// cannot exhaust memory.
const MaxPayload = 32 << 20

// ErrProtocol is wrapped by the errors ReadFrame and ReadClose return when
// the remote side sent a frame that violates RFC 6455.
var ErrProtocol = errors.New("wstest: protocol violation")

// Frame is one WebSocket frame. The reserved bits are always zero when
// writing; to send a frame with reserved bits set, encode it with
// Peer.EncodeFrame, modify the first byte and send it with Peer.WriteRaw.
type Frame struct {
	Fin     bool
	Opcode  byte // low four bits only
	Payload []byte
}

// String returns a short description for test failure messages.
func (f Frame) String() string {
	const maxShown = 32
	p := f.Payload
	suffix := ""
	if len(p) > maxShown {
		p, suffix = p[:maxShown], "..."
	}
	return fmt.Sprintf("Frame{Fin:%t Opcode:%#x Len:%d Payload:%q%s}", f.Fin, f.Opcode, len(f.Payload), p, suffix)
}

// IsControl reports whether op is a control opcode (close, ping, pong or a
// reserved control opcode).
func IsControl(op byte) bool { return op&0x8 != 0 }

// ClosePayload returns the payload of a close frame carrying code and
// reason: the code as a big-endian uint16 followed by the reason.
func ClosePayload(code uint16, reason string) []byte {
	b := make([]byte, 2, 2+len(reason))
	binary.BigEndian.PutUint16(b, code)
	return append(b, reason...)
}

// appendFrame appends the wire encoding of f to dst. If key is non-nil the
// payload is masked with it; f.Payload itself is never modified.
func appendFrame(dst []byte, f Frame, key *[4]byte) []byte {
	b0 := f.Opcode & 0x0f
	if f.Fin {
		b0 |= 0x80
	}
	var maskBit byte
	if key != nil {
		maskBit = 0x80
	}
	n := len(f.Payload)
	switch {
	case n <= 125:
		dst = append(dst, b0, maskBit|byte(n))
	case n <= 0xffff:
		dst = append(dst, b0, maskBit|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, b0, maskBit|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	if key == nil {
		return append(dst, f.Payload...)
	}
	dst = append(dst, key[:]...)
	start := len(dst)
	dst = append(dst, f.Payload...)
	maskBytes(dst[start:], *key)
	return dst
}

// maskBytes XORs b in place with the repeating 4-byte key (RFC 6455,
// section 5.3). Masking and unmasking are the same operation.
func maskBytes(b []byte, key [4]byte) {
	for i := range b {
		b[i] ^= key[i&3]
	}
}

func newMaskKey() [4]byte {
	var k [4]byte
	_, _ = rand.Read(k[:]) // crypto/rand.Read never fails
	return k
}
