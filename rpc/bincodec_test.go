package rpc

import (
	"bytes"
	"errors"
	"testing"
	"time"
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
		{"unknown kind", []byte{9}},
		{"kind 0", []byte{0}},
		{"truncated id", []byte{byte(kindRequest), 0x80}},
		{"varint overflow", append([]byte{byte(kindResult)}, bytes.Repeat([]byte{0xff}, 11)...)},
		{"method longer than frame", []byte{byte(kindRequest), 1, 0, 10, 'a'}},
		{"method not UTF-8", []byte{byte(kindNotification), 2, 0xff, 0xfe}},
		{"error code out of range", append([]byte{byte(kindError), 1}, 0x80, 0x80, 0x80, 0x80, 0x40, 0)},
		{"error message not UTF-8", []byte{byte(kindError), 1, 1, 1, 0xff}},
		{"cancel with trailing bytes", []byte{byte(kindCancel), 1, 2}},
		{"shutdown reason not UTF-8", []byte{byte(kindShutdown), 0, 0xff}},
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

func TestBinaryDecodeDoesNotAllocate(t *testing.T) {
	data := appendBinary(nil, &message{kind: kindRequest, id: wireID{n: 9}, method: "echo", params: make([]byte, 64), timeout: time.Second})
	in := &interner{}
	var m message
	decodeBinary(data, &m, in, testMeta) // intern the method once
	if n := testing.AllocsPerRun(100, func() { decodeBinary(data, &m, in, testMeta) }); n != 0 {
		t.Fatalf("decodeBinary allocates %v times per message", n)
	}
}

// sameMessage compares the fields a codec carries.
func sameMessage(a, b *message) bool {
	if a.kind != b.kind || a.id != b.id || a.method != b.method || a.timeout != b.timeout ||
		a.retryAfter != b.retryAfter || a.reason != b.reason ||
		!bytes.Equal(a.params, b.params) || !bytes.Equal(a.result, b.result) {
		return false
	}
	if (a.err == nil) != (b.err == nil) {
		return false
	}
	return a.err == nil || a.err.Code == b.err.Code && a.err.Message == b.err.Message && bytes.Equal(a.err.Data, b.err.Data)
}

func FuzzDecodeBinary(f *testing.F) {
	for _, m := range []message{
		{kind: kindRequest, id: wireID{n: 1}, method: "echo", params: []byte(`"hi"`), timeout: time.Second},
		{kind: kindNotification, method: "n"},
		{kind: kindResult, id: wireID{n: 2}, result: []byte("1")},
		{kind: kindError, id: wireID{n: 3}, err: &Error{Code: -32601, Message: "nope", Data: []byte("{}")}},
		{kind: kindCancel, id: wireID{n: 4}},
		{kind: kindShutdown, retryAfter: time.Second, reason: "bye"},
	} {
		f.Add(appendBinary(nil, &m))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var m message
		if err := decodeBinary(data, &m, &interner{}, testMeta); err != nil {
			return
		}
		again := appendBinary(nil, &m)
		var m2 message
		if err := decodeBinary(again, &m2, nil, testMeta); err != nil {
			t.Fatalf("re-decode of %x failed: %v", again, err)
		}
		if m.kind == kindRequest {
			m.timeout = time.Duration(timeoutMicros(m.timeout)) * time.Microsecond
		}
		if !sameMessage(&m, &m2) {
			t.Fatalf("round trip changed the message:\n%+v\n%+v", m, m2)
		}
	})
}
