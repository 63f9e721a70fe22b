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
//
// metaText is the message's metadata, "key=value" lines. Keys that are
// empty are left out (the caller refuses them before encoding, as
// Config.checkMetadata does); text that is not UTF-8 is kept, to hold the
// encoders to repairing it.
func FuzzEncode(f *testing.F) {
	// The first argument picks the kind: k%6 + 1.
	f.Add(uint8(kindRequest-1), uint64(1), "echo", []byte(`["x"]`), int32(0), "", int64(time.Second), "")
	f.Add(uint8(kindError-1), uint64(7), "", []byte(`{"d":1}`), int32(-32601), "caf\xe9", int64(0), "k=v")
	f.Add(uint8(kindShutdown-1), uint64(0), "", []byte(nil), int32(0), "bye \xff", int64(1500*time.Microsecond), "")
	f.Add(uint8(kindNotification-1), uint64(0), "n\x00\xff", []byte("not json"), int32(0), "", int64(0), "")
	f.Add(uint8(kindRequest-1), uint64(9), "m", []byte(`{}`), int32(0), "", int64(0), "trace-id=4bf92f35\ntenant=acme\nempty=\n=no key")
	f.Add(uint8(kindNotification-1), uint64(0), "n", []byte(`[1]`), int32(0), "", int64(0), "a\xff=\xfe\xfdv\na\xfe=x\n\"q\\=\n\t")
	f.Fuzz(func(t *testing.T, k uint8, id uint64, method string, payload []byte, code int32, text string, d int64, metaText string) {
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
		for _, line := range strings.Split(metaText, "\n") {
			if key, val, _ := strings.Cut(line, "="); key != "" {
				if m.meta == nil {
					m.meta = Metadata{}
				}
				m.meta[key] = val
			}
		}
		call := m.kind == kindRequest || m.kind == kindNotification

		// Binary: every field is carried; text is repaired to UTF-8.
		var got message
		if err := decodeBinary(appendBinary(nil, &m), &got, nil, testMeta); err != nil {
			t.Fatalf("binary: decoder refused what the encoder wrote for %+v: %v", m, err)
		}
		wantMeta, over := fuzzRepairedMeta(m.meta, repaired)
		switch {
		case call && over:
			if got.kind != kindInvalid || got.err.Code != CodeInvalidRequest || got.unanswerable != (m.kind == kindNotification) ||
				(m.kind == kindRequest && got.id != m.id) {
				t.Fatalf("binary: metadata over the bounds decoded as %+v", got)
			}
		case call:
			if got.method != repaired(m.method) {
				t.Fatalf("binary: method %q arrived as %q", m.method, got.method)
			}
			if !sameMetadata(got.meta, wantMeta) {
				t.Fatalf("binary: metadata %q arrived as %q, want %q", m.meta, got.meta, wantMeta)
			}
		case got.meta != nil:
			t.Fatalf("binary: kind %d carried metadata %q", m.kind, got.meta)
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
		if call {
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
		wantMeta, over = fuzzRepairedMeta(m.meta, func(s string) string { return string([]rune(s)) })
		switch j := &msgs[0]; {
		case call && over:
			if j.kind != kindInvalid || (m.kind == kindRequest && j.id != m.id) || (m.kind == kindNotification && j.id != nullID) {
				t.Fatalf("JSON: metadata over the bounds in %s decoded as %+v", data, *j)
			}
		case j.kind == kindInvalid:
			t.Fatalf("JSON: %s decoded as invalid: %v", data, j.err)
		case call && !sameMetadata(j.meta, wantMeta):
			t.Fatalf("JSON: metadata %q arrived as %q, want %q", m.meta, j.meta, wantMeta)
		case !call && j.meta != nil:
			t.Fatalf("JSON: kind %d carried metadata %q", m.kind, j.meta)
		}
	})
}

func repaired(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// fuzzRepairedMeta is the metadata a receiver gets for md from an encoder
// that repairs text with repair and writes keys in order (so the last of
// two keys that repair alike wins), and whether it is over testMeta's
// bounds (every entry on the wire counts its bytes).
func fuzzRepairedMeta(md Metadata, repair func(string) string) (Metadata, bool) {
	var out Metadata
	n := 0
	for _, k := range sortedKeys(md) {
		if out == nil {
			out = Metadata{}
		}
		rk, rv := repair(k), repair(md[k])
		out[rk] = rv
		n += len(rk) + len(rv)
	}
	return out, len(out) > testMeta.entries || n > testMeta.bytes
}
