package openrpc

import "strings"

// Version is the OpenRPC version of the documents this package describes.
const Version = "1.3.2"

// MethodDiscover is the reserved method that returns a server's [Document].
const MethodDiscover = "rpc.discover"

// Document is an OpenRPC document: what rpc.discover returns.
type Document struct {
	OpenRPC string   `json:"openrpc"` // [Version]
	Info    Info     `json:"info"`
	Methods []Method `json:"methods"` // sorted by name
	// Components holds the named struct types the schemas refer to with
	// "$ref": "#/components/schemas/NAME".
	Components *Components `json:"components,omitempty"`
}

// Info says which service this is.
type Info struct {
	Title       string `json:"title"`
	Version     string `json:"version"`
	Description string `json:"description,omitempty"`
}

// Method describes one route of the server. Name is a method name, or a
// prefix pattern ending in '*' ("math.*") that routes every method starting
// with the text before the '*'; a method name never contains '*'.
//
// Params is nil for a route whose types are unknown (a handler that is not
// typed): then Result is nil as well, and neither says anything. A typed
// route has Params: empty when it takes no params, else one descriptor
// named "params" whose schema is the whole params value (the JSON-RPC
// "params" member as sent, an object or an array), not one descriptor per
// member. Result describes the result; it is nil for a declared
// notification, which has no reply. Stream marks a method that answers as
// a stream: each stream result is one item of the array its Result
// describes, which is what a caller that did not ask for a stream gets.
type Method struct {
	Name   string              `json:"name"`
	Params []ContentDescriptor `json:"params,omitzero"`
	Result *ContentDescriptor  `json:"result,omitempty"`
	Stream bool                `json:"x-wsrpc-stream,omitempty"`
}

// Typed reports whether m has its params and result described: false for a
// route that is listed by name only.
func (m Method) Typed() bool { return m.Params != nil }

// ContentDescriptor names a value and gives its schema.
type ContentDescriptor struct {
	Name   string  `json:"name"`
	Schema *Schema `json:"schema"`
}

// Lookup returns the method named name, or the pattern that routes it (the
// longest prefix), as the server routes a call; ok is false if none does.
func (d *Document) Lookup(name string) (m Method, ok bool) {
	best := -1
	for _, x := range d.Methods {
		if x.Name == name {
			return x, true
		}
		if n := len(x.Name) - 1; n >= 0 && x.Name[n] == '*' && n > best && len(name) >= n && name[:n] == x.Name[:n] {
			m, ok, best = x, true, n
		}
	}
	return m, ok
}

// Resolve returns the component schema that s refers to with its Ref, or
// s itself when it refers to nothing (or to a component the document
// lacks).
func (d *Document) Resolve(s *Schema) *Schema {
	if s == nil || s.Ref == "" || d.Components == nil {
		return s
	}
	name, ok := strings.CutPrefix(s.Ref, refPrefix)
	if !ok {
		return s
	}
	if c, ok := d.Components.Schemas[name]; ok {
		return c
	}
	return s
}
