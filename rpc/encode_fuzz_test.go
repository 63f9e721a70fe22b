package rpc

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzEncode builds messages from arbitrary fields and requires that what
// either encoder writes, the matching decoder accepts with the same content:
// an encoder must never produce what the other side has to reject.
func FuzzEncode(f *testing.F) {
	// The first argument picks the kind: k%6 + 1.
	f.Add(uint8(kindRequest-1), uint64(1), "echo", []byte(`["x"]`), int32(0), "", int64(time.Second))
	f.Add(uint8(kindError-1), uint64(7), "", []byte(`{"d":1}`), int32(-32601), "caf\xe9", int64(0))
	f.Add(uint8(kindShutdown-1), uint64(0), "", []byte(nil), int32(0), "bye \xff", int64(1500*time.Microsecond))
	f.Add(uint8(kindNotification-1), uint64(0), "n\x00\xff", []byte("not json"), int32(0), "", int64(0))
	f.Fuzz(func(t *testing.T, k uint8, id uint64, method string, payload []byte, code int32, text string, d int64) {
		m := message{kind: kind(k%6 + 1), id: wireID{n: id}}
		switch m.kind {
		case kindRequest, kindNotification:
			m.method = method
			m.params = payload
			m.timeout = time.Duration(d)
		case kindResult:
			m.result = payload
		case kindError:
			m.err = &Error{Code: Code(code), Message: text, Data: payload}
		case kindShutdown:
			m.retryAfter = time.Duration(d)
			m.reason = text
		}
		if m.kind == kindNotification || m.kind == kindShutdown {
			m.id = wireID{}
		}
		// Binary: every field is carried; text is repaired to UTF-8.
		var got message
		if err := decodeBinary(appendBinary(nil, &m), &got, nil, testMeta); err != nil {
			t.Fatalf("binary: decoder refused what the encoder wrote for %+v: %v", m, err)
		}
		if got.method != repaired(m.method) {
			t.Fatalf("binary: method %q arrived as %q", m.method, got.method)
		}
		if m.err != nil && got.err.Message != repaired(m.err.Message) {
			t.Fatalf("binary: message %q arrived as %q", m.err.Message, got.err.Message)
		}
		// JSON-RPC: raw JSON parts must be valid JSON (the peer checks that
		// before encoding); text is repaired; the result is one valid text
		// message.
		if !jsonValid(payload) {
			m.params, m.result = nil, nil
			if m.err != nil {
				m.err.Data = nil
			}
		}
		if m.kind == kindRequest || m.kind == kindNotification {
			if first := firstNonSpace(m.params); m.params != nil && first != '[' && first != '{' {
				m.params = nil
			}
		}
		data := appendJSON(nil, &m)
		if !utf8.Valid(data) {
			t.Fatalf("JSON encoder wrote invalid UTF-8: %q", data)
		}
		msgs, _, fatal := decodeJSON(data, nil, nil, 0, testMeta)
		if fatal != nil || len(msgs) != 1 {
			t.Fatalf("JSON: decoder refused %s: %v", data, fatal)
		}
		if msgs[0].kind == kindInvalid {
			t.Fatalf("JSON: %s decoded as invalid: %v", data, msgs[0].err)
		}
	})
}

func repaired(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
