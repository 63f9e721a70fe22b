package handler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/openrpc"
	"github.com/wsrpc/wsrpc/rpc"
)

var update = flag.Bool("update", false, "rewrite testdata/discover.golden.json")

// A declared API, as a package shared by a server and its clients would
// hold it.
type (
	GreetParams struct {
		Name     string `json:"name"`
		Language string `json:"language,omitempty"`
	}
	GreetResult struct {
		Greeting string    `json:"greeting"`
		At       time.Time `json:"at"`
	}
	Entry struct {
		Level   string   `json:"level"`
		Message string   `json:"message"`
		Tags    []string `json:"tags,omitempty"`
	}
	Tree struct {
		Name     string  `json:"name"`
		Children []*Tree `json:"children,omitempty"`
	}
)

var (
	greet   = rpc.NewMethod[GreetParams, GreetResult]("greet")
	logIt   = rpc.NewNotification[Entry]("log")
	tail    = rpc.NewStreamMethod[struct{ Lines int }, Entry]("tail")
	getTree = rpc.NewMethod[string, *Tree]("tree.get")
)

func greetFunc(_ context.Context, p GreetParams) (GreetResult, error) {
	if p.Name == "" {
		return GreetResult{}, rpc.Errorf(rpc.CodeInvalidParams, "name is required")
	}
	return GreetResult{Greeting: "hello, " + p.Name, At: time.Unix(0, 0).UTC()}, nil
}

// discoveryMux has a route of every kind.
func discoveryMux() *handler.Mux {
	mux := handler.NewMux()
	handler.Register(mux, greet, greetFunc)
	handler.RegisterNotification(mux, logIt, func(context.Context, Entry) error { return nil })
	handler.RegisterStream(mux, tail, func(_ context.Context, in struct{ Lines int }, send func(Entry) error) error {
		return send(Entry{Level: "info", Message: "one"})
	})
	handler.Register(mux, getTree, func(context.Context, string) (*Tree, error) { return &Tree{Name: "root"}, nil }, handler.Recover(nil))
	mux.Handle("math.*", handler.Func(func(_ context.Context, xs []float64) (float64, error) { return 0, nil }))
	mux.Handle("time", handler.NoParams(func(context.Context) (time.Time, error) { return time.Time{}, nil }))
	mux.Handle("reset", handler.NoResult(func(context.Context, map[string]bool) error { return nil }))
	mux.Handle("raw", echo)      // untyped: listed by name
	mux.Handle("legacy.*", echo) // an untyped pattern
	return mux
}

func discover(t *testing.T, mux *handler.Mux) []byte {
	t.Helper()
	b, err := mux.ServeRPC(context.Background(), newReq(openrpc.MethodDiscover, ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDiscoveryDocument compares the whole document with
// testdata/discover.golden.json (go test -update rewrites it), and checks
// what a client needs from it.
func TestDiscoveryDocument(t *testing.T) {
	mux := discoveryMux()
	mux.EnableDiscovery(openrpc.Info{Title: "greeter", Version: "1.2.0"})
	b := discover(t, mux)
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, b, "", "  "); err != nil {
		t.Fatal(err)
	}
	pretty.WriteByte('\n')
	const path = "testdata/discover.golden.json"
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Errorf("the document differs from %s (go test -update rewrites it):\n%s", path, pretty.Bytes())
	}

	var doc openrpc.Document
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenRPC != "1.3.2" || doc.Info.Title != "greeter" || doc.Info.Version != "1.2.0" {
		t.Errorf("header %q %+v", doc.OpenRPC, doc.Info)
	}
	var names []string
	for _, m := range doc.Methods {
		names = append(names, m.Name)
	}
	if got := strings.Join(names, " "); got != "greet legacy.* log math.* raw reset tail time tree.get" {
		t.Errorf("methods %s", got)
	}
	tests := []struct {
		method     string
		typed      bool
		params     int  // descriptors
		result     bool // has a result
		stream     bool
		resultType string // of the resolved result schema; "" to skip
	}{
		{"greet", true, 1, true, false, "object"},
		{"log", true, 1, false, false, ""},
		{"tail", true, 1, true, true, "array"},
		{"time", true, 0, true, false, "string"},
		{"reset", true, 1, true, false, "null"},
		{"raw", false, 0, false, false, ""},
		{"legacy.x", false, 0, false, false, ""},
		{"math.add", true, 1, true, false, "number"},
		{"tree.get", true, 1, true, false, ""},
	}
	for _, tt := range tests {
		m, ok := doc.Lookup(tt.method)
		if !ok {
			t.Errorf("%s: not in the document", tt.method)
			continue
		}
		if m.Typed() != tt.typed || len(m.Params) != tt.params || (m.Result != nil) != tt.result || m.Stream != tt.stream {
			t.Errorf("%s: %+v", tt.method, m)
			continue
		}
		if tt.resultType != "" {
			if got := doc.Resolve(m.Result.Schema).Type; len(got) != 1 || got[0] != tt.resultType {
				t.Errorf("%s: result type %v, want %s", tt.method, got, tt.resultType)
			}
		}
	}
	g, _ := doc.Lookup("greet")
	p := doc.Resolve(g.Params[0].Schema)
	if p.Properties["name"] == nil || p.Properties["language"] == nil || strings.Join(p.Required, ",") != "name" {
		t.Errorf("greet params schema %+v", p)
	}
}

func TestDiscoveryOff(t *testing.T) {
	mux := discoveryMux()
	_, err := mux.ServeRPC(context.Background(), newReq(openrpc.MethodDiscover, ""))
	wantCode(t, err, rpc.CodeMethodNotFound)

	// A catch-all route gets it, as any method it matches, while discovery is
	// off; once on, discovery answers.
	mux.Handle("*", named("catch-all"))
	if got, err := mux.ServeRPC(context.Background(), newReq(openrpc.MethodDiscover, "")); err != nil || string(got) != "catch-all" {
		t.Errorf("rpc.discover with a catch-all: %s, %v", got, err)
	}
	mux.EnableDiscovery(openrpc.Info{})
	var doc openrpc.Document
	if err := json.Unmarshal(discover(t, mux), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Info.Title != "wsrpc" || doc.Info.Version != "0.0.0" {
		t.Errorf("default info %+v", doc.Info)
	}
}

// A route added after the first rpc.discover is in the next document.
func TestDiscoveryFollowsRoutes(t *testing.T) {
	mux := handler.NewMux()
	mux.EnableDiscovery(openrpc.Info{Title: "t", Version: "1"})
	if got := string(discover(t, mux)); got != `{"openrpc":"1.3.2","info":{"title":"t","version":"1"},"methods":[]}` {
		t.Errorf("empty Mux: %s", got)
	}
	mux.Handle("a", handler.Func(func(_ context.Context, n int8) (bool, error) { return n > 0, nil }))
	want := `{"openrpc":"1.3.2","info":{"title":"t","version":"1"},"methods":[{"name":"a","params":[{"name":"params","schema":{"type":"integer","minimum":-128,"maximum":127}}],"result":{"name":"result","schema":{"type":"boolean"}}}]}`
	if got := string(discover(t, mux)); got != want {
		t.Errorf("after Handle:\n%s\nwant\n%s", got, want)
	}
}

// rpc.discover goes through the global middleware, so Authorize can keep it
// to some callers, and through the middleware given to EnableDiscovery.
func TestDiscoveryMiddleware(t *testing.T) {
	var log []string
	mux := discoveryMux()
	mux.Use(handler.Authorize(func(_ context.Context, _ any, method string) error {
		if method == openrpc.MethodDiscover {
			return errors.New("discovery is for operators")
		}
		return nil
	}))
	mux.EnableDiscovery(openrpc.Info{}, trace(&log, "d"))
	_, err := mux.ServeRPC(context.Background(), newReq(openrpc.MethodDiscover, ""))
	wantCode(t, err, rpc.CodePermissionDenied)
	if len(log) != 0 {
		t.Errorf("the discovery middleware ran for a refused call: %v", log)
	}

	open := handler.NewMux()
	open.EnableDiscovery(openrpc.Info{}, trace(&log, "d"))
	discover(t, open)
	if strings.Join(log, " ") != "d /d" {
		t.Errorf("middleware ran %v", log)
	}
}

// A registered method's handler answers bad params with -32602 without
// calling the function, and returns the function's errors and results.
func TestRegister(t *testing.T) {
	mux := discoveryMux()
	tests := []struct {
		method, params string
		want           string
		code           rpc.Code
	}{
		{"greet", `{"name":"ann"}`, `{"greeting":"hello, ann","at":"1970-01-01T00:00:00Z"}`, 0},
		{"greet", `{"name":3}`, "", rpc.CodeInvalidParams},
		{"greet", `["ann"]`, "", rpc.CodeInvalidParams},
		{"greet", `{}`, "", rpc.CodeInvalidParams}, // the function's own -32602
		{"log", `{"level":"info","message":"m"}`, "", 0},
		{"log", `"not an entry"`, "", rpc.CodeInvalidParams},
		{"tail", `{"Lines":1}`, `[{"level":"info","message":"one"}]`, 0}, // a plain call gets the array
		{"tail", `{"Lines":"x"}`, "", rpc.CodeInvalidParams},
		{"tree.get", `"root"`, `{"name":"root"}`, 0},
	}
	for _, tt := range tests {
		got, err := mux.ServeRPC(context.Background(), newReq(tt.method, tt.params))
		if rpc.CodeOf(err) != tt.code || string(got) != tt.want {
			t.Errorf("%s %s: %s, %v; want %s, code %d", tt.method, tt.params, got, err, tt.want, tt.code)
		}
	}
	if v := panicValue(func() { handler.Register(mux, greet, greetFunc) }); !errors.Is(v.(error), handler.ErrDuplicatePattern) {
		t.Errorf("a second Register of greet panicked with %v", v)
	}
}
