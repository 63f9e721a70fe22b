package handler

import (
	"context"
	"slices"
	"sync"

	"github.com/wsrpc/wsrpc/openrpc"
	"github.com/wsrpc/wsrpc/rpc"
)

// EnableDiscovery makes the Mux answer the reserved method rpc.discover
// ([openrpc.MethodDiscover]) with an OpenRPC document ([openrpc.Document])
// that describes info and every route: its pattern (a prefix pattern keeps
// its '*'), and for a typed route ([Func], [NoParams], [NoResult], [Stream],
// [Register], ...) the JSON Schema of its params and result, derived from
// their Go types by [openrpc.Components.SchemaOf]; an untyped route is
// listed by its pattern alone. An empty info.Title is sent as "wsrpc", an
// empty info.Version as "0.0.0". Any params of the call are ignored.
//
// Discovery is off until this is called: a server does not tell its
// methods and their types to whoever connects unless it chooses to. The
// call goes through the global middleware ([Mux.Use]) like any other, so
// [Authorize] can keep it to some callers; mws wrap the discovery route
// alone, as [Mux.Handle]'s do. The document is built on the first call
// after the routes change, and encoded with the connection's value codec.
// Calling EnableDiscovery again replaces info and mws.
func (m *Mux) EnableDiscovery(info openrpc.Info, mws ...Middleware) {
	if info.Title == "" {
		info.Title = "wsrpc"
	}
	if info.Version == "" {
		info.Version = "0.0.0"
	}
	m.mu.Lock()
	m.discover = &discovery{info: info, mws: compact(mws)}
	m.table.Store(nil)
	m.mu.Unlock()
}

// discovery is the Mux's rpc.discover configuration.
type discovery struct {
	info openrpc.Info
	mws  []Middleware
}

// route is a registered pattern and what it knows of its types.
type route struct {
	pattern string
	sig     *signature // nil: untyped
}

// routesLocked returns the routes, sorted by pattern. The caller holds m.mu.
func (m *Mux) routesLocked() []route {
	rs := make([]route, 0, len(m.sigs))
	for p, s := range m.sigs {
		rs = append(rs, route{pattern: p, sig: s})
	}
	slices.SortFunc(rs, func(a, b route) int {
		switch {
		case a.pattern < b.pattern:
			return -1
		case a.pattern > b.pattern:
			return 1
		}
		return 0
	})
	return rs
}

// handler returns the handler of rpc.discover for the routes rs: it builds
// the document once, on its first call.
func (d *discovery) handler(rs []route) Handler {
	doc := sync.OnceValue(func() *openrpc.Document { return document(d.info, rs) })
	h := HandlerFunc(func(_ context.Context, req *rpc.Request) ([]byte, error) {
		return encodeResult(codecFor(req), doc())
	})
	return Chain(d.mws...)(h)
}

// document describes the routes rs.
func document(info openrpc.Info, rs []route) *openrpc.Document {
	doc := &openrpc.Document{OpenRPC: openrpc.Version, Info: info, Methods: make([]openrpc.Method, 0, len(rs))}
	comps := &openrpc.Components{}
	for _, r := range rs {
		m := openrpc.Method{Name: r.pattern}
		if s := r.sig; s != nil {
			m.Params = []openrpc.ContentDescriptor{}
			if s.params != nil {
				m.Params = append(m.Params, openrpc.ContentDescriptor{Name: "params", Schema: comps.SchemaOf(s.params)})
			}
			switch s.kind {
			case kindCall:
				res := &openrpc.Schema{Type: openrpc.Types{"null"}}
				if s.result != nil {
					res = comps.SchemaOf(s.result)
				}
				m.Result = &openrpc.ContentDescriptor{Name: "result", Schema: res}
			case kindStream:
				m.Stream = true
				m.Result = &openrpc.ContentDescriptor{Name: "result", Schema: &openrpc.Schema{Type: openrpc.Types{"array"}, Items: comps.SchemaOf(s.result)}}
			}
		}
		doc.Methods = append(doc.Methods, m)
	}
	if len(comps.Schemas) > 0 {
		doc.Components = comps
	}
	return doc
}
