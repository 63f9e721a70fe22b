package rpc_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/wsrpc/wsrpc/rpc"
)

type sumParams struct {
	Xs []int `json:"xs"`
}

type sumResult struct {
	Sum   int `json:"sum"`
	Count int `json:"count"`
}

var (
	sum     = rpc.NewMethod[sumParams, sumResult]("sum")
	note    = rpc.NewNotification[[]string]("note")
	upTo    = rpc.NewStreamMethod[[1]int, int]("up.to")
	badItem = rpc.NewStreamMethod[[1]int, int]("bad.item")
)

// declared serves the declared methods by hand (handler.Register is the
// usual way; the rpc package cannot import it): it is the wire behaviour
// that is tested here.
func declared(notes chan<- string) rpc.Handler {
	return rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		switch req.Method {
		case sum.Name():
			var p sumParams
			if err := json.Unmarshal(req.Params, &p); err != nil {
				return nil, rpc.Errorf(rpc.CodeInvalidParams, "%v", err)
			}
			r := sumResult{Count: len(p.Xs)}
			for _, x := range p.Xs {
				r.Sum += x
			}
			return json.Marshal(r)
		case note.Name():
			var s []string
			_ = json.Unmarshal(req.Params, &s)
			notes <- strings.Join(s, " ")
			return nil, nil
		case upTo.Name(), badItem.Name():
			var n [1]int
			_ = json.Unmarshal(req.Params, &n)
			for i := 1; i <= n[0]; i++ {
				v := any(i)
				if req.Method == badItem.Name() && i == 2 {
					v = "two"
				}
				if err := req.Stream().Send(ctx, v); err != nil {
					return nil, err
				}
			}
			return nil, nil
		}
		return nil, rpc.Errorf(rpc.CodeMethodNotFound, "%s", req.Method)
	})
}

// Declared methods, notifications and streams, called on a Peer in both
// directions over every codec.
func TestDeclaredMethods(t *testing.T) {
	for _, sp := range codecs {
		t.Run(sp.name, func(t *testing.T) {
			ctx := ctxT(t)
			serverNotes, clientNotes := make(chan string, 1), make(chan string, 1)
			c, s := peers(t, sp.subprotocol, []rpc.Option{rpc.WithHandler(declared(serverNotes))}, []rpc.Option{rpc.WithHandler(declared(clientNotes))})
			for _, dir := range []struct {
				name   string
				caller *rpc.Peer
				notes  chan string
			}{{"client to server", c, serverNotes}, {"server to client", s, clientNotes}} {
				got, err := sum.Call(ctx, dir.caller, sumParams{Xs: []int{1, 2, 3}})
				if err != nil || got != (sumResult{Sum: 6, Count: 3}) {
					t.Errorf("%s: sum = %+v, %v", dir.name, got, err)
				}
				if err := note.Notify(ctx, dir.caller, []string{"hi", "there"}); err != nil {
					t.Fatal(err)
				}
				if got := <-dir.notes; got != "hi there" {
					t.Errorf("%s: note %q", dir.name, got)
				}
				st, err := upTo.Stream(ctx, dir.caller, [1]int{3}, rpc.WithWindow(1))
				if err != nil {
					t.Fatal(err)
				}
				var items []int
				for it, err := range st.All() {
					if err != nil {
						t.Fatal(err)
					}
					items = append(items, it)
				}
				if len(items) != 3 || items[0] != 1 || items[2] != 3 {
					t.Errorf("%s: stream %v", dir.name, items)
				}
				if err := st.Result(nil); err != nil {
					t.Errorf("%s: stream result: %v", dir.name, err)
				}
			}
		})
	}
}

// A result that does not decode into the declared Item is an error of that
// Recv; the stream goes on.
func TestDeclaredStreamBadItem(t *testing.T) {
	c, _ := peers(t, "", []rpc.Option{rpc.WithHandler(declared(nil))}, nil)
	st, err := badItem.Stream(ctxT(t), c, [1]int{3})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var got []string
	for {
		it, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			got = append(got, "error")
			continue
		}
		got = append(got, string(rune('0'+it)))
	}
	if strings.Join(got, " ") != "1 error 3" {
		t.Errorf("results %v", got)
	}
}

// On JSON-RPC, params are an array or an object: a declared method with
// scalar params fails (the other side answers -32600), and a notification,
// which gets no answer, is refused before it is sent.
func TestDeclaredScalarParamsOnJSONRPC(t *testing.T) {
	c, _ := peers(t, rpc.SubprotocolJSON, []rpc.Option{rpc.WithHandler(declared(nil))}, nil)
	scalar := rpc.NewMethod[int, int]("scalar")
	if _, err := scalar.Call(ctxT(t), c, 1); rpc.CodeOf(err) != rpc.CodeInvalidRequest {
		t.Errorf("call: %v", err)
	}
	if err := rpc.NewNotification[string]("scalar").Notify(ctxT(t), c, "x"); rpc.CodeOf(err) != rpc.CodeInvalidParams {
		t.Errorf("notify: %v", err)
	}
	// A nil slice encodes as null, which JSON-RPC does not allow as params:
	// it is sent as no params, which a Go handler decodes as the zero value.
	got, err := sum.Call(ctxT(t), c, sumParams{})
	if err != nil || got != (sumResult{}) {
		t.Errorf("sum of nothing: %+v, %v", got, err)
	}
	if _, err := rpc.NewMethod[[]int, int]("missing").Call(ctxT(t), c, nil); rpc.CodeOf(err) != rpc.CodeMethodNotFound {
		t.Errorf("a nil slice as params: %v (want the handler's answer, method not found)", err)
	}
	if err := rpc.NewNotification[map[string]int]("unknown.note").Notify(ctxT(t), c, nil); err != nil {
		t.Errorf("a nil map as a notification's params: %v", err)
	}
	bc, _ := peers(t, rpc.SubprotocolBinary, []rpc.Option{rpc.WithHandler(declared(nil))}, nil)
	if err := rpc.NewNotification[string]("scalar").Notify(ctxT(t), bc, "x"); err != nil {
		t.Errorf("notify on wsrpc.v1: %v", err) // any value is fine there
	}
}

// A method the other side does not have is method not found, typed or not.
func TestDeclaredMethodMissing(t *testing.T) {
	c, _ := peers(t, "", []rpc.Option{rpc.WithHandler(declared(nil))}, nil)
	missing := rpc.NewMethod[[]int, int]("missing")
	if _, err := missing.Call(ctxT(t), c, []int{1}); rpc.CodeOf(err) != rpc.CodeMethodNotFound {
		t.Errorf("missing: %v", err)
	}
}

func TestNewMethodPanics(t *testing.T) {
	tests := []struct {
		give string
		want string
	}{
		{"", `rpc.NewMethod: wsrpc: empty method name`},
		{"a.*", `rpc.NewMethod: wsrpc: method name "a.*" contains '*'`},
		{"$/subscribe", `rpc.NewMethod: wsrpc: method name "$/subscribe" is reserved (the "$/" and "rpc." prefixes are the protocol's)`},
		{"rpc.discover", `rpc.NewMethod: wsrpc: method name "rpc.discover" is reserved (the "$/" and "rpc." prefixes are the protocol's)`},
	}
	for _, tt := range tests {
		if got := panicText(func() { rpc.NewMethod[int, int](tt.give) }); got != tt.want {
			t.Errorf("NewMethod(%q) panicked with %q, want %q", tt.give, got, tt.want)
		}
	}
	if got := panicText(func() { rpc.NewNotification[int]("") }); !strings.HasPrefix(got, "rpc.NewNotification: ") {
		t.Errorf("NewNotification: %q", got)
	}
	if got := panicText(func() { rpc.NewStreamMethod[int, int]("rpc.x") }); !strings.HasPrefix(got, "rpc.NewStreamMethod: ") {
		t.Errorf("NewStreamMethod: %q", got)
	}
	for _, ok := range []string{"rpc", "rpcx.a", "$", "a$/b", "greet"} {
		if err := rpc.ValidMethodName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

func panicText(f func()) (s string) {
	defer func() {
		if v := recover(); v != nil {
			s, _ = v.(string)
		}
	}()
	f()
	return ""
}
