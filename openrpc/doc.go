// Package openrpc is the shape of the document a wsrpc server returns from
// its discovery method, rpc.discover: an OpenRPC 1.3.2 document
// (https://spec.open-rpc.org) listing the server's methods, with a JSON
// Schema for the params and the result of each method whose Go types are
// known (a typed handler, or a declared method), and the name alone for
// the others.
//
// The server side (handler.Mux.EnableDiscovery) builds a [Document];
// client.Discover decodes one. [Components.SchemaOf] derives a JSON Schema
// from a Go type by reflection, following encoding/json's rules: json tags,
// omitempty and omitzero (not required), embedded structs, pointers, slices
// and maps (which encode nil as null), []byte (base64), time.Time
// (date-time), and named struct types as shared, possibly recursive,
// components.
//
// The package has no goroutines. A [Components] builds schemas for one
// document and is not safe for concurrent use; a finished [Document] is a
// plain value.
package openrpc
