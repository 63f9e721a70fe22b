package openrpc

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"
)

// refPrefix starts the $ref of a component schema.
const refPrefix = "#/components/schemas/"

// Schema is the subset of JSON Schema (draft 2020-12) that describes a Go
// type as encoding/json encodes it. The empty Schema accepts any value.
type Schema struct {
	Ref                  string             `json:"$ref,omitempty"`
	Type                 Types              `json:"type,omitempty"`
	Format               string             `json:"format,omitempty"`
	ContentEncoding      string             `json:"contentEncoding,omitempty"`
	Pattern              string             `json:"pattern,omitempty"`
	Minimum              *int64             `json:"minimum,omitempty"`
	Maximum              *int64             `json:"maximum,omitempty"`
	Items                *Schema            `json:"items,omitempty"`
	MinItems             *int               `json:"minItems,omitempty"`
	MaxItems             *int               `json:"maxItems,omitempty"`
	Properties           map[string]*Schema `json:"properties,omitempty"`
	Required             []string           `json:"required,omitempty"`
	AdditionalProperties *Schema            `json:"additionalProperties,omitempty"`
	PropertyNames        *Schema            `json:"propertyNames,omitempty"`
	AnyOf                []*Schema          `json:"anyOf,omitempty"`
	Description          string             `json:"description,omitempty"`
}

// Types is a schema's "type": one JSON type name, or several (a Go value
// that may also encode as null has "null" among them). One type encodes as
// a string, several as an array, as JSON Schema allows.
type Types []string

// MarshalJSON encodes one type as a string, several as an array.
func (t Types) MarshalJSON() ([]byte, error) {
	if len(t) == 1 {
		return json.Marshal(t[0])
	}
	return json.Marshal([]string(t))
}

// UnmarshalJSON accepts a string or an array of strings.
func (t *Types) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*t = Types{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("openrpc: schema type must be a string or an array of strings: %w", err)
	}
	*t = many
	return nil
}

// Components holds the schemas of the named struct types of one document,
// by component name. Schemas that mention such a type refer to it with a
// $ref, which is how a recursive type is described.
type Components struct {
	Schemas map[string]*Schema `json:"schemas,omitempty"`

	names    map[reflect.Type]string // the component of each type described
	visiting map[reflect.Type]bool   // named non-struct types being described
}

var (
	timeType          = reflect.TypeFor[time.Time]()
	rawMessageType    = reflect.TypeFor[json.RawMessage]()
	numberType        = reflect.TypeFor[json.Number]()
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// SchemaOf returns the JSON Schema of the values of t as encoding/json
// encodes them, adding the named struct types it meets to c (a nil t, as
// for an interface value, gives the empty schema):
//
//   - bool, integers, floats and strings: "boolean", "integer" (with
//     "minimum" and "maximum" for the sized types, "minimum": 0 for
//     unsigned ones), "number", "string";
//   - a pointer: its element's schema, allowing null;
//   - a slice: "array" of its element, or null; []byte is a base64
//     "string" (contentEncoding base64), or null; an array: "array" with
//     exactly its length of items;
//   - a map: "object" with its values as additionalProperties, or null;
//     integer keys are decimal property names;
//   - a struct: "object" with a property per field encoding/json encodes
//     (json tags, "-", embedded structs promoted, ",string"), and every
//     property required but those tagged omitempty or omitzero and those
//     of an embedded pointer; a named struct type is a component, referred
//     to by "$ref": "#/components/schemas/NAME", and so is a named pointer,
//     slice, array or map type that contains itself;
//   - time.Time: a "date-time" string; json.Number: "number";
//     json.RawMessage and interfaces: any value; another type with its
//     own MarshalJSON: any value, with a description; one with a
//     MarshalText: "string";
//   - types encoding/json cannot encode (channels, functions, complex
//     numbers): a schema with a description saying so.
func (c *Components) SchemaOf(t reflect.Type) *Schema {
	if t == nil {
		return &Schema{}
	}
	switch t {
	case timeType:
		return &Schema{Type: Types{"string"}, Format: "date-time"}
	case rawMessageType:
		return &Schema{}
	case numberType:
		return &Schema{Type: Types{"number"}}
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
		if t.Name() != "" {
			return c.named(t)
		}
	}
	return c.schemaOf(t)
}

// named describes a named pointer, slice, array or map type, which may
// contain itself (type List []List): met again while it is described, it
// becomes a component, as a struct type is.
func (c *Components) named(t reflect.Type) *Schema {
	if name, ok := c.names[t]; ok {
		return &Schema{Ref: refPrefix + name}
	}
	if c.visiting[t] {
		c.register(t)
		return &Schema{Ref: refPrefix + c.names[t]}
	}
	if c.visiting == nil {
		c.visiting = make(map[reflect.Type]bool)
	}
	c.visiting[t] = true
	s := c.schemaOf(t)
	delete(c.visiting, t)
	if name, ok := c.names[t]; ok { // it contains itself
		*c.Schemas[name] = *s
		return &Schema{Ref: refPrefix + name}
	}
	return s
}

// register gives t a component name and an empty schema to fill.
func (c *Components) register(t reflect.Type) *Schema {
	if c.names == nil {
		c.names = make(map[reflect.Type]string)
	}
	if c.Schemas == nil {
		c.Schemas = make(map[string]*Schema)
	}
	name := c.componentName(t)
	c.names[t] = name
	s := &Schema{}
	c.Schemas[name] = s
	return s
}

// schemaOf is SchemaOf for t itself, whatever its name.
func (c *Components) schemaOf(t reflect.Type) *Schema {
	if t.Kind() == reflect.Pointer {
		return nullable(c.SchemaOf(t.Elem()))
	}
	if t.Implements(jsonMarshalerType) || reflect.PointerTo(t).Implements(jsonMarshalerType) {
		return &Schema{Description: fmt.Sprintf("any JSON value (%s has its own MarshalJSON)", t)}
	}
	if t.Implements(textMarshalerType) || reflect.PointerTo(t).Implements(textMarshalerType) {
		return &Schema{Type: Types{"string"}}
	}
	switch t.Kind() {
	case reflect.Bool:
		return &Schema{Type: Types{"boolean"}}
	case reflect.Int, reflect.Int64:
		return &Schema{Type: Types{"integer"}}
	case reflect.Int8, reflect.Int16, reflect.Int32:
		bits := t.Bits()
		return &Schema{Type: Types{"integer"}, Minimum: ptr(-int64(1) << (bits - 1)), Maximum: ptr(int64(1)<<(bits-1) - 1)}
	case reflect.Uint, reflect.Uint64, reflect.Uintptr:
		return &Schema{Type: Types{"integer"}, Minimum: ptr[int64](0)}
	case reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return &Schema{Type: Types{"integer"}, Minimum: ptr[int64](0), Maximum: ptr(int64(1)<<t.Bits() - 1)}
	case reflect.Float32, reflect.Float64:
		return &Schema{Type: Types{"number"}}
	case reflect.String:
		return &Schema{Type: Types{"string"}}
	case reflect.Interface:
		return &Schema{}
	case reflect.Slice:
		if isBytes(t) {
			return &Schema{Type: Types{"string", "null"}, ContentEncoding: "base64"}
		}
		return &Schema{Type: Types{"array", "null"}, Items: c.SchemaOf(t.Elem())}
	case reflect.Array:
		return &Schema{Type: Types{"array"}, Items: c.SchemaOf(t.Elem()), MinItems: ptr(t.Len()), MaxItems: ptr(t.Len())}
	case reflect.Map:
		return c.mapSchema(t)
	case reflect.Struct:
		if t.Name() == "" {
			return c.object(t)
		}
		return c.ref(t)
	}
	return unsupported(t)
}

func ptr[T any](v T) *T { return &v }

// isBytes reports whether encoding/json encodes the slice type t as base64:
// a slice of bytes whose element has no encoding of its own.
func isBytes(t reflect.Type) bool {
	e := t.Elem()
	if e.Kind() != reflect.Uint8 {
		return false
	}
	p := reflect.PointerTo(e)
	return !p.Implements(jsonMarshalerType) && !p.Implements(textMarshalerType)
}

func unsupported(t reflect.Type) *Schema {
	return &Schema{Description: fmt.Sprintf("%s has no JSON encoding", t)}
}

// nullable returns s allowing null as well.
func nullable(s *Schema) *Schema {
	switch {
	case s.Ref == "" && len(s.AnyOf) == 0 && len(s.Type) > 0:
		if slices.Contains(s.Type, "null") {
			return s
		}
		n := *s
		n.Type = append(slices.Clip(s.Type), "null")
		return &n
	case s.Ref == "" && len(s.AnyOf) == 0 && len(s.Type) == 0 && s.Description == "":
		return s // any value: null included
	case len(s.AnyOf) == 2 && s.AnyOf[1].Ref == "" && slices.Equal(s.AnyOf[1].Type, Types{"null"}):
		return s // nullable already
	}
	return &Schema{AnyOf: []*Schema{s, {Type: Types{"null"}}}}
}

func (c *Components) mapSchema(t reflect.Type) *Schema {
	k := t.Key()
	s := &Schema{Type: Types{"object", "null"}, AdditionalProperties: c.SchemaOf(t.Elem())}
	switch {
	case k.Kind() == reflect.String:
	case reflect.PointerTo(k).Implements(textMarshalerType) || k.Implements(textMarshalerType):
	case k.Kind() >= reflect.Int && k.Kind() <= reflect.Int64:
		s.PropertyNames = &Schema{Pattern: "^-?[0-9]+$"}
	case k.Kind() >= reflect.Uint && k.Kind() <= reflect.Uintptr:
		s.PropertyNames = &Schema{Pattern: "^[0-9]+$"}
	default:
		return unsupported(t)
	}
	return s
}

// ref returns a reference to the component of the named struct type t,
// describing it first if it is new. The component is registered before its
// fields are described, so a type that contains itself refers to itself.
func (c *Components) ref(t reflect.Type) *Schema {
	if _, ok := c.names[t]; !ok {
		s := c.register(t)
		*s = *c.object(t)
	}
	return &Schema{Ref: refPrefix + c.names[t]}
}

// componentName returns a name for t's component that no other type has:
// its Go name, else qualified by its package's name, else numbered. The
// type arguments of a generic type are named by package name, not import
// path. Names keep to the characters OpenRPC allows ([a-zA-Z0-9.-_]).
func (c *Components) componentName(t reflect.Type) string {
	base := componentSafe(importPath.ReplaceAllString(t.Name(), ""))
	if _, taken := c.Schemas[base]; !taken {
		return base
	}
	pkg := t.PkgPath()
	if i := strings.LastIndexByte(pkg, '/'); i >= 0 {
		pkg = pkg[i+1:]
	}
	q := componentSafe(pkg + "." + importPath.ReplaceAllString(t.Name(), ""))
	if _, taken := c.Schemas[q]; !taken {
		return q
	}
	for i := 2; ; i++ {
		n := fmt.Sprintf("%s%d", q, i)
		if _, taken := c.Schemas[n]; !taken {
			return n
		}
	}
}

// importPath matches the directories of an import path in a type's name
// ("example.com/x/" in "Page[example.com/x/pkg.T]").
var importPath = regexp.MustCompile(`[^\[\],/ ]*/`)

func componentSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}

// object describes a struct type's fields as an object schema.
func (c *Components) object(t reflect.Type) *Schema {
	s := &Schema{Type: Types{"object"}}
	for _, f := range jsonFields(t) {
		var fs *Schema
		if f.quoted {
			fs = &Schema{Type: Types{"string"}}
			if f.typ.Kind() == reflect.Pointer {
				fs = nullable(fs)
			}
		} else {
			fs = c.SchemaOf(f.typ)
		}
		if s.Properties == nil {
			s.Properties = make(map[string]*Schema)
		}
		s.Properties[f.name] = fs
		if !f.optional {
			s.Required = append(s.Required, f.name)
		}
	}
	return s
}

// field is one member of a struct's JSON encoding.
type field struct {
	name     string
	typ      reflect.Type
	depth    int  // of embedding: 0 for the struct's own fields
	tagged   bool // the name comes from a json tag
	optional bool // omitempty, omitzero, or inside an embedded pointer
	quoted   bool // the ",string" option on a basic type
}

// jsonFields lists the fields encoding/json encodes for the struct type t,
// in its order: exported fields (and those promoted from embedded structs)
// not tagged "-"; where several have one name, the shallowest wins, then a
// tagged one, and if that leaves more than one, none.
func jsonFields(t reflect.Type) []field {
	var all []field
	collectFields(t, 0, false, map[reflect.Type]bool{t: true}, &all)
	byName := make(map[string][]int)
	for i, f := range all {
		byName[f.name] = append(byName[f.name], i)
	}
	var out []field
	for i, f := range all {
		if winner(all, byName[f.name]) == i {
			out = append(out, f)
		}
	}
	return out
}

// winner returns which of the fields at idx (one name) is encoded, or -1.
func winner(all []field, idx []int) int {
	if len(idx) == 1 {
		return idx[0]
	}
	depth := all[idx[0]].depth
	for _, i := range idx {
		depth = min(depth, all[i].depth)
	}
	best, tagged, n := -1, 0, 0
	for _, i := range idx {
		if all[i].depth != depth {
			continue
		}
		n++
		if all[i].tagged {
			tagged++
			best = i
		} else if tagged == 0 {
			best = i
		}
	}
	if tagged == 1 || n == 1 {
		return best
	}
	return -1
}

func collectFields(t reflect.Type, depth int, viaPointer bool, onPath map[reflect.Type]bool, out *[]field) {
	for i := range t.NumField() {
		sf := t.Field(i)
		ft := sf.Type
		if ft.Name() == "" && ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if sf.Anonymous {
			if !sf.IsExported() && ft.Kind() != reflect.Struct {
				continue
			}
		} else if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if !validFieldName(name) {
			name = ""
		}
		if name == "" && sf.Anonymous && ft.Kind() == reflect.Struct {
			if !onPath[ft] {
				onPath[ft] = true
				collectFields(ft, depth+1, viaPointer || sf.Type.Kind() == reflect.Pointer, onPath, out)
				delete(onPath, ft)
			}
			continue
		}
		f := field{name: name, typ: sf.Type, depth: depth, tagged: name != "", optional: viaPointer}
		if f.name == "" {
			f.name = sf.Name
		}
		for _, o := range strings.Split(opts, ",") {
			switch o {
			case "omitempty", "omitzero":
				f.optional = true
			case "string":
				switch ft.Kind() {
				case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
					reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
					reflect.Float32, reflect.Float64, reflect.String:
					f.quoted = true
				}
			}
		}
		*out = append(*out, f)
	}
}

// validFieldName reports whether encoding/json accepts name from a tag.
func validFieldName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", r):
		case r >= 0x80, r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		default:
			return false
		}
	}
	return true
}
