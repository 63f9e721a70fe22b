package integration

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/handler"
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
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## A server and a client\n")
	if !ok {
		t.Fatal(`the README has no "## A server and a client" section`)
	}
	_, block, ok := strings.Cut(section, "```go\n")
	block, _, closed := strings.Cut(block, "```\n")
	if !ok || !closed {
		t.Fatal("the README's example is not a ```go block")
	}
	example := strings.Split(strings.TrimSuffix(block, "\n"), "\n")
	if len(example) > 20 {
		t.Errorf("the README's example has %d lines, want at most 20", len(example))
	}

	src, err := os.ReadFile("readme_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, body, _ := strings.Cut(string(src), "\nfunc TestREADMEExample(")
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
			t.Fatalf("the README's line %q is not in TestREADMEExample (in order, as %q)", l, want)
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
