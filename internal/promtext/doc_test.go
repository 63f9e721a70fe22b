package promtext_test

import (
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wsrpc/wsrpc/internal/promtext"
	"github.com/wsrpc/wsrpc/server"
)

// TestObservabilityDoc: docs/OBSERVABILITY.md's tables list every metric
// family, with its type and labels, and every refusal reason; nothing
// else.
func TestObservabilityDoc(t *testing.T) {
	doc, err := os.ReadFile("../../docs/OBSERVABILITY.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(wsrpc_[a-z_]+)` \\| ([a-z]+) \\|([^|]*)\\|")
	documented := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		labels := strings.Join(strings.Fields(strings.NewReplacer("`", "", ",", "").Replace(m[3])), ",")
		documented[m[1]] = m[2] + " " + labels
	}
	want := map[string]string{}
	for _, fs := range [][]promtext.Family{promtext.ServerFamilies, promtext.CallFamilies, promtext.PubSubFamilies} {
		for _, f := range fs {
			want[f.Name] = f.Type + " " + strings.Join(f.Labels, ",")
		}
	}
	if !maps.Equal(documented, want) {
		for _, name := range slices.Sorted(maps.Keys(want)) {
			if documented[name] != want[name] {
				t.Errorf("%s: documented %q, is %q", name, documented[name], want[name])
			}
		}
		for name := range documented {
			if _, ok := want[name]; !ok {
				t.Errorf("%s is documented and does not exist", name)
			}
		}
	}
	reason := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| (?:[0-9]|close)")
	var reasons []string
	for _, m := range reason.FindAllStringSubmatch(string(doc), -1) {
		reasons = append(reasons, m[1])
	}
	var all []string
	for _, r := range server.Refusals() {
		all = append(all, r.String())
	}
	if !slices.Equal(reasons, all) {
		t.Errorf("documented reasons %v, want %v", reasons, all)
	}
}
