package rpc

import (
	"github.com/wsrpc/wsrpc/transport"

	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestBinaryRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		give message
	}{
		{"request", message{kind: kindRequest, id: wireID{n: 42}, method: "math.add", params: []byte(`[1,2]`), timeout: 1500 * time.Millisecond}},
		{"request without params or timeout", message{kind: kindRequest, id: wireID{n: 1<<64 - 1}, method: "ping"}},
		{"notification", message{kind: kindNotification, method: "note", params: []byte{0, 1, 2}}},
		{"result", message{kind: kindResult, id: wireID{n: 7}, result: []byte(`{"ok":true}`)}},
		{"error", message{kind: kindError, id: wireID{n: 7}, err: &Error{Code: CodeBusy, Message: "full", Data: []byte(`{"n":1}`)}}},
		{"error, negative app code", message{kind: kindError, id: wireID{n: 8}, err: &Error{Code: -1 << 31, Message: "é"}}},
		{"cancel", message{kind: kindCancel, id: wireID{n: 300}}},
		{"shutdown", message{kind: kindShutdown, retryAfter: 2 * time.Second, reason: "restart"}},
		{"request with metadata", message{kind: kindRequest, id: wireID{n: 5}, method: "m", params: []byte(`[1]`), timeout: time.Second,
			meta: Metadata{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tenant": "acme", "empty": "", "ü": "é\x00"}}},
		{"notification with metadata", message{kind: kindNotification, method: "n", meta: Metadata{"k": "v"}}},
		{"request with empty metadata", message{kind: kindRequest, id: wireID{n: 6}, method: "m", meta: Metadata{}}},
		{"metadata of 300 bytes", message{kind: kindRequest, id: wireID{n: 6}, method: "m", meta: Metadata{strings.Repeat("k", 150): strings.Repeat("v", 150)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := appendBinary(nil, &tt.give)
			if len(data) > binarySize(&tt.give) {
				t.Errorf("encoded %d bytes, size bound %d", len(data), binarySize(&tt.give))
			}
			var got message
			if err := decodeBinary(data, &got, &interner{}, testMeta); err != nil {
				t.Fatal(err)
			}
			if !sameMessage(&got, &tt.give) {
				t.Fatalf("got %+v, want %+v", got, tt.give)
			}
		})
	}
}

func TestBinaryTimeoutRoundsUp(t *testing.T) {
	m := message{kind: kindRequest, id: wireID{n: 1}, method: "m", timeout: time.Nanosecond}
	var got message
	if err := decodeBinary(appendBinary(nil, &m), &got, nil, testMeta); err != nil {
		t.Fatal(err)
	}
	if got.timeout != time.Microsecond {
		t.Fatalf("1ns timeout arrived as %v, want 1µs", got.timeout)
	}
}

func TestBinaryMalformed(t *testing.T) {
	tests := []struct {
		name string
		give []byte
	}{
		{"empty", nil},
		{"unknown kind", []byte{9, 0}},
		{"kind 0", []byte{0}},
		{"truncated id", []byte{byte(kindRequest), 0, 0x80}},
		{"varint overflow", append([]byte{byte(kindResult), 0}, bytes.Repeat([]byte{0xff}, 11)...)},
		{"method longer than frame", []byte{byte(kindRequest), 0, 1, 0, 10, 'a'}},
		{"method not UTF-8", []byte{byte(kindNotification), 0, 2, 0xff, 0xfe}},
		{"error code out of range", append([]byte{byte(kindError), 0, 1}, 0x80, 0x80, 0x80, 0x80, 0x40, 0)},
		{"error message not UTF-8", []byte{byte(kindError), 0, 1, 1, 1, 0xff}},
		{"cancel with trailing bytes", []byte{byte(kindCancel), 0, 1, 2}},
		{"shutdown reason not UTF-8", []byte{byte(kindShutdown), 0, 0, 0xff}},

		// The extension block.
		{"kind only", []byte{byte(kindResult)}},
		{"ext length bad varint", []byte{byte(kindRequest), 0x80}},
		{"ext length overflows", append([]byte{byte(kindCancel)}, bytes.Repeat([]byte{0xff}, 10)...)},
		{"ext longer than frame", []byte{byte(kindRequest), 5, 1, 2, 3}},
		{"ext longer than frame, result", []byte{byte(kindResult), 2, 1}},
		{"ext longer than frame, ignorable", []byte{0x40, 3, 1, 2}},
		{"ignorable kind alone", []byte{0x40}},
		{"ignorable kind, bad varint", []byte{0xfe, 0x80}},
		{"entry tag bad varint", []byte{byte(kindRequest), 1, 0x80, 1, 0, 1, 'm'}},
		{"entry length bad varint", []byte{byte(kindRequest), 2, 1, 0x80, 1, 0, 1, 'm'}},
		{"entry length missing", []byte{byte(kindNotification), 1, 1, 1, 'm'}},
		{"entry longer than block", []byte{byte(kindRequest), 3, 1, 5, 1, 1, 0, 1, 'm'}},
		{"unknown tag entry longer than block", []byte{byte(kindNotification), 3, 7, 2, 'x', 1, 'm'}},
		{"metadata key longer than entry", []byte{byte(kindNotification), 4, 1, 2, 3, 'k', 1, 'm'}},
		{"metadata key bad varint", []byte{byte(kindNotification), 3, 1, 1, 0x80, 1, 'm'}},
		{"metadata entry empty", []byte{byte(kindNotification), 2, 1, 0, 1, 'm'}},
		{"metadata key not UTF-8", []byte{byte(kindNotification), 5, 1, 3, 1, 0xff, 'v', 1, 'm'}},
		{"metadata value not UTF-8", []byte{byte(kindRequest), 5, 1, 3, 1, 'k', 0xc3, 1, 0, 1, 'm'}},
		{"unknown kind 7", []byte{7, 0}},
		{"unknown kind 0x3f", []byte{0x3f, 0, 1, 2}},
		{"kind 0, empty block", []byte{0, 0}},
		// A request whose metadata is over the bound is refused only if
		// the rest of it is well formed.
		{"bad metadata after an empty key", []byte{byte(kindRequest), 5, 1, 1, 0, 1, 0x80, 1, 0, 1, 'm'}},
		{"bad id after an empty key", []byte{byte(kindRequest), 3, 1, 1, 0, 0x80}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m message
			err := decodeBinary(tt.give, &m, nil, testMeta)
			if !errors.Is(err, errMalformed) {
				t.Fatalf("decodeBinary = %v, want errMalformed", err)
			}
		})
	}
}

// Messages without metadata decode without allocating: the extension block
// costs nothing when it is empty or holds only entries that are skipped.
func TestBinaryDecodeDoesNotAllocate(t *testing.T) {
	request := appendBinary(nil, &message{kind: kindRequest, id: wireID{n: 9}, method: "echo", params: make([]byte, 64), timeout: time.Second})
	tests := map[string][]byte{
		"request":             request,
		"notification":        appendBinary(nil, &message{kind: kindNotification, method: "echo", params: make([]byte, 64)}),
		"result":              appendBinary(nil, &message{kind: kindResult, id: wireID{n: 9}, result: make([]byte, 64)}),
		"unknown ext tag":     binFrame(kindRequest, request[2:], binEntry(5, []byte("hint"))),
		"result with a block": binFrame(kindResult, []byte{9, '1'}, binMetaEntry("k", "v")),
		"ignorable kind":      binFrame(0x41, []byte("x"), binMetaEntry("k", "v")),
	}
	for name, data := range tests {
		in := &interner{}
		var m message
		if err := decodeBinary(data, &m, in, testMeta); err != nil { // and intern the method once
			t.Fatalf("%s: %v", name, err)
		}
		if n := testing.AllocsPerRun(100, func() { decodeBinary(data, &m, in, testMeta) }); n != 0 {
			t.Errorf("%s: decodeBinary allocates %v times per message", name, n)
		}
	}
}

// sameMessage compares the fields a codec carries.
func sameMessage(a, b *message) bool {
	if a.kind != b.kind || a.id != b.id || a.method != b.method || a.timeout != b.timeout ||
		a.retryAfter != b.retryAfter || a.reason != b.reason || a.unanswerable != b.unanswerable ||
		!bytes.Equal(a.params, b.params) || !bytes.Equal(a.result, b.result) || !sameMetadata(a.meta, b.meta) {
		return false
	}
	if (a.err == nil) != (b.err == nil) {
		return false
	}
	return a.err == nil || a.err.Code == b.err.Code && a.err.Message == b.err.Message && bytes.Equal(a.err.Data, b.err.Data)
}

// sameMetadata compares metadata; nil and empty are the same (neither is
// on the wire).
func sameMetadata(a, b Metadata) bool { return maps.Equal(a, b) }

// FuzzDecodeBinary holds the decoder to: never panic; what it accepts, the
// encoder writes back as something it accepts again, unchanged (decode →
// encode → decode); metadata it refuses makes a request an answerable
// invalid message with its id, and a notification an unanswerable one.
func FuzzDecodeBinary(f *testing.F) {
	for _, m := range []message{
		{kind: kindRequest, id: wireID{n: 1}, method: "echo", params: []byte(`"hi"`), timeout: time.Second},
		{kind: kindRequest, id: wireID{n: 1}, method: "echo", meta: Metadata{"k": "v", "trace": "00-ab-01"}},
		{kind: kindNotification, method: "n"},
		{kind: kindNotification, method: "n", params: []byte("[1]"), meta: Metadata{"tenant": "é"}},
		{kind: kindResult, id: wireID{n: 2}, result: []byte("1")},
		{kind: kindError, id: wireID{n: 3}, err: &Error{Code: -32601, Message: "nope", Data: []byte("{}")}},
		{kind: kindCancel, id: wireID{n: 4}},
		{kind: kindShutdown, retryAfter: time.Second, reason: "bye"},
	} {
		f.Add(appendBinary(nil, &m))
	}
	f.Add(binFrame(kindRequest, binRequestBody(5), binEntry(9, []byte("x")), binMetaEntry("k", "v"), binMetaEntry("k", "w")))
	f.Add(binFrame(kindRequest, binRequestBody(6), binMetaEntry("", "v")))
	f.Add(binFrame(kindNotification, binNotificationBody, binMetaEntry("", "")))
	f.Add(binFrame(0x40, []byte("hint")))
	f.Add(binFrame(kindResult, []byte{7, '1'}, binMetaEntry("k", "v")))
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := metaLimits{entries: 4, bytes: 64} // small, so the fuzzer reaches it
		var m message
		if err := decodeBinary(data, &m, &interner{}, lim); err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v is not errMalformed", err)
			}
			return
		}
		switch m.kind {
		case kindIgnored:
			if len(data) == 0 || kind(data[0]) < kindFirstIgnorable || !sameMessage(&m, &message{kind: kindIgnored}) {
				t.Fatalf("%x ignored as %+v", data, m)
			}
			return
		case kindInvalid:
			// Only metadata makes a well-formed message invalid.
			if m.err == nil || m.err.Code != CodeInvalidRequest || !strings.Contains(m.err.Message, "metadata") {
				t.Fatalf("invalid with %v", m.err)
			}
			switch kind(data[0]) {
			case kindRequest:
				if m.unanswerable {
					t.Fatal("a refused request is unanswerable")
				}
			case kindNotification:
				if !m.unanswerable || m.id != (wireID{}) {
					t.Fatalf("a refused notification: %+v", m)
				}
			default:
				t.Fatalf("kind %d refused for its metadata", data[0])
			}
			// With room enough, the same message is accepted unless a key
			// is empty.
			var big message
			if err := decodeBinary(data, &big, nil, metaLimits{entries: len(data), bytes: len(data)}); err != nil {
				t.Fatal(err)
			}
			if big.kind == kindInvalid && !strings.Contains(big.err.Message, "empty") {
				t.Fatalf("refused with no bound in reach: %v", big.err)
			}
			return
		}
		if len(m.meta) > 0 && m.kind != kindRequest && m.kind != kindNotification {
			t.Fatalf("kind %d has metadata", m.kind)
		}
		if len(m.meta) > lim.entries {
			t.Fatalf("%d metadata entries passed a bound of %d", len(m.meta), lim.entries)
		}
		for k := range m.meta {
			if k == "" || !utf8.ValidString(k) || !utf8.ValidString(m.meta[k]) {
				t.Fatalf("metadata %q passed", m.meta)
			}
		}
		again := appendBinary(nil, &m)
		if len(again) > binarySize(&m) {
			t.Fatalf("encoded %d bytes, size bound %d", len(again), binarySize(&m))
		}
		var m2 message
		if err := decodeBinary(again, &m2, nil, lim); err != nil {
			t.Fatalf("re-decode of %x failed: %v", again, err)
		}
		if m.kind == kindRequest {
			m.timeout = time.Duration(timeoutMicros(m.timeout)) * time.Microsecond
		}
		if !sameMessage(&m, &m2) {
			t.Fatalf("round trip changed the message:\n%+v\n%+v", m, m2)
		}
		if third := appendBinary(nil, &m2); !bytes.Equal(third, again) {
			t.Fatalf("encodings differ:\n% x\n% x", again, third)
		}
	})
}

// binMetaEntry is one extension entry of tag 1 (metadata).
func binMetaEntry(k, v string) []byte {
	val := binary.AppendUvarint(nil, uint64(len(k)))
	val = append(append(val, k...), v...)
	return binEntry(extMetadata, val)
}

// binEntry is one extension entry.
func binEntry(tag uint64, val []byte) []byte {
	e := binary.AppendUvarint(nil, tag)
	e = binary.AppendUvarint(e, uint64(len(val)))
	return append(e, val...)
}

// binFrame is a message of kind k with the extension block of the given
// entries, then body (the kind's fields).
func binFrame(k kind, body []byte, entries ...[]byte) []byte {
	block := bytes.Join(entries, nil)
	f := binary.AppendUvarint([]byte{byte(k)}, uint64(len(block)))
	return append(append(f, block...), body...)
}

// binRequestBody is the fields of a request (id, no timeout, method "m").
func binRequestBody(id uint64) []byte {
	return append(binary.AppendUvarint(nil, id), 0, 1, 'm')
}

var binNotificationBody = []byte{1, 'm'}

func TestBinaryEmptyExtension(t *testing.T) {
	// Every kind starts with its extension block; none is written as 0x00.
	for _, m := range []message{
		{kind: kindRequest, id: wireID{n: 1}, method: "m", meta: Metadata{}},
		{kind: kindNotification, method: "m"},
		{kind: kindResult, id: wireID{n: 1}},
		{kind: kindError, id: wireID{n: 1}, err: &Error{Code: 1}},
		{kind: kindCancel, id: wireID{n: 1}},
		{kind: kindShutdown},
	} {
		if data := appendBinary(nil, &m); len(data) < 2 || data[1] != 0 {
			t.Errorf("kind %d: % x, want the kind byte, then 00", m.kind, data)
		}
	}
}

// Metadata is carried by requests and notifications only: on other kinds
// the encoder leaves it out, and the decoder skips the block unread.
func TestBinaryMetadataOtherKinds(t *testing.T) {
	md := Metadata{"k": "v"}
	for _, m := range []message{
		{kind: kindResult, id: wireID{n: 1}, result: []byte("1"), meta: md},
		{kind: kindError, id: wireID{n: 1}, err: &Error{Code: 1, Message: "x"}, meta: md},
		{kind: kindCancel, id: wireID{n: 1}, meta: md},
		{kind: kindShutdown, reason: "bye", meta: md},
	} {
		data := appendBinary(nil, &m)
		if data[1] != 0 {
			t.Errorf("kind %d with metadata: % x, want an empty block", m.kind, data)
		}
		// A block of entries on these kinds, even of entries that would
		// be malformed on a request, is skipped.
		body := data[2:]
		for _, block := range [][]byte{binMetaEntry("k", "v"), {1, 0x7f}, {0xff}} {
			recv := append(binary.AppendUvarint([]byte{byte(m.kind)}, uint64(len(block))), block...)
			recv = append(recv, body...)
			var got message
			if err := decodeBinary(recv, &got, nil, testMeta); err != nil {
				t.Errorf("kind %d, block % x: %v", m.kind, block, err)
				continue
			}
			want := m
			want.meta = nil
			if !sameMessage(&got, &want) {
				t.Errorf("kind %d, block % x: got %+v, want %+v", m.kind, block, got, want)
			}
		}
	}
}

// The encoder writes one entry per key, in key order, whatever the map's
// order, so the same metadata always has the same bytes.
func TestBinaryMetadataOrder(t *testing.T) {
	md := Metadata{}
	for i := range 20 {
		md[fmt.Sprintf("key-%02d", 19-i)] = strings.Repeat("v", i)
	}
	m := message{kind: kindNotification, method: "m", meta: md}
	first := appendBinary(nil, &m)
	for range 20 {
		if again := appendBinary(nil, &m); !bytes.Equal(again, first) {
			t.Fatalf("two encodings of the same metadata differ:\n% x\n% x", first, again)
		}
	}
	d := binDecoder{data: first[1:]}
	e := binDecoder{data: d.ext()}
	prev := ""
	for n := 0; len(e.data) > 0; n++ {
		if tag := e.uvarint("tag"); tag != extMetadata {
			t.Fatalf("entry %d has tag %d", n, tag)
		}
		entry := binDecoder{data: e.data[:e.uvarint("length")]}
		e.data = e.data[len(entry.data):]
		k := string(entry.text("key"))
		if k <= prev || md[k] != string(entry.data) || e.err != nil || entry.err != nil {
			t.Fatalf("entry %d: %q = %q after %q (%v, %v)", n, k, entry.data, prev, e.err, entry.err)
		}
		prev = k
	}
	if prev != "key-19" {
		t.Fatalf("last key %q", prev)
	}
}

// Text that is not UTF-8 is repaired on the way out, as method names are:
// the decoder would refuse it.
func TestBinaryMetadataRepaired(t *testing.T) {
	m := message{kind: kindRequest, id: wireID{n: 1}, method: "m", meta: Metadata{"a\xffb": "c\xfe\xfd", "ok": "\xc3"}}
	data := appendBinary(nil, &m)
	if len(data) > binarySize(&m) {
		t.Errorf("encoded %d bytes, size bound %d", len(data), binarySize(&m))
	}
	var got message
	if err := decodeBinary(data, &got, nil, testMeta); err != nil {
		t.Fatal(err)
	}
	want := Metadata{"a\uFFFDb": "c\uFFFD", "ok": "\uFFFD"}
	if !maps.Equal(got.meta, want) {
		t.Fatalf("metadata %q, want %q", got.meta, want)
	}
}

func TestBinaryMetadataDecode(t *testing.T) {
	tests := []struct {
		name string
		give []byte
		want Metadata
	}{
		{"none", binFrame(kindRequest, binRequestBody(1)), nil},
		{"one", binFrame(kindRequest, binRequestBody(1), binMetaEntry("k", "v")), Metadata{"k": "v"}},
		{"empty value", binFrame(kindRequest, binRequestBody(1), binMetaEntry("k", "")), Metadata{"k": ""}},
		{"any order", binFrame(kindNotification, binNotificationBody, binMetaEntry("b", "2"), binMetaEntry("a", "1")), Metadata{"a": "1", "b": "2"}},
		{"duplicate: the last wins", binFrame(kindRequest, binRequestBody(1), binMetaEntry("k", "1"), binMetaEntry("j", "0"), binMetaEntry("k", "2")),
			Metadata{"k": "2", "j": "0"}},
		{"unknown tags skipped", binFrame(kindRequest, binRequestBody(1),
			binEntry(0, nil), binEntry(2, []byte{0xff, 0x80}), binMetaEntry("k", "v"), binEntry(1<<40, []byte("x")), binEntry(3, []byte{})),
			Metadata{"k": "v"}},
		{"only unknown tags", binFrame(kindNotification, binNotificationBody, binEntry(9, []byte("abc"))), nil},
		{"binary-looking text", binFrame(kindNotification, binNotificationBody, binMetaEntry("\x00", "\x01\x7f")), Metadata{"\x00": "\x01\x7f"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got message
			if err := decodeBinary(tt.give, &got, nil, testMeta); err != nil {
				t.Fatal(err)
			}
			if got.kind != kind(tt.give[0]) || got.method != "m" || (got.kind == kindRequest && got.id.n != 1) {
				t.Fatalf("decoded %+v", got)
			}
			if !maps.Equal(got.meta, tt.want) || (tt.want == nil) != (got.meta == nil) {
				t.Fatalf("metadata %q, want %q", got.meta, tt.want)
			}
		})
	}
}

// Metadata is copied out of the frame: the buffer may be reused.
func TestBinaryMetadataCopied(t *testing.T) {
	data := binFrame(kindNotification, binNotificationBody, binMetaEntry("key", "value"))
	var got message
	if err := decodeBinary(data, &got, nil, testMeta); err != nil {
		t.Fatal(err)
	}
	for i := range data {
		data[i] = 'x'
	}
	if got.meta["key"] != "value" {
		t.Fatalf("metadata %q after the frame was overwritten", got.meta)
	}
}

func TestBinaryMetadataBounds(t *testing.T) {
	lim := metaLimits{entries: 2, bytes: 10}
	tests := []struct {
		name    string
		entries [][]byte
		refused string // "" when accepted
	}{
		{"at both bounds", [][]byte{binMetaEntry("ab", "cde"), binMetaEntry("fg", "hij")}, ""},
		{"duplicates count as one key", [][]byte{binMetaEntry("a", "1"), binMetaEntry("a", "2"), binMetaEntry("b", "3")}, ""},
		{"one key too many", [][]byte{binMetaEntry("a", ""), binMetaEntry("b", ""), binMetaEntry("c", "")}, "more than 2 entries"},
		{"one byte too many", [][]byte{binMetaEntry("ab", "cde"), binMetaEntry("fg", "hijk")}, "more than 10 bytes"},
		{"one long value", [][]byte{binMetaEntry("k", strings.Repeat("v", 10))}, "more than 10 bytes"},
		{"a duplicate counts its bytes again", [][]byte{binMetaEntry("ab", "cde"), binMetaEntry("ab", "cdef")}, "more than 10 bytes"},
		{"empty key", [][]byte{binMetaEntry("", "v")}, "key is empty"},
		{"empty key and value", [][]byte{binMetaEntry("", "")}, "key is empty"},
		{"empty key after good ones", [][]byte{binMetaEntry("a", "1"), binMetaEntry("", "")}, "key is empty"},
		{"unknown tags do not count", [][]byte{binMetaEntry("ab", "cde"), binEntry(2, make([]byte, 100)), binMetaEntry("fg", "hij")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []kind{kindRequest, kindNotification} {
				body := binNotificationBody
				if k == kindRequest {
					body = binRequestBody(77)
				}
				var got message
				if err := decodeBinary(binFrame(k, body, tt.entries...), &got, nil, lim); err != nil {
					t.Fatalf("kind %d: %v", k, err)
				}
				if tt.refused == "" {
					if got.kind != k || len(got.meta) == 0 {
						t.Fatalf("kind %d: got %+v, want it accepted with metadata", k, got)
					}
					continue
				}
				want := message{kind: kindInvalid, err: &Error{Code: CodeInvalidRequest, Message: binErrText(&got)}}
				if k == kindRequest {
					want.id = wireID{n: 77} // answered with its id
				} else {
					want.unanswerable = true // dropped
				}
				if !sameMessage(&got, &want) || !strings.Contains(binErrText(&got), tt.refused) {
					t.Fatalf("kind %d: got %+v (%v), want %+v refused with %q", k, got, got.err, want, tt.refused)
				}
			}
		})
	}

	// The defaults.
	md := Metadata{}
	for i := range DefaultMaxMetadata {
		md[fmt.Sprintf("%02d", i)] = ""
	}
	md["00"] = strings.Repeat("v", DefaultMaxMetadataBytes-2*DefaultMaxMetadata)
	m := message{kind: kindRequest, id: wireID{n: 3}, method: "m", meta: md}
	var got message
	if err := decodeBinary(appendBinary(nil, &m), &got, nil, testMeta); err != nil || got.kind != kindRequest || !maps.Equal(got.meta, md) {
		t.Fatalf("metadata at the default bounds: %v, kind %d", err, got.kind)
	}
	md["00"] += "v"
	if err := decodeBinary(appendBinary(nil, &m), &got, nil, testMeta); err != nil || got.kind != kindInvalid || got.id.n != 3 {
		t.Fatalf("one byte over the default bound: %v, kind %d", err, got.kind)
	}
	md["00"] = ""
	md["64"] = ""
	if err := decodeBinary(appendBinary(nil, &m), &got, nil, testMeta); err != nil || got.kind != kindInvalid || got.id.n != 3 {
		t.Fatalf("one key over the default bound: %v, kind %d", err, got.kind)
	}
}

func binErrText(m *message) string {
	if m.err == nil {
		return ""
	}
	return m.err.Message
}

// Kinds from 0x40 up that the runtime does not know are dropped, whatever
// follows their extension block; their block is not read.
func TestBinaryIgnorableKinds(t *testing.T) {
	for b := int(kindFirstIgnorable); b <= 0xff; b++ {
		for _, data := range [][]byte{
			{byte(b), 0},
			{byte(b), 0, 0xff, 0x80},
			binFrame(kind(b), []byte("anything"), binMetaEntry("", ""), []byte{0x80}),
		} {
			var m message
			if err := decodeBinary(data, &m, nil, testMeta); err != nil || !sameMessage(&m, &message{kind: kindIgnored}) {
				t.Fatalf("decodeBinary(% x) = %+v, %v; want it ignored", data, m, err)
			}
		}
	}
	// The reserved kinds below are protocol errors.
	for b := int(kindShutdown) + 1; b < int(kindFirstIgnorable); b++ {
		var m message
		if err := decodeBinary([]byte{byte(b), 0}, &m, nil, testMeta); !errors.Is(err, errMalformed) {
			t.Fatalf("kind 0x%02x: %v, want errMalformed", b, err)
		}
	}
}

// FuzzDecodePacked holds the packed-message decoder (kind 7) to: never
// panic; what it accepts is notifications only, and packing their encodings
// again decodes to the same notifications (decode → encode → decode).
func FuzzDecodePacked(f *testing.F) {
	one := appendBinary(nil, &message{kind: kindNotification, method: "tick", params: []byte("1")})
	two := appendBinary(nil, &message{kind: kindNotification, method: "$/publication", params: []byte(`{"sub":1}`), meta: Metadata{"k": "v"}})
	f.Add(binaryPacker{}.Pack(nil, []transport.Message{{Data: one}, {Data: two}}))
	f.Add([]byte{byte(kindPacked), 0})
	f.Add([]byte{byte(kindPacked), 0, 0})
	f.Add([]byte{byte(kindPacked), 0, 2, byte(kindResult), 0})
	f.Add([]byte{byte(kindPacked), 1, 9, 3, 2, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			data = []byte{byte(kindPacked)}
		}
		data[0] = byte(kindPacked)
		lim := decodeLimits{meta: metaLimits{entries: 4, bytes: 64}}
		msgs, batch, err := binaryWire{}.decode(data, nil, &interner{}, lim)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v is not errMalformed", err)
			}
			return
		}
		if !batch || len(msgs) == 0 {
			t.Fatalf("accepted %x as %d messages, batch %v", data, len(msgs), batch)
		}
		var parts []transport.Message
		for _, m := range msgs {
			switch {
			case m.kind == kindNotification:
			case m.kind == kindInvalid && m.unanswerable:
				return // refused for its metadata: nothing to re-encode
			default:
				t.Fatalf("a packed %d", m.kind)
			}
			parts = append(parts, transport.Message{Data: appendBinary(nil, &m)})
		}
		again, _, err := binaryWire{}.decode(binaryPacker{}.Pack(nil, parts), nil, &interner{}, lim)
		if err != nil || len(again) != len(msgs) {
			t.Fatalf("re-packed: %d messages, %v; want %d", len(again), err, len(msgs))
		}
		for i := range msgs {
			if !sameMessage(&msgs[i], &again[i]) {
				t.Fatalf("message %d: %+v, re-packed %+v", i, msgs[i], again[i])
			}
		}
	})
}

// A packed message may hold at most transport.MaxPack notifications: one
// more is malformed, so a peer cannot make the receiver decode (and keep) an
// array as large as its read limit allows.
func TestPackedBound(t *testing.T) {
	one := appendBinary(nil, &message{kind: kindNotification, method: "n"})
	var parts []transport.Message
	for range transport.MaxPack {
		parts = append(parts, transport.Message{Data: one})
	}
	msgs, _, err := binaryWire{}.decode(binaryPacker{}.Pack(nil, parts), nil, &interner{}, decodeLimits{meta: testMeta})
	if err != nil || len(msgs) != transport.MaxPack {
		t.Fatalf("%d notifications: %d decoded, %v", transport.MaxPack, len(msgs), err)
	}
	parts = append(parts, transport.Message{Data: one})
	if _, _, err := (binaryWire{}).decode(binaryPacker{}.Pack(nil, parts), nil, &interner{}, decodeLimits{meta: testMeta}); !errors.Is(err, errMalformed) {
		t.Fatalf("%d notifications: %v, want malformed", len(parts), err)
	}
}
