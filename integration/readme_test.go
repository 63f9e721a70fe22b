package integration

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/openrpc"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
)

// TestREADMEExample is the README's server-and-client example, on a free
// port instead of 8080, so that the example is known to compile and work.
// TestREADMEShowsTheExample checks that the README shows this code.
func TestREADMEExample(t *testing.T) {
	ctx := context.Background()

	mux := handler.NewMux()
	mux.Handle("add", handler.Func(func(ctx context.Context, xs [2]float64) (float64, error) {
		return xs[0] + xs[1], nil
	}))
	srv, _ := server.New(mux)
	ln, err := net.Listen("tcp", "127.0.0.1:0") // README: 127.0.0.1:8080
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())

	c, err := client.Dial(ctx, "ws://"+ln.Addr().String()+"/rpc")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var sum float64
	err = c.Call(ctx, "add", []float64{1, 2.5}, &sum)
	if err != nil || sum != 3.5 {
		t.Fatalf("add = %v, %v", sum, err)
	}
}

// readmeToTest turns a line of the README's example into its line in
// TestREADMEExample: the free port, and t.Fatal for return.
var readmeToTest = strings.NewReplacer(
	`"ws://127.0.0.1:8080/rpc"`, `"ws://"+ln.Addr().String()+"/rpc"`,
	`"127.0.0.1:8080"`, `"127.0.0.1:0"`,
	`return err`, `t.Fatal(err)`,
)

// TestREADMEShowsTheExample: the Go block of the README's "A server and
// a client" is at most 20 lines, and every line of it, comments aside, is
// a line of TestREADMEExample, in the same order.
func TestREADMEShowsTheExample(t *testing.T) {
	example := readmeBlock(t, 0)
	if len(example) > 20 {
		t.Errorf("the README's example has %d lines, want at most 20", len(example))
	}
	shownInOrder(t, example, "TestREADMEExample")
}

// TestREADMETypedExample is the README's second example, typed methods and
// discovery, on the server and client of the first.
func TestREADMETypedExample(t *testing.T) {
	ctx := context.Background()
	mux := handler.NewMux()
	srv, _ := server.New(mux)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())

	var Add = rpc.NewMethod[[]float64, float64]("add")

	handler.Register(mux, Add, func(ctx context.Context, xs []float64) (float64, error) {
		return xs[0] + xs[1], nil
	})
	mux.EnableDiscovery(openrpc.Info{Title: "calc", Version: "1.0.0"})
	c, err := client.Dial(ctx, "ws://"+ln.Addr().String()+"/rpc")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sum, err := client.CallMethod(ctx, c, Add, []float64{1, 2.5})
	if err != nil || sum != 3.5 {
		t.Fatalf("add = %v, %v", sum, err)
	}
	doc, err := client.Discover(ctx, c)
	if err != nil || len(doc.Methods) != 1 || doc.Methods[0].Name != "add" || !doc.Methods[0].Typed() {
		t.Fatalf("Discover: %+v, %v", doc, err)
	}
}

// TestREADMEShowsTheTypedExample: every line of the README's second Go
// block, comments aside, is a line of TestREADMETypedExample, in order.
func TestREADMEShowsTheTypedExample(t *testing.T) {
	shownInOrder(t, readmeBlock(t, 1), "TestREADMETypedExample")
}

// readmeBlock returns the lines of the n-th Go block (from 0) of the
// README's "A server and a client".
func readmeBlock(t *testing.T, n int) []string {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## A server and a client\n")
	if !ok {
		t.Fatal(`the README has no "## A server and a client" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var block string
	for i := 0; i <= n; i++ {
		var closed bool
		_, section, ok = strings.Cut(section, "```go\n")
		block, section, closed = strings.Cut(section, "```\n")
		if !ok || !closed {
			t.Fatalf("the README's section has no Go block %d", n)
		}
	}
	return strings.Split(strings.TrimSuffix(block, "\n"), "\n")
}

// shownInOrder fails t unless every line of example, comments aside, is a
// line of the test function fn of this file, in the same order.
func shownInOrder(t *testing.T, example []string, fn string) {
	t.Helper()
	src, err := os.ReadFile("readme_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, body, _ := strings.Cut(string(src), "\nfunc "+fn+"(")
	body, _, _ = strings.Cut(body, "\n}\n")
	var test []string
	for _, l := range strings.Split(body, "\n") {
		test = append(test, code(l))
	}
	i := 0
	for _, l := range example {
		want := readmeToTest.Replace(code(l))
		if want == "" {
			continue
		}
		for i < len(test) && test[i] != want {
			i++
		}
		if i == len(test) {
			t.Fatalf("the README's line %q is not in %s (in order, as %q)", l, fn, want)
		}
		i++
	}
}

// code returns a line of Go without its indentation and trailing comment
// ("" for a comment line or a blank one).
func code(line string) string {
	line = strings.TrimSpace(line)
	if strings.HasPrefix(line, "//") {
		return ""
	}
	if i := strings.Index(line, " //"); i >= 0 {
		line = line[:i]
	}
	return strings.TrimSpace(line)
}
