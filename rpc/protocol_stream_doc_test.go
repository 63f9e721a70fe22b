package rpc

import (
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// TestProtocolDocStreamSessions checks section 14.2 of docs/PROTOCOL.md
// against the encoders: each JSON-RPC line and each wsrpc.v1 hex line is
// what the codec writes for the exchange it describes.
func TestProtocolDocStreamSessions(t *testing.T) {
	doc, err := os.ReadFile("../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(doc), "### 14.2 Sessions")
	if !ok {
		t.Fatal("no section 14.2")
	}
	blocks := strings.Split(sec, "```")
	if len(blocks) < 4 {
		t.Fatal("section 14.2 lacks its two blocks")
	}
	exchange := []message{
		{kind: kindRequest, id: wireID{n: 1}, method: "countdown", params: []byte(`{"from":3}`), credit: 2},
		{kind: kindStreamItem, id: wireID{n: 1}, result: []byte(`3`)},
		{kind: kindStreamItem, id: wireID{n: 1}, result: []byte(`2`)},
		{kind: kindStreamCredit, id: wireID{n: 1}, credit: 1},
		{kind: kindStreamItem, id: wireID{n: 1}, result: []byte(`1`)},
		{kind: kindResult, id: wireID{n: 1}, result: []byte(`"liftoff"`)},
	}
	var jsonLines, hexLines []string
	for _, l := range strings.Split(strings.TrimSpace(blocks[1]), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			jsonLines = append(jsonLines, strings.TrimSpace(l[len("→"):]))
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(blocks[3]), "\n") {
		var b []byte
		for _, tok := range strings.Fields(l) {
			h, err := hex.DecodeString(tok)
			if err != nil {
				break // the description
			}
			b = append(b, h...)
		}
		hexLines = append(hexLines, hex.EncodeToString(b))
	}
	if len(jsonLines) != len(exchange) || len(hexLines) != len(exchange) {
		t.Fatalf("%d JSON lines and %d hex lines, want %d each", len(jsonLines), len(hexLines), len(exchange))
	}
	for i, m := range exchange {
		if got := string(appendJSON(nil, &m)); got != jsonLines[i] {
			t.Errorf("JSON line %d: the document shows\n%s\nthe encoder writes\n%s", i+1, jsonLines[i], got)
		}
		if got := hex.EncodeToString(appendBinary(nil, &m)); got != hexLines[i] {
			t.Errorf("hex line %d: the document shows %s, the encoder writes %s", i+1, hexLines[i], got)
		}
	}
}
