package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// discoverMethod is the reserved method a server lists its methods with,
// as OpenRPC's service discovery does.
const discoverMethod = "rpc.discover"

// openRPC is the part of an OpenRPC document (spec.open-rpc.org) that
// call --list shows. It is read loosely, with the schemas kept as JSON,
// rather than into package openrpc's Document, which has the subset of JSON
// Schema a wsrpc server writes: call --list shows the documents of other
// OpenRPC servers too (enum, const, oneOf, prefixItems, boolean schemas).
type openRPC struct {
	OpenRPC string `json:"openrpc"`
	Info    struct {
		Title   string `json:"title"`
		Version string `json:"version"`
	} `json:"info"`
	Methods    []openRPCMethod `json:"methods"`
	Components struct {
		Schemas map[string]json.RawMessage `json:"schemas"`
	} `json:"components"`
}

type openRPCMethod struct {
	Name        string       `json:"name"`
	Summary     string       `json:"summary"`
	Description string       `json:"description"`
	Params      []openRPCArg `json:"params"`
	Result      *openRPCArg  `json:"result"`
	Deprecated  bool         `json:"deprecated"`
	Stream      bool         `json:"x-wsrpc-stream"`
}

type openRPCArg struct {
	Name     string          `json:"name"`
	Required bool            `json:"required"`
	Schema   json.RawMessage `json:"schema"`
}

// maxTypeWidth bounds a params or result column; longer ones end in "…".
const maxTypeWidth = 60

// printMethods prints the methods of the OpenRPC document doc, one a line:
// name, params, result and, when the document has some, summary.
func printMethods(w io.Writer, doc []byte) error {
	var d openRPC
	if err := json.Unmarshal(doc, &d); err != nil {
		return fmt.Errorf("%s answered what is not an OpenRPC document: %v", discoverMethod, err)
	}
	if d.Info.Title != "" {
		title := d.Info.Title
		if d.Info.Version != "" {
			title += " " + d.Info.Version
		}
		fmt.Fprintf(w, "%s: %d methods\n", title, len(d.Methods))
	}
	slices.SortFunc(d.Methods, func(a, b openRPCMethod) int { return strings.Compare(a.Name, b.Name) })
	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	x := &schemaText{components: d.Components.Schemas}
	// The SUMMARY column only when there is something to put in it (a wsrpc
	// server writes no summaries).
	withAbout := slices.ContainsFunc(d.Methods, func(m openRPCMethod) bool {
		return m.Summary != "" || m.Description != "" || m.Deprecated
	})
	if withAbout {
		fmt.Fprintln(tw, "METHOD\tPARAMS\tRESULT\tSUMMARY")
	} else {
		fmt.Fprintln(tw, "METHOD\tPARAMS\tRESULT")
	}
	for _, m := range d.Methods {
		x.visits = 0
		params := clip(x.params(m.Params))
		x.visits = 0
		result := "?" // an untyped method: the server does not know
		switch {
		case m.Result != nil && m.Stream:
			result = "stream of " + clip(x.streamItems(m.Result.Schema))
		case m.Result != nil:
			result = clip(x.of(m.Result.Schema, 0))
		case m.Params != nil:
			result = "(no reply)" // a declared notification
		}
		about := m.Summary
		if about == "" {
			about, _, _ = strings.Cut(m.Description, "\n")
		}
		if m.Deprecated {
			about = strings.TrimSpace("(deprecated) " + about)
		}
		if withAbout {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", flat(m.Name), params, result, flat(about))
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", flat(m.Name), params, result)
		}
	}
	tw.Flush()
	for _, line := range strings.SplitAfter(table.String(), "\n") {
		if line != "" {
			fmt.Fprintln(w, strings.TrimRight(line, " \n"))
		}
	}
	return nil
}

// flat keeps s on one line of the table.
func flat(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func clip(s string) string {
	s = flat(s)
	if r := []rune(s); len(r) > maxTypeWidth {
		return string(r[:maxTypeWidth-1]) + "…"
	}
	return s
}

// streamItems describes the items of a stream's result schema,
// {"type": "array", "items": I}.
func (x *schemaText) streamItems(raw json.RawMessage) string {
	var s jsonSchema
	if json.Unmarshal(raw, &s) != nil || len(s.Items) == 0 {
		return x.of(raw, 0)
	}
	return x.of(s.Items, 0)
}

// params describes a method's params: "?" when the server does not
// know them (an untyped method), "-" for none, the schema of the one param
// named "params" (the whole params value, as wsrpc servers describe it), or
// OpenRPC's list of named params.
func (x *schemaText) params(params []openRPCArg) string {
	switch {
	case params == nil:
		return "?"
	case len(params) == 0:
		return "-"
	case len(params) == 1 && params[0].Name == "params":
		return x.of(params[0].Schema, 0)
	}
	parts := make([]string, len(params))
	for i, p := range params {
		opt := "?"
		if p.Required {
			opt = ""
		}
		parts[i] = p.Name + opt + ": " + x.of(p.Schema, 1)
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// jsonSchema is the part of a JSON Schema that schemaText reads.
type jsonSchema struct {
	Type        json.RawMessage            `json:"type"` // a string or a list of them
	Items       json.RawMessage            `json:"items"`
	PrefixItems []json.RawMessage          `json:"prefixItems"`
	Properties  map[string]json.RawMessage `json:"properties"`
	Required    []string                   `json:"required"`
	Enum        []json.RawMessage          `json:"enum"`
	Const       json.RawMessage            `json:"const"`
	Ref         string                     `json:"$ref"`
	AnyOf       []json.RawMessage          `json:"anyOf"`
	OneOf       []json.RawMessage          `json:"oneOf"`
	Additional  json.RawMessage            `json:"additionalProperties"`
	MinItems    *int                       `json:"minItems"`
	MaxItems    *int                       `json:"maxItems"`
}

// maxSchemaDepth is how deep a description goes into nested schemas.
const maxSchemaDepth = 3

// schemaText describes JSON Schemas in a few words, with the components
// of their document: a $ref to one is described as what it refers to, but
// where it refers to itself (a recursive type), by its name.
type schemaText struct {
	components map[string]json.RawMessage
	expanding  map[string]bool
	visits     int // schemas described since the last reset: bounded by maxVisits
}

// maxVisits bounds the schemas one column describes: a document whose
// alternatives refer to alternatives could otherwise make the work grow
// as a power of its size.
const maxVisits = 1000

// schemaType describes a schema without components: what x.of does.
func schemaType(raw json.RawMessage, depth int) string { return (&schemaText{}).of(raw, depth) }

// ref describes the schema a $ref names: the component, or its name when it
// is not one of the document's or is being described already.
func (x *schemaText) ref(ref string, depth int) string {
	name := ref[strings.LastIndex(ref, "/")+1:]
	raw, ok := x.components[name]
	if !ok || !strings.HasPrefix(ref, "#/components/schemas/") || x.expanding[name] {
		return name
	}
	if x.expanding == nil {
		x.expanding = map[string]bool{}
	}
	x.expanding[name] = true
	defer delete(x.expanding, name)
	return x.of(raw, depth)
}

// of describes a JSON Schema in a few words: "number", "[]string" (an
// array of strings), "[2]number" (of two numbers), "[number, string]" (a
// tuple), "map[string]integer", "{a: number, b?: string}" (b may be left
// out), "string|null", "Point" (a $ref not expanded), "any".
func (x *schemaText) of(raw json.RawMessage, depth int) string {
	if x.visits++; x.visits > maxVisits {
		return "…"
	}
	if len(raw) == 0 || string(raw) == "true" || string(raw) == "{}" || string(raw) == "null" {
		return "any"
	}
	if string(raw) == "false" {
		return "never"
	}
	var s jsonSchema
	if json.Unmarshal(raw, &s) != nil {
		return "?"
	}
	if depth >= maxSchemaDepth {
		return "…"
	}
	alts := func(list []json.RawMessage) string {
		parts := make([]string, len(list))
		for i, r := range list {
			parts[i] = x.of(r, depth+1)
		}
		return strings.Join(parts, "|")
	}
	switch {
	case s.Ref != "":
		return x.ref(s.Ref, depth)
	case len(s.Const) > 0:
		return string(s.Const)
	case len(s.Enum) > 0:
		parts := make([]string, len(s.Enum))
		for i, v := range s.Enum {
			parts[i] = string(v)
		}
		return strings.Join(parts, "|")
	case len(s.AnyOf) > 0:
		return alts(s.AnyOf)
	case len(s.OneOf) > 0:
		return alts(s.OneOf)
	}
	var types []string
	if json.Unmarshal(s.Type, &types) != nil {
		var one string
		if json.Unmarshal(s.Type, &one) == nil && one != "" {
			types = []string{one}
		}
	}
	if len(types) == 0 {
		switch {
		case len(s.Properties) > 0:
			types = []string{"object"}
		case len(s.Items) > 0 || len(s.PrefixItems) > 0:
			types = []string{"array"}
		default:
			return "any"
		}
	}
	parts := make([]string, len(types))
	for i, t := range types {
		parts[i] = x.describe(&s, t, depth)
	}
	return strings.Join(parts, "|")
}

// describe describes s as a value of type t.
func (x *schemaText) describe(s *jsonSchema, t string, depth int) string {
	switch t {
	case "array":
		if len(s.PrefixItems) > 0 {
			parts := make([]string, len(s.PrefixItems))
			for i, r := range s.PrefixItems {
				parts[i] = x.of(r, depth+1)
			}
			return "[" + strings.Join(parts, ", ") + "]"
		}
		var tuple []json.RawMessage // the items of drafts before 2020-12
		if json.Unmarshal(s.Items, &tuple) == nil && len(tuple) > 0 {
			parts := make([]string, len(tuple))
			for i, r := range tuple {
				parts[i] = x.of(r, depth+1)
			}
			return "[" + strings.Join(parts, ", ") + "]"
		}
		if s.MinItems != nil && s.MaxItems != nil && *s.MinItems == *s.MaxItems {
			return fmt.Sprintf("[%d]%s", *s.MinItems, x.of(s.Items, depth+1))
		}
		return "[]" + x.of(s.Items, depth+1)
	case "object":
		if len(s.Properties) == 0 {
			if len(s.Additional) > 0 && string(s.Additional) != "true" && string(s.Additional) != "false" {
				return "map[string]" + x.of(s.Additional, depth+1)
			}
			return "object"
		}
		names := make([]string, 0, len(s.Properties))
		for name := range s.Properties {
			names = append(names, name)
		}
		slices.Sort(names)
		parts := make([]string, len(names))
		for i, name := range names {
			opt := "?"
			if slices.Contains(s.Required, name) {
				opt = ""
			}
			parts[i] = name + opt + ": " + x.of(s.Properties[name], depth+1)
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return t
}
