package handler_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
)

func TestMuxRouting(t *testing.T) {
	mux := handler.NewMux()
	for _, p := range []string{"math.add", "math.*", "math.trig.*", "math.trig.sin", "m*", "str.upper"} {
		mux.Handle(p, named(p))
	}
	tests := []struct {
		give string // method
		want string // pattern that serves it; "" for not found
	}{
		{"math.add", "math.add"},           // exact beats every prefix
		{"math.sub", "math.*"},             // prefix
		{"math.", "math.*"},                // the prefix itself
		{"math.trig.cos", "math.trig.*"},   // longest prefix wins
		{"math.trig.sin", "math.trig.sin"}, // exact beats a longer prefix
		{"math.trig", "math.*"},            // "math.trig.*" needs the dot
		{"math", "m*"},
		{"mux", "m*"},
		{"str.upper", "str.upper"},
		{"str.lower", ""},
		{"str.upper.x", ""}, // exact routes are not prefixes
		{"", ""},
		{"xmath.add", ""},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, err := mux.ServeRPC(context.Background(), newReq(tt.give, ""))
			if tt.want == "" {
				wantCode(t, err, rpc.CodeMethodNotFound)
				if !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.give)) {
					t.Errorf("error %q does not name the method %q", err, tt.give)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("%q went to %q, want %q", tt.give, got, tt.want)
			}
		})
	}
}

func TestMuxCatchAll(t *testing.T) {
	var mux handler.Mux // the zero Mux is ready to use
	mux.Handle("*", named("*"))
	mux.Handle("a.*", named("a.*"))
	for method, want := range map[string]string{"": "*", "x": "*", "a.b": "a.*", "a": "*"} {
		got, err := mux.ServeRPC(context.Background(), newReq(method, ""))
		if err != nil || string(got) != want {
			t.Errorf("%q: got %q, %v; want %q", method, got, err, want)
		}
	}
}

func TestMuxHandleErrors(t *testing.T) {
	mux := handler.NewMux()
	for _, p := range []string{"math.add", "math.*"} {
		mux.Handle(p, echo)
	}
	tests := []struct {
		give string
		h    handler.Handler
		want error // nil for success; else errors.Is target
	}{
		{"", echo, handler.ErrInvalidPattern},
		{"*a", echo, handler.ErrInvalidPattern},
		{"a*b", echo, handler.ErrInvalidPattern},
		{"**", echo, handler.ErrInvalidPattern},
		{"a.**", echo, handler.ErrInvalidPattern},
		{"$/subscribe", echo, handler.ErrInvalidPattern}, // reserved by the protocol
		{"$/*", echo, handler.ErrInvalidPattern},
		{"rpc.discover", echo, handler.ErrInvalidPattern}, // reserved by JSON-RPC 2.0
		{"rpc.*", echo, handler.ErrInvalidPattern},
		{"math.add", echo, handler.ErrDuplicatePattern},
		{"math.*", echo, handler.ErrDuplicatePattern},
		{"math.add*", echo, nil}, // a prefix and an exact name are different patterns
		{"math.", echo, nil},
		{"*", echo, nil},
		{"rpc", echo, nil}, // only "rpc." starts a reserved name
		{"rpc*", echo, nil},
		{"$", echo, nil},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			err := mux.TryHandle(tt.give, tt.h)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("TryHandle(%q) = %v, want %v", tt.give, err, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.give)) {
				t.Errorf("error %q does not name the pattern", err)
			}
		})
	}
	if err := mux.TryHandle("nil", nil); err == nil {
		t.Error("TryHandle with a nil handler: no error")
	}
	if err := mux.TryHandle("nilfunc", handler.HandlerFunc(nil)); err == nil {
		t.Error("TryHandle with a nil HandlerFunc: no error")
	}
	// A refused registration leaves the first route in place.
	got, err := mux.ServeRPC(context.Background(), newReq("math.add", "1"))
	if err != nil || string(got) != "1" {
		t.Errorf("math.add after a duplicate: %q, %v", got, err)
	}
}

// Handle and HandleFunc panic, with the error TryHandle returns, where
// TryHandle fails; the Mux is left as it was.
func TestMuxHandlePanics(t *testing.T) {
	mux := handler.NewMux()
	mux.Handle("math.add", echo)
	tests := []struct {
		name   string
		handle func()
		want   error // errors.Is target; nil: any error
		text   string
	}{
		{"empty", func() { mux.Handle("", echo) }, handler.ErrInvalidPattern, `handle "": wsrpc: invalid pattern: empty`},
		{"star inside", func() { mux.Handle("a*b", echo) }, handler.ErrInvalidPattern, `handle "a*b": wsrpc: invalid pattern: '*' may only end a pattern`},
		{"duplicate", func() { mux.Handle("math.add", echo) }, handler.ErrDuplicatePattern, `handle "math.add": wsrpc: pattern already registered`},
		{"reserved $/", func() { mux.Handle("$/cancelRequest", echo) }, handler.ErrInvalidPattern,
			`handle "$/cancelRequest": wsrpc: invalid pattern: "$/" and "rpc." start the protocol's reserved methods`},
		{"reserved rpc.", func() { mux.HandleFunc("rpc.discover", echo) }, handler.ErrInvalidPattern,
			`handle "rpc.discover": wsrpc: invalid pattern: "$/" and "rpc." start the protocol's reserved methods`},
		{"nil handler", func() { mux.Handle("nil", nil) }, nil, `handle "nil": nil handler`},
		{"nil func", func() { mux.HandleFunc("nilfunc", nil) }, nil, `handle "nilfunc": nil handler`},
		{"nil HandlerFunc", func() { mux.Handle("nilfunc", handler.HandlerFunc(nil)) }, nil, `handle "nilfunc": nil handler`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := panicValue(tt.handle)
			err, ok := v.(error)
			if !ok {
				t.Fatalf("panicked with %v (%T), want an error", v, v)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("panic %v is not %v", err, tt.want)
			}
			if err.Error() != tt.text {
				t.Errorf("panic %q, want %q", err, tt.text)
			}
		})
	}
	for _, m := range []string{"nil", "nilfunc", "a*b"} {
		_, err := mux.ServeRPC(context.Background(), newReq(m, ""))
		wantCode(t, err, rpc.CodeMethodNotFound)
	}
	if got, err := mux.ServeRPC(context.Background(), newReq("math.add", "1")); err != nil || string(got) != "1" {
		t.Errorf("math.add after the refusals: %q, %v", got, err)
	}
}

// panicValue runs f and returns what it panicked with (nil if it did not).
func panicValue(f func()) (v any) {
	defer func() { v = recover() }()
	f()
	return nil
}

func TestMuxNotFound(t *testing.T) {
	mux := handler.NewMux()
	mux.NotFound(fail(rpc.NewError(42, "nope")))
	_, err := mux.ServeRPC(context.Background(), newReq("missing", ""))
	wantCode(t, err, 42)

	mux.NotFound(nil) // back to the default
	_, err = mux.ServeRPC(context.Background(), newReq("missing", ""))
	wantCode(t, err, rpc.CodeMethodNotFound)
}

func TestMuxMiddlewareOrder(t *testing.T) {
	var log []string
	mux := handler.NewMux()
	mux.Use(trace(&log, "a"), trace(&log, "b"))
	mux.Handle("m", named("m"), trace(&log, "c"), trace(&log, "d"))
	mux.HandleFunc("f", echo, trace(&log, "e"))
	mux.Use(trace(&log, "z")) // after Handle: applies to the next call

	tests := []struct {
		give string
		want string
	}{
		{"m", "a b z c d /d /c /z /b /a"},
		{"f", "a b z e /e /z /b /a"},
		{"unknown", "a b z /z /b /a"}, // global middleware sees not-found calls
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			log = nil
			mux.ServeRPC(context.Background(), newReq(tt.give, ""))
			if got := strings.Join(log, " "); got != tt.want {
				t.Errorf("ran %q, want %q", got, tt.want)
			}
		})
	}
}

// TestMuxConcurrent changes a Mux while it serves; run it with -race.
func TestMuxConcurrent(t *testing.T) {
	mux := handler.NewMux()
	mux.Handle("fixed", named("fixed"))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				got, err := mux.ServeRPC(context.Background(), newReq("fixed", ""))
				if err != nil || string(got) != "fixed" {
					t.Errorf("fixed: %q, %v", got, err)
					return
				}
				mux.ServeRPC(context.Background(), newReq(fmt.Sprintf("p%d.%d", g, i), ""))
			}
		})
	}
	wg.Go(func() {
		for i := range 200 {
			if err := mux.TryHandle(fmt.Sprintf("p%d.*", i%4*1000+i), echo); err != nil {
				t.Error(err)
				return
			}
			if i%50 == 0 {
				mux.Use(func(h handler.Handler) handler.Handler { return h })
				mux.NotFound(nil)
			}
		}
	})
	wg.Wait()
}
