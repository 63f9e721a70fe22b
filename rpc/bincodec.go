package rpc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wsrpc/wsrpc/transport"
)

// The wsrpc.v1 binary codec: one message per WebSocket binary frame, a kind
// byte, then fields. Integers are unsigned LEB128 varints (binary.Uvarint);
// the error code is a zigzag varint (binary.Varint). A "rest" field runs to
// the end of the frame. The exact layout is in docs/PROTOCOL.md.

// errMalformed is wrapped by every binary decoding error.
var errMalformed = errors.New("malformed wsrpc.v1 message")

// binarySize is an upper bound of the encoded size of m.
func binarySize(m *message) int {
	n := 1 + 4*binary.MaxVarintLen64 + len(m.method) + len(m.params) + len(m.result) + len(m.reason)
	if m.err != nil {
		n += len(m.err.Message) + len(m.err.Data)
	}
	for k, v := range m.meta {
		n += 3*binary.MaxVarintLen64 + len(k) + len(v)
	}
	return n
}

// Extension entry tags (docs/PROTOCOL.md, the extension block).
const (
	extMetadata = 1 // one metadata entry: key (text), then the value to the end of the entry
	extStream   = 2 // a request's stream credit (uvarint, ≥ 1): the caller takes the results as a stream
)

// appendBinary appends the wsrpc.v1 encoding of m to buf.
func appendBinary(buf []byte, m *message) []byte {
	buf = append(buf, byte(m.kind))
	buf = appendExt(buf, m)
	switch m.kind {
	case kindRequest:
		buf = binary.AppendUvarint(buf, m.id.n)
		buf = binary.AppendUvarint(buf, timeoutMicros(m.timeout))
		buf = appendText(buf, m.method)
		buf = append(buf, m.params...)
	case kindNotification:
		buf = appendText(buf, m.method)
		buf = append(buf, m.params...)
	case kindResult:
		buf = binary.AppendUvarint(buf, m.id.n)
		buf = append(buf, m.result...)
	case kindError:
		buf = binary.AppendUvarint(buf, m.id.n)
		buf = binary.AppendVarint(buf, int64(m.err.Code))
		buf = appendText(buf, m.err.Message)
		buf = append(buf, m.err.Data...)
	case kindCancel:
		buf = binary.AppendUvarint(buf, m.id.n)
	case kindShutdown:
		buf = binary.AppendUvarint(buf, retryMillis(m.retryAfter))
		buf = append(buf, validText(m.reason)...)
	case kindStreamItem:
		buf = binary.AppendUvarint(buf, m.id.n)
		buf = append(buf, m.result...)
	case kindStreamCredit:
		buf = binary.AppendUvarint(buf, m.id.n)
		buf = binary.AppendUvarint(buf, m.credit)
	}
	return buf
}

// appendExt appends the extension block: its length, then one entry per
// metadata pair, in key order (0 alone when there is none).
func appendExt(buf []byte, m *message) []byte {
	stream := m.kind == kindRequest && m.credit > 0
	if (len(m.meta) == 0 || m.kind != kindRequest && m.kind != kindNotification) && !stream {
		return append(buf, 0)
	}
	keys := sortedKeys(m.meta)
	total := 0
	for _, k := range keys {
		n := metaEntryLen(k, m.meta[k])
		total += uvarintLen(extMetadata) + uvarintLen(uint64(n)) + n
	}
	if stream {
		total += uvarintLen(extStream) + 1 + uvarintLen(m.credit)
	}
	buf = binary.AppendUvarint(buf, uint64(total))
	if stream {
		buf = binary.AppendUvarint(buf, extStream)
		buf = binary.AppendUvarint(buf, uint64(uvarintLen(m.credit)))
		buf = binary.AppendUvarint(buf, m.credit)
	}
	for _, k := range keys {
		k, v := validText(k), validText(m.meta[k])
		buf = binary.AppendUvarint(buf, extMetadata)
		buf = binary.AppendUvarint(buf, uint64(metaEntryLen(k, v)))
		buf = appendText(buf, k)
		buf = append(buf, v...)
	}
	return buf
}

// metaEntryLen is the length of a metadata entry's value: the key as text,
// then the value's bytes.
func metaEntryLen(k, v string) int {
	k, v = validText(k), validText(v)
	return uvarintLen(uint64(len(k))) + len(k) + len(v)
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// appendText appends a length-prefixed UTF-8 string. Text that is not UTF-8
// (an error message built from a file name, say) has its bad bytes replaced,
// since the decoder rightly refuses it.
func appendText(buf []byte, s string) []byte {
	s = validText(s)
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

func validText(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// timeoutMicros rounds a relative deadline up to whole microseconds, so that
// a positive timeout never travels as 0 (which means none).
func timeoutMicros(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return uint64((d + time.Microsecond - 1) / time.Microsecond)
}

// retryMillis rounds a retry hint up to whole milliseconds (negative: 0).
func retryMillis(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return uint64((d + time.Millisecond - 1) / time.Millisecond)
}

// maxWireTimeout caps a received timeout so that converting it cannot overflow.
const maxWireTimeout = 100 * 365 * 24 * time.Hour

// binaryPacker packs notifications into one wsrpc.v1 packed message: the
// kind, an empty extension block, then each message with its length.
type binaryPacker struct{}

func (binaryPacker) Pack(dst []byte, msgs []transport.Message) []byte {
	dst = append(dst, byte(kindPacked), 0)
	for _, m := range msgs {
		dst = binary.AppendUvarint(dst, uint64(len(m.Data)))
		dst = append(dst, m.Data...)
	}
	return dst
}

// decodePacked decodes a packed message (kind 7) into its notifications.
// Anything but a notification inside is malformed.
func decodePacked(data []byte, dst []message, in *interner, lim metaLimits) ([]message, error) {
	d := binDecoder{data: data[1:]}
	d.ext() // no entries are defined for a packed message: skipped
	msgs := dst[:0]
	for len(d.data) > 0 && d.err == nil {
		n := d.uvarint("packed message length")
		if d.err != nil {
			break
		}
		if n == 0 || n > uint64(len(d.data)) {
			d.fail("packed message length out of range")
			break
		}
		sub := d.data[:n]
		d.data = d.data[n:]
		if kind(sub[0]) != kindNotification && kind(sub[0]) != kindStreamItem {
			d.fail(fmt.Sprintf("kind %d inside a packed message (only notifications and stream results may be packed)", sub[0]))
			break
		}
		if len(msgs) == transport.MaxPack {
			d.fail(fmt.Sprintf("packed message holds more than %d notifications", transport.MaxPack))
			break
		}
		msgs = append(msgs, message{})
		if err := decodeBinary(sub, &msgs[len(msgs)-1], in, lim); err != nil {
			clear(msgs)
			return dst[:0], err
		}
	}
	if d.err == nil && len(msgs) == 0 {
		d.fail("empty packed message")
	}
	if d.err != nil {
		clear(msgs)
		return dst[:0], d.err
	}
	return msgs, nil
}

// decodeBinary decodes one wsrpc.v1 message into m. Slices in m alias data;
// metadata is copied. A request whose metadata is over lim becomes
// kindInvalid with its id (it is answered); such a notification becomes an
// unanswerable kindInvalid. A kind from the ignorable range that this
// runtime does not know becomes kindIgnored.
func decodeBinary(data []byte, m *message, in *interner, lim metaLimits) error {
	*m = message{}
	if len(data) == 0 {
		return fmt.Errorf("%w: empty frame", errMalformed)
	}
	d := binDecoder{data: data[1:]}
	m.kind = kind(data[0])
	ext := d.ext()
	if m.kind >= kindFirstIgnorable {
		if d.err != nil {
			return d.err
		}
		*m = message{kind: kindIgnored}
		return nil
	}
	var mb metaBuilder
	if m.kind == kindRequest || m.kind == kindNotification {
		mb.lim = lim
		d.metadata(ext, &mb)
	}
	credit := mb.credit
	switch m.kind {
	case kindRequest:
		m.id.n = d.uvarint("id")
		us := d.uvarint("timeout")
		if us > uint64(maxWireTimeout/time.Microsecond) {
			us = uint64(maxWireTimeout / time.Microsecond)
		}
		m.timeout = time.Duration(us) * time.Microsecond
		m.method = in.intern(d.text("method"))
		m.params = d.rest()
	case kindNotification:
		m.method = in.intern(d.text("method"))
		m.params = d.rest()
	case kindResult:
		m.id.n = d.uvarint("id")
		m.result = d.rest()
	case kindError:
		m.id.n = d.uvarint("id")
		code := d.varint("code")
		if code < -1<<31 || code > 1<<31-1 {
			d.fail("error code out of range")
		}
		msg := d.text("error message")
		m.err = &Error{Code: Code(code), Message: string(msg)}
		if data := d.rest(); len(data) > 0 {
			m.err.Data = data
		}
	case kindCancel:
		m.id.n = d.uvarint("id")
		if len(d.data) != 0 && d.err == nil {
			d.fail("trailing bytes after cancel")
		}
	case kindStreamItem:
		m.id.n = d.uvarint("id")
		m.result = d.rest()
	case kindStreamCredit:
		m.id.n = d.uvarint("id")
		m.credit = d.uvarint("credit")
		if d.err == nil && m.credit == 0 {
			d.fail("stream credit of 0")
		}
		if len(d.data) != 0 && d.err == nil {
			d.fail("trailing bytes after stream credit")
		}
	case kindShutdown:
		ms := d.uvarint("retry-after")
		if ms > uint64(maxWireTimeout/time.Millisecond) {
			ms = uint64(maxWireTimeout / time.Millisecond)
		}
		m.retryAfter = time.Duration(ms) * time.Millisecond
		reason := d.rest()
		if !utf8.Valid(reason) {
			d.fail("shutdown reason is not UTF-8")
		}
		m.reason = string(reason)
	default:
		*m = message{}
		return fmt.Errorf("%w: unknown message kind %d", errMalformed, data[0])
	}
	if d.err != nil {
		*m = message{}
		return d.err
	}
	switch {
	case mb.over != "" && m.kind == kindRequest:
		*m = message{kind: kindInvalid, id: m.id, err: NewError(CodeInvalidRequest, mb.over)}
	case mb.over != "":
		*m = message{kind: kindInvalid, unanswerable: true, err: NewError(CodeInvalidRequest, mb.over)}
	default:
		m.meta = mb.md
		if m.kind == kindRequest {
			m.credit = credit
		}
	}
	return nil
}

// ext reads the extension block and returns its entries' bytes.
func (d *binDecoder) ext() []byte {
	n := d.uvarint("extension length")
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.data)) {
		d.fail("extension block longer than the frame")
		return nil
	}
	e := d.data[:n]
	d.data = d.data[n:]
	return e
}

// metadata reads the entries of an extension block: metadata entries go to
// mb, entries of other tags are skipped (a receiver ignores what it does not
// know).
func (d *binDecoder) metadata(ext []byte, mb *metaBuilder) {
	e := binDecoder{data: ext}
	for len(e.data) > 0 && e.err == nil {
		tag := e.uvarint("extension tag")
		n := e.uvarint("extension entry length")
		if e.err != nil {
			break
		}
		if n > uint64(len(e.data)) {
			e.fail("extension entry longer than the block")
			break
		}
		val := e.data[:n]
		e.data = e.data[n:]
		if tag == extStream {
			// A stream credit: a uvarint filling the entry. One that is not
			// (or is 0) is skipped like an entry of an unknown tag: the call
			// is then answered without a stream, which every caller copes
			// with.
			if c, k := binary.Uvarint(val); k == len(val) && k > 0 && c > 0 {
				mb.credit = c
			}
			continue
		}
		if tag != extMetadata {
			continue
		}
		ev := binDecoder{data: val}
		k := ev.text("metadata key")
		v := ev.data
		if ev.err == nil && !utf8.Valid(v) {
			ev.fail("metadata value is not UTF-8")
		}
		if ev.err != nil {
			e.err = ev.err
			break
		}
		mb.add(k, v)
	}
	if e.err != nil && d.err == nil {
		d.err = e.err
	}
}

// binDecoder reads fields; the first failure sticks and later reads return zero values.
type binDecoder struct {
	data []byte
	err  error
}

func (d *binDecoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", errMalformed, what)
	}
}

func (d *binDecoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.data)
	if n <= 0 {
		d.fail("bad varint in " + field)
		return 0
	}
	d.data = d.data[n:]
	return v
}

func (d *binDecoder) varint(field string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.data)
	if n <= 0 {
		d.fail("bad varint in " + field)
		return 0
	}
	d.data = d.data[n:]
	return v
}

// text reads a length-prefixed UTF-8 string.
func (d *binDecoder) text(field string) []byte {
	n := d.uvarint(field + " length")
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.data)) {
		d.fail(field + " longer than the frame")
		return nil
	}
	s := d.data[:n]
	d.data = d.data[n:]
	if !utf8.Valid(s) {
		d.fail(field + " is not UTF-8")
		return nil
	}
	return s
}

func (d *binDecoder) rest() []byte {
	if d.err != nil || len(d.data) == 0 {
		return nil
	}
	r := d.data
	d.data = nil
	return r
}
