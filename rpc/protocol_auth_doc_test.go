package rpc

import (
	"encoding/hex"
	"strings"
	"testing"
)

// TestProtocolDocAuthHex checks the wsrpc.v1 lines of section 15.6 of
// docs/PROTOCOL.md against the encoder, and that each says in its
// description the JSON it carries.
func TestProtocolDocAuthHex(t *testing.T) {
	_, blocks := readProtocolDoc(t)
	want := []message{
		{kind: kindNotification, method: MethodAuthExpiry, params: []byte(`{"expiresIn":60000}`)},
		{kind: kindRequest, id: wireID{n: 1}, method: MethodAuthRefresh, params: []byte(`{"token":"alice-token-2"}`)},
		{kind: kindResult, id: wireID{n: 1}, result: []byte(`{"expiresIn":3600000}`)},
	}
	found := false
	for _, b := range blocks {
		if b.info != "authhex" {
			continue
		}
		found = true
		lines := strings.Split(strings.TrimSpace(b.body), "\n")
		if len(lines) != len(want) {
			t.Fatalf("%s:%d: %d lines, want %d", protocolDocPath, b.line, len(lines), len(want))
		}
		for i, l := range lines {
			var got []byte
			fields := strings.Fields(l)
			k := 0
			for ; k < len(fields); k++ {
				h, err := hex.DecodeString(fields[k])
				if err != nil {
					break // the description
				}
				got = append(got, h...)
			}
			m := want[i]
			if enc := appendBinary(nil, &m); hex.EncodeToString(enc) != hex.EncodeToString(got) {
				t.Errorf("%s:%d: the document shows %x, the encoder writes %x", protocolDocPath, b.line+1+i, got, enc)
			}
			desc := strings.Join(fields[k:], " ")
			json := string(m.params)
			if m.kind == kindResult {
				json = string(m.result)
			}
			if !strings.Contains(desc, json) || !strings.HasPrefix(desc, protocolKindNames[m.kind]+":") {
				t.Errorf("%s:%d: the description %q should name the %s and its %s", protocolDocPath, b.line+1+i, desc, protocolKindNames[m.kind], json)
			}
		}
	}
	if !found {
		t.Fatal("no authhex block in section 15.6")
	}
}
