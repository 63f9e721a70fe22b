package openrpc_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/openrpc"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// The shapes described by the golden tests.
type (
	Tagged struct {
		Name     string `json:"name"`
		Nick     string `json:"nick,omitempty"`
		Zero     int    `json:"zero,omitzero"`
		Skipped  int    `json:"-"`
		Dash     int    `json:"-,"`
		Untagged bool
		Quoted   int64  `json:"quoted,string"`
		QuotedP  *bool  `json:"quoted_p,string"`
		BadTag   int    `json:"a\"b"` // not a name encoding/json accepts: the field's own name
		OnlyOpts string `json:",omitempty"`
		hidden   int
	}
	Node struct {
		Value    int     `json:"value"`
		Next     *Node   `json:"next"`
		Children []Node  `json:"children,omitempty"`
		Parent   **Node  `json:"parent,omitempty"`
		Weights  []*Node `json:"weights,omitempty"`
	}
	Ping struct {
		Pong *Pong `json:"pong"`
	}
	Pong struct {
		Ping Ping `json:"ping"`
	}
	Base struct {
		ID      string `json:"id"`
		Created time.Time
		Label   string // Extra has one too, at the same depth, neither tagged: both dropped
		Kind    string // Extra tags a field "Kind": that one wins
	}
	Extra struct {
		Note  string `json:"note"`
		Label string
		Sort  int `json:"Kind"`
	}
	Meta struct {
		Version int `json:"version"`
	}
	Embeds struct {
		Base          // promoted: id, Created
		*Meta         // promoted through a pointer: not required
		Extra         // note and Kind promoted; Label collides with Base.Label and is dropped
		Own    string `json:"own"`
		Named  Meta   `json:"named"` // an embedded struct with a tag is a field
		ID2    string `json:"id2"`
		shadow int
	}
	Shallow struct {
		Base
		ID int `json:"id"` // depth 0 beats Base.ID
	}
	List   []List
	Graph  map[string]Graph
	Pair   [2]*Pair
	Ptr    *Ptr
	Forest []Tree
	Tree   struct {
		Kids Forest `json:"kids"`
	}
	TextKey     struct{ A, B int }
	Color       string
	Celsius     float32
	Custom      struct{ v int }
	Page[T any] struct {
		Items []T `json:"items"`
		Next  string
	}
	Everything struct {
		Bool    bool            `json:"bool"`
		Int     int             `json:"int"`
		Int8    int8            `json:"int8"`
		Int16   int16           `json:"int16"`
		Int32   int32           `json:"int32"`
		Int64   int64           `json:"int64"`
		Uint    uint            `json:"uint"`
		Uint8   uint8           `json:"uint8"`
		Uint16  uint16          `json:"uint16"`
		Uint32  uint32          `json:"uint32"`
		Uint64  uint64          `json:"uint64"`
		Float32 float32         `json:"float32"`
		Float64 float64         `json:"float64"`
		String  string          `json:"string"`
		Color   Color           `json:"color"`
		Temp    Celsius         `json:"temp"`
		Bytes   []byte          `json:"bytes"`
		Array   [3]byte         `json:"array"`
		Strings []string        `json:"strings"`
		Matrix  [][]float64     `json:"matrix"`
		Map     map[string]int  `json:"map"`
		IntKeys map[int]string  `json:"int_keys"`
		UKeys   map[uint16]any  `json:"ukeys"`
		TKeys   map[TextKey]int `json:"tkeys"`
		Time    time.Time       `json:"time"`
		TimeP   *time.Time      `json:"time_p"`
		Raw     json.RawMessage `json:"raw"`
		Number  json.Number     `json:"number"`
		Any     any             `json:"any"`
		IP      net.IP          `json:"ip"`
		Custom  Custom          `json:"custom"`
		Anon    struct {
			X int `json:"x"`
		} `json:"anon"`
	}
)

func (k TextKey) MarshalText() ([]byte, error) { return fmt.Appendf(nil, "%d-%d", k.A, k.B), nil }
func (k *TextKey) UnmarshalText(b []byte) error {
	_, err := fmt.Sscanf(string(b), "%d-%d", &k.A, &k.B)
	return err
}
func (c Custom) MarshalJSON() ([]byte, error) { return json.Marshal([]int{c.v}) }

// TestSchemaOfGolden compares the schema of each shape, and the components
// it adds, with testdata/schema/NAME.json (go test -update rewrites them),
// and checks that values of the shape, as encoding/json encodes them, are
// valid against it.
func TestSchemaOfGolden(t *testing.T) {
	tm := time.Date(2026, 12, 1, 17, 0, 0, 0, time.UTC)
	truth := true
	n1 := &Node{Value: 1}
	tests := []struct {
		name   string
		typ    reflect.Type
		values []any // encoded and validated against the schema
	}{
		{"bool", reflect.TypeFor[bool](), []any{true}},
		{"int8", reflect.TypeFor[int8](), []any{int8(math.MinInt8), int8(math.MaxInt8)}},
		{"uint32", reflect.TypeFor[uint32](), []any{uint32(math.MaxUint32)}},
		{"uint64", reflect.TypeFor[uint64](), []any{uint64(math.MaxUint64)}},
		{"float64", reflect.TypeFor[float64](), []any{1.5}},
		{"string", reflect.TypeFor[string](), []any{"x"}},
		{"named_string", reflect.TypeFor[Color](), []any{Color("red")}},
		{"pointer", reflect.TypeFor[*int](), []any{(*int)(nil), new(int)}},
		{"pointer_pointer", reflect.TypeFor[**string](), []any{(**string)(nil)}},
		{"bytes", reflect.TypeFor[[]byte](), []any{[]byte(nil), []byte("hi")}},
		{"byte_array", reflect.TypeFor[[4]byte](), []any{[4]byte{1, 2, 3, 4}}},
		{"slice", reflect.TypeFor[[]string](), []any{[]string(nil), []string{}, []string{"a"}}},
		{"nested_slices", reflect.TypeFor[[][]int](), []any{[][]int{{1}, nil}}},
		{"map", reflect.TypeFor[map[string]float64](), []any{map[string]float64(nil), map[string]float64{"a": 1}}},
		{"int_keys", reflect.TypeFor[map[int]bool](), []any{map[int]bool{-3: true}}},
		{"text_keys", reflect.TypeFor[map[TextKey]string](), []any{map[TextKey]string{{1, 2}: "x"}}},
		{"unsupported_keys", reflect.TypeFor[map[[2]int]int](), nil},
		{"time", reflect.TypeFor[time.Time](), []any{tm}},
		{"time_pointer", reflect.TypeFor[*time.Time](), []any{&tm, (*time.Time)(nil)}},
		{"raw", reflect.TypeFor[json.RawMessage](), []any{json.RawMessage(`{"any":[1]}`)}},
		{"number", reflect.TypeFor[json.Number](), []any{json.Number("12.5")}},
		{"interface", reflect.TypeFor[any](), []any{nil, 1, "x"}},
		{"text_marshaler", reflect.TypeFor[net.IP](), []any{net.IPv4(127, 0, 0, 1)}},
		{"json_marshaler", reflect.TypeFor[Custom](), []any{Custom{3}}},
		{"chan", reflect.TypeFor[chan int](), nil},
		{"func", reflect.TypeFor[func()](), nil},
		{"complex", reflect.TypeFor[complex128](), nil},
		{"anonymous_struct", reflect.TypeFor[struct {
			A int    `json:"a"`
			B string `json:"b,omitempty"`
		}](), []any{struct {
			A int    `json:"a"`
			B string `json:"b,omitempty"`
		}{A: 1}}},
		{"empty_struct", reflect.TypeFor[struct{}](), []any{struct{}{}}},
		{"tags", reflect.TypeFor[Tagged](), []any{Tagged{}, Tagged{Name: "n", Nick: "k", Zero: 1, Quoted: 7, QuotedP: &truth}}},
		{"recursive", reflect.TypeFor[Node](), []any{Node{}, Node{Value: 2, Next: n1, Children: []Node{{Value: 3}}, Parent: &n1, Weights: []*Node{nil, n1}}}},
		{"mutually_recursive", reflect.TypeFor[Ping](), []any{Ping{}, Ping{Pong: &Pong{}}}},
		{"embedded", reflect.TypeFor[Embeds](), []any{Embeds{}, Embeds{Meta: &Meta{Version: 2}}}},
		{"shallower_wins", reflect.TypeFor[Shallow](), []any{Shallow{ID: 1}}},
		{"recursive_slice", reflect.TypeFor[List](), []any{List{nil, List{List{}}}}},
		{"recursive_map", reflect.TypeFor[Graph](), []any{Graph{"a": Graph{"b": nil}}}},
		{"recursive_array", reflect.TypeFor[Pair](), []any{Pair{&Pair{}, nil}}},
		{"recursive_through_slice", reflect.TypeFor[Tree](), []any{Tree{Kids: Forest{{}}}}},
		{"slice_of_recursive_slices", reflect.TypeFor[[]List](), []any{[]List{{nil}}}},
		{"generic", reflect.TypeFor[Page[Node]](), []any{Page[Node]{Items: []Node{{}}}}},
		{"everything", reflect.TypeFor[Everything](), []any{Everything{}, Everything{Bytes: []byte{1}, Map: map[string]int{"a": 1},
			IntKeys: map[int]string{1: "x"}, UKeys: map[uint16]any{7: nil}, TKeys: map[TextKey]int{{}: 1}, TimeP: &tm,
			Raw: json.RawMessage(`[1]`), Number: "1", Any: map[string]any{"k": []any{}}, IP: net.IPv6loopback}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c openrpc.Components
			s := c.SchemaOf(tt.typ)
			got, err := json.MarshalIndent(struct {
				Schema     *openrpc.Schema            `json:"schema"`
				Components map[string]*openrpc.Schema `json:"components,omitempty"`
			}{s, c.Schemas}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", "schema", tt.name+".json"), got)
			doc := &openrpc.Document{Components: &c}
			for _, v := range tt.values {
				b, err := json.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				var x any
				if err := json.Unmarshal(b, &x); err != nil {
					t.Fatal(err)
				}
				if err := validate(doc, s, x, "$"); err != nil {
					t.Errorf("%s is not valid against the schema: %v", b, err)
				}
			}
		})
	}
}

// The schema rejects what the type does not encode: the validator below is
// not one that accepts everything.
func TestSchemaRejects(t *testing.T) {
	var c openrpc.Components
	doc := &openrpc.Document{Components: &c}
	tests := []struct {
		typ  reflect.Type
		give string
	}{
		{reflect.TypeFor[int](), `1.5`},
		{reflect.TypeFor[int8](), `128`},
		{reflect.TypeFor[uint](), `-1`},
		{reflect.TypeFor[string](), `null`},
		{reflect.TypeFor[[2]int](), `[1]`},
		{reflect.TypeFor[map[int]int](), `{"x":1}`},
		{reflect.TypeFor[Tagged](), `{"nick":"x"}`},                               // name missing
		{reflect.TypeFor[Node](), `{"value":1,"next":{"value":"x","next":null}}`}, // through the $ref
		{reflect.TypeFor[Embeds](), `{"id":"i","id2":"x","named":{"version":1},"Created":"2026-12-01T00:00:00Z","note":"n","Kind":1}`}, // own missing
		{reflect.TypeFor[*time.Time](), `3`},
	}
	for _, tt := range tests {
		s := c.SchemaOf(tt.typ)
		var x any
		if err := json.Unmarshal([]byte(tt.give), &x); err != nil {
			t.Fatal(err)
		}
		if err := validate(doc, s, x, "$"); err == nil {
			t.Errorf("%s: %s is valid against %s", tt.typ, tt.give, mustJSON(t, s))
		}
	}
}

// Two types with one name get two components: the second qualified by its
// package, the third numbered.
func TestComponentNames(t *testing.T) {
	type Node struct{ A int }
	var c openrpc.Components
	first := c.SchemaOf(reflect.TypeFor[Meta]())
	_ = c.SchemaOf(reflect.TypeFor[Meta]()) // the same type: the same component
	second := c.SchemaOf(reflect.TypeFor[Node]())
	outer := c.SchemaOf(reflect.TypeFor[struct{ N Node }]())
	type Meta struct{ B int }
	third := c.SchemaOf(reflect.TypeFor[Meta]())
	type Meta2 struct{}
	_ = Meta2{}
	func() {
		type Meta struct{ C int }
		fourth := c.SchemaOf(reflect.TypeFor[Meta]())
		if fourth.Ref != "#/components/schemas/openrpc_test.Meta2" {
			t.Errorf("fourth Meta: %s", fourth.Ref)
		}
	}()
	if first.Ref != "#/components/schemas/Meta" || second.Ref != "#/components/schemas/Node" ||
		third.Ref != "#/components/schemas/openrpc_test.Meta" || outer.Properties["N"].Ref != second.Ref {
		t.Errorf("refs %s %s %s %s", first.Ref, second.Ref, third.Ref, outer.Properties["N"].Ref)
	}
	if len(c.Schemas) != 4 {
		t.Errorf("%d components, want 4: %v", len(c.Schemas), slices.Sorted(mapsKeys(c.Schemas)))
	}
	name := regexp.MustCompile(`^[a-zA-Z0-9.\-_]+$`)
	var g openrpc.Components
	g.SchemaOf(reflect.TypeFor[Page[map[string]Node]]())
	for k := range g.Schemas {
		if !name.MatchString(k) {
			t.Errorf("component name %q has characters OpenRPC does not allow", k)
		}
	}
}

func TestTypesJSON(t *testing.T) {
	tests := []struct {
		give openrpc.Types
		want string
	}{
		{openrpc.Types{"string"}, `"string"`},
		{openrpc.Types{"array", "null"}, `["array","null"]`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.give)
		if err != nil || string(b) != tt.want {
			t.Errorf("%v: %s, %v; want %s", tt.give, b, err, tt.want)
		}
		var back openrpc.Types
		if err := json.Unmarshal(b, &back); err != nil || !slices.Equal(back, tt.give) {
			t.Errorf("%s decodes to %v, %v", b, back, err)
		}
	}
	var bad openrpc.Types
	if err := json.Unmarshal([]byte(`3`), &bad); err == nil {
		t.Error("a number decodes as a type")
	}
}

func TestDocumentLookup(t *testing.T) {
	doc := &openrpc.Document{Methods: []openrpc.Method{{Name: "*"}, {Name: "math.*"}, {Name: "math.add"}, {Name: "math.trig.*"}}}
	for give, want := range map[string]string{"math.add": "math.add", "math.sub": "math.*", "math.trig.sin": "math.trig.*", "x": "*", "": "*"} {
		m, ok := doc.Lookup(give)
		if !ok || m.Name != want {
			t.Errorf("Lookup(%q) = %q, %v; want %q", give, m.Name, ok, want)
		}
	}
	if _, ok := (&openrpc.Document{Methods: []openrpc.Method{{Name: "a"}}}).Lookup("b"); ok {
		t.Error("Lookup found a method that is not there")
	}
	var c openrpc.Components
	ref := c.SchemaOf(reflect.TypeFor[Meta]())
	d := &openrpc.Document{Components: &c}
	if got := d.Resolve(ref); got == ref || got.Properties["version"] == nil {
		t.Errorf("Resolve(%s) = %s", mustJSON(t, ref), mustJSON(t, got))
	}
	plain := &openrpc.Schema{Type: openrpc.Types{"string"}}
	if d.Resolve(plain) != plain {
		t.Error("Resolve changed a schema with no $ref")
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// golden compares got with the file at path, or rewrites it with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	got = append(bytes.TrimSpace(got), '\n')
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it); got\n%s", path, got)
	}
}

// validate checks the decoded JSON value x against s: the subset of JSON
// Schema that SchemaOf writes, resolving $ref in doc's components.
func validate(doc *openrpc.Document, s *openrpc.Schema, x any, at string) error {
	if s.Ref != "" {
		r := doc.Resolve(s)
		if r == s {
			return fmt.Errorf("%s: unresolved $ref %s", at, s.Ref)
		}
		return validate(doc, r, x, at)
	}
	if len(s.AnyOf) > 0 {
		var errs []string
		for _, alt := range s.AnyOf {
			err := validate(doc, alt, x, at)
			if err == nil {
				return nil
			}
			errs = append(errs, err.Error())
		}
		return fmt.Errorf("%s: no alternative of anyOf: %s", at, strings.Join(errs, "; "))
	}
	if len(s.Type) > 0 && !slices.Contains(s.Type, jsonType(x)) &&
		!(jsonType(x) == "integer" && slices.Contains(s.Type, "number")) {
		return fmt.Errorf("%s: %s is not %v", at, jsonType(x), s.Type)
	}
	switch v := x.(type) {
	case float64:
		if s.Minimum != nil && v < float64(*s.Minimum) || s.Maximum != nil && v > float64(*s.Maximum) {
			return fmt.Errorf("%s: %v out of range", at, v)
		}
	case []any:
		if s.MinItems != nil && len(v) < *s.MinItems || s.MaxItems != nil && len(v) > *s.MaxItems {
			return fmt.Errorf("%s: %d items", at, len(v))
		}
		if s.Items != nil {
			for i, e := range v {
				if err := validate(doc, s.Items, e, fmt.Sprintf("%s[%d]", at, i)); err != nil {
					return err
				}
			}
		}
	case map[string]any:
		for _, r := range s.Required {
			if _, ok := v[r]; !ok {
				return fmt.Errorf("%s: %q missing", at, r)
			}
		}
		for k, e := range v {
			if _, ok := s.Properties[k]; !ok && s.Properties != nil && s.AdditionalProperties == nil {
				// JSON Schema would allow it; the test is stricter, so that
				// a property SchemaOf forgets is found.
				return fmt.Errorf("%s: property %q not in the schema", at, k)
			}
			if s.PropertyNames != nil && s.PropertyNames.Pattern != "" && !regexp.MustCompile(s.PropertyNames.Pattern).MatchString(k) {
				return fmt.Errorf("%s: property name %q", at, k)
			}
			ps, ok := s.Properties[k]
			if !ok {
				ps = s.AdditionalProperties
			}
			if ps == nil {
				continue
			}
			if err := validate(doc, ps, e, at+"."+k); err != nil {
				return err
			}
		}
	}
	return nil
}

func jsonType(x any) string {
	switch v := x.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		if v == math.Trunc(v) {
			return "integer"
		}
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", x)
}
