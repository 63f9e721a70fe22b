package cli

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/wsrpc/wsrpc/openrpc"
)

// The services of wsrpc serve answer rpc.discover: every demo service, with
// the schemas of their Go types, over both codecs.
func TestServeDiscovery(t *testing.T) {
	ts := newTestServer(t)
	for _, codec := range []string{"json", "binary"} {
		r := runCmd(t, "", "call", ts.url, "rpc.discover", "--codec", codec)
		if r.code != exitOK {
			t.Fatalf("%s: code %d, stderr %q", codec, r.code, r.stderr)
		}
		var doc openrpc.Document
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			t.Fatalf("%s: %v: %s", codec, err, r.stdout)
		}
		if doc.OpenRPC != openrpc.Version || doc.Info.Title != "wsrpc serve" || doc.Info.Version != version {
			t.Errorf("%s: header %q %+v", codec, doc.OpenRPC, doc.Info)
		}
		var names []string
		for _, m := range doc.Methods {
			names = append(names, m.Name)
			if !m.Typed() {
				t.Errorf("%s: %s is not typed", codec, m.Name)
			}
		}
		if !slices.Equal(names, serviceNames) {
			t.Errorf("%s: methods %v, want %v", codec, names, serviceNames)
		}
		add, _ := doc.Lookup("add")
		if s := add.Params[0].Schema; len(s.Type) == 0 || s.Type[0] != "array" || s.Items.Type[0] != "number" {
			t.Errorf("%s: add params %+v", codec, s)
		}
		if tail, _ := doc.Lookup("tail"); !tail.Stream {
			t.Errorf("%s: tail is not a stream", codec)
		}
	}
}
