package openrpc_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/wsrpc/wsrpc/openrpc"
)

// FuzzDocument decodes what a server might send as its discovery document
// (client.Discover decodes it): decoding never panics, and a document that
// decodes encodes to one that decodes to the same encoding.
func FuzzDocument(f *testing.F) {
	f.Add([]byte(`{"openrpc":"1.3.2","info":{"title":"t","version":"1"},"methods":[{"name":"a","params":[{"name":"params","schema":{"type":["object","null"],"properties":{"x":{"$ref":"#/components/schemas/X"}},"required":["x"]}}],"result":{"name":"result","schema":{"type":"integer","minimum":0,"maximum":255}}},{"name":"b.*"}],"components":{"schemas":{"X":{"anyOf":[{"type":"string"},{"type":"null"}]}}}}`))
	f.Add([]byte(`{"methods":[{"name":"s","params":[],"result":{"name":"result","schema":{"type":"array","items":{}}},"x-wsrpc-stream":true}]}`))
	f.Add([]byte(`{"methods":[{"name":"t","params":[{"name":"params","schema":{"type":[]}}]}]}`))
	f.Add([]byte(`{"methods":[{"name":"u","result":{"schema":{"type":3}}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var d openrpc.Document
		if err := json.Unmarshal(b, &d); err != nil {
			return
		}
		once, err := json.Marshal(&d)
		if err != nil {
			t.Fatalf("a decoded document does not encode: %v", err)
		}
		var again openrpc.Document
		if err := json.Unmarshal(once, &again); err != nil {
			t.Fatalf("%s does not decode: %v", once, err)
		}
		twice, err := json.Marshal(&again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(once, twice) {
			t.Fatalf("encodings differ:\n%s\n%s", once, twice)
		}
		for _, m := range d.Methods {
			d.Lookup(m.Name)
			if m.Result != nil {
				d.Resolve(m.Result.Schema)
			}
		}
	})
}
