package rpc_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/pipe"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// Hand-built wsrpc.v1 messages, for what a Peer would never send: every
// message is kind, ext-length, ext entries, then the kind's fields.

func appendText(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// extEntry is one entry of an extension block: tag, length, value.
func extEntry(tag uint64, value []byte) []byte {
	b := binary.AppendUvarint(nil, tag)
	b = binary.AppendUvarint(b, uint64(len(value)))
	return append(b, value...)
}

// metaEntry is a metadata entry (tag 1): the key as text, then the value to
// the end of the entry.
func metaEntry(k, v string) []byte { return extEntry(1, append(appendText(nil, k), v...)) }

// withExt appends the extension block made of entries.
func withExt(b []byte, entries [][]byte) []byte {
	block := []byte{}
	for _, e := range entries {
		block = append(block, e...)
	}
	b = binary.AppendUvarint(b, uint64(len(block)))
	return append(b, block...)
}

// binRequest is a request (kind 1) without a timeout.
func binRequest(id uint64, method, params string, ext ...[]byte) string {
	b := withExt([]byte{1}, ext)
	b = binary.AppendUvarint(b, id)
	b = binary.AppendUvarint(b, 0)
	b = appendText(b, method)
	return string(append(b, params...))
}

// binNotification is a notification (kind 2).
func binNotification(method, params string, ext ...[]byte) string {
	b := withExt([]byte{2}, ext)
	b = appendText(b, method)
	return string(append(b, params...))
}

// binReply is a decoded result (kind 3) or error (kind 4).
type binReply struct {
	kind    byte
	id      uint64
	code    rpc.Code
	message string
	result  string
}

func parseBinReply(t *testing.T, s string) binReply {
	t.Helper()
	data := []byte(s)
	bad := func() binReply { t.Fatalf("reply % x is not a result or an error", data); return binReply{} }
	if len(data) < 2 || data[0] != 3 && data[0] != 4 {
		return bad()
	}
	r := binReply{kind: data[0]}
	rest := data[1:]
	ext, n := binary.Uvarint(rest)
	if n <= 0 || ext != 0 {
		return bad() // replies carry no extension entries
	}
	rest = rest[n:]
	if r.id, n = binary.Uvarint(rest); n <= 0 {
		return bad()
	}
	rest = rest[n:]
	if r.kind == 3 {
		r.result = string(rest)
		return r
	}
	code, n := binary.Varint(rest)
	if n <= 0 {
		return bad()
	}
	r.code = rpc.Code(code)
	rest = rest[n:]
	ml, n := binary.Uvarint(rest)
	if n <= 0 || uint64(len(rest)-n) < ml {
		return bad()
	}
	r.message = string(rest[n : n+int(ml)])
	return r
}

// seenCall is a call a metadata handler saw.
type seenCall struct {
	method       string
	md           rpc.Metadata
	notification bool
}

// metaHandler answers every call with its metadata as a JSON object and
// reports it on seen.
func metaHandler(seen chan<- seenCall) rpc.Handler {
	return rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		seen <- seenCall{req.Method, req.Metadata.Clone(), req.IsNotification()}
		md := req.Metadata
		if md == nil {
			md = rpc.Metadata{}
		}
		return json.Marshal(md)
	})
}

func recvSeen(t *testing.T, seen <-chan seenCall) seenCall {
	t.Helper()
	select {
	case s := <-seen:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("the handler was not called")
	}
	return seenCall{}
}

// noMoreSeen fails if a handler reported a call.
func noMoreSeen(t *testing.T, seen <-chan seenCall) {
	t.Helper()
	select {
	case s := <-seen:
		t.Fatalf("a handler was called: %+v", s)
	default:
	}
}

func sameMetadata(got, want rpc.Metadata) bool {
	return len(got) == len(want) && maps.Equal(got, want)
}

func TestContextWithMetadata(t *testing.T) {
	bg := context.Background()
	if md := rpc.OutgoingMetadata(bg); md != nil {
		t.Fatalf("OutgoingMetadata of a bare ctx = %v", md)
	}
	if ctx := rpc.ContextWithMetadata(bg, nil); ctx != bg {
		t.Error("ContextWithMetadata with no metadata made a new ctx")
	}
	first := rpc.Metadata{"a": "1", "b": "1"}
	ctx1 := rpc.ContextWithMetadata(bg, first)
	first["a"] = "changed after" // ContextWithMetadata copied it
	ctx2 := rpc.ContextWithMetadata(ctx1, rpc.Metadata{"b": "2", "c": "2"})
	if got, want := rpc.OutgoingMetadata(ctx1), (rpc.Metadata{"a": "1", "b": "1"}); !sameMetadata(got, want) {
		t.Errorf("first ctx carries %v, want %v", got, want)
	}
	if got, want := rpc.OutgoingMetadata(ctx2), (rpc.Metadata{"a": "1", "b": "2", "c": "2"}); !sameMetadata(got, want) {
		t.Errorf("merged ctx carries %v, want %v (the later entries win)", got, want)
	}
	if rpc.Metadata(nil).Clone() != nil {
		t.Error("Clone of nil is not nil")
	}
}

// TestMetadataBothDirections: metadata set on the ctx (and on a Send's
// Request, over it) reaches the handler on the other side, for calls and
// notifications, client to server and server to client, on both codecs.
func TestMetadataBothDirections(t *testing.T) {
	for _, cd := range codecs[:2] {
		t.Run(cd.name, func(t *testing.T) {
			serverSaw := make(chan seenCall, 8)
			clientSaw := make(chan seenCall, 8)
			c, s := peers(t, cd.subprotocol,
				[]rpc.Option{rpc.WithHandler(metaHandler(serverSaw))},
				[]rpc.Option{rpc.WithHandler(metaHandler(clientSaw))})
			onCtx := rpc.Metadata{"trace": "t-1", "tenant": "acme", "odd \"key\"\n": "é ☃ \x00 \\", "empty": ""}
			ctx := rpc.ContextWithMetadata(ctxT(t), onCtx)
			onReq := rpc.Metadata{"tenant": "other", "req": "yes"}
			merged := onCtx.Clone()
			maps.Copy(merged, onReq)

			dirs := []struct {
				name string
				from *rpc.Peer
				saw  chan seenCall
			}{
				{"client to server", c, serverSaw},
				{"server to client", s, clientSaw},
			}
			for _, d := range dirs {
				t.Run(d.name, func(t *testing.T) {
					var echoed rpc.Metadata
					if err := d.from.Call(ctx, "call", nil, &echoed); err != nil {
						t.Fatal(err)
					}
					if got := recvSeen(t, d.saw); got.method != "call" || !sameMetadata(got.md, onCtx) {
						t.Errorf("Call: the handler saw %+v, want %v", got, onCtx)
					}
					if !sameMetadata(echoed, onCtx) {
						t.Errorf("Call: echoed %v", echoed)
					}

					if err := d.from.Notify(ctx, "notify", nil); err != nil {
						t.Fatal(err)
					}
					if got := recvSeen(t, d.saw); got.method != "notify" || !got.notification || !sameMetadata(got.md, onCtx) {
						t.Errorf("Notify: the handler saw %+v, want %v", got, onCtx)
					}

					reply := make(chan *rpc.Response, 1)
					if err := d.from.Send(ctx, &rpc.Request{Method: "send", Metadata: onReq, Reply: reply}); err != nil {
						t.Fatal(err)
					}
					if got := recvSeen(t, d.saw); got.method != "send" || !sameMetadata(got.md, merged) {
						t.Errorf("Send: the handler saw %+v, want %v (the Request's entries over the ctx's)", got, merged)
					}
					r := <-reply
					echoed = nil
					if r.Err != nil || json.Unmarshal(r.Result, &echoed) != nil || !sameMetadata(echoed, merged) {
						t.Errorf("Send: Response %q, %v", r.Result, r.Err)
					}

					if err := d.from.Send(ctx, &rpc.Request{Method: "send-notify", Metadata: onReq}); err != nil {
						t.Fatal(err)
					}
					if got := recvSeen(t, d.saw); got.method != "send-notify" || !got.notification || !sameMetadata(got.md, merged) {
						t.Errorf("Send, notification: the handler saw %+v, want %v", got, merged)
					}
					if onReq["tenant"] != "other" || len(onReq) != 2 {
						t.Errorf("Send changed the Request's Metadata: %v", onReq)
					}

					if err := d.from.Call(ctxT(t), "bare", nil, nil); err != nil {
						t.Fatal(err)
					}
					if got := recvSeen(t, d.saw); got.md != nil {
						t.Errorf("a call without metadata arrived with %v", got.md)
					}
				})
			}
		})
	}
}

// TestMetadataNotInherited: a handler's outgoing calls carry what their own
// ctx says, not the metadata of the call being served.
func TestMetadataNotInherited(t *testing.T) {
	for _, cd := range codecs[:2] {
		t.Run(cd.name, func(t *testing.T) {
			clientSaw := make(chan seenCall, 4)
			server := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
				if md := rpc.OutgoingMetadata(ctx); md != nil {
					return nil, fmt.Errorf("the handler's ctx carries outgoing metadata %v", md)
				}
				if err := req.Peer().Call(ctx, "inner", nil, nil); err != nil {
					return nil, err
				}
				// Passed on on purpose.
				return nil, req.Peer().Notify(rpc.ContextWithMetadata(ctx, req.Metadata), "forwarded", nil)
			})
			c, _ := peers(t, cd.subprotocol, []rpc.Option{rpc.WithHandler(server)}, []rpc.Option{rpc.WithHandler(metaHandler(clientSaw))})
			md := rpc.Metadata{"trace": "outer"}
			if err := c.Call(rpc.ContextWithMetadata(ctxT(t), md), "outer", nil, nil); err != nil {
				t.Fatal(err)
			}
			if got := recvSeen(t, clientSaw); got.method != "inner" || got.md != nil {
				t.Errorf("the handler's own call carried %+v", got)
			}
			if got := recvSeen(t, clientSaw); got.method != "forwarded" || !sameMetadata(got.md, md) {
				t.Errorf("the forwarded notification carried %+v", got)
			}
		})
	}
}

// TestMetadataOverTheBoundIsRefused: a request over the receiver's bound is
// answered with invalid request and not started; the connection stays.
func TestMetadataOverTheBoundIsRefused(t *testing.T) {
	tests := []struct {
		name   string
		give   rpc.Metadata
		wantOK bool
	}{
		{"two entries", rpc.Metadata{"a": "1", "b": "2"}, true},
		{"three entries", rpc.Metadata{"a": "1", "b": "2", "c": "3"}, false},
		{"16 bytes", rpc.Metadata{"k": strings.Repeat("v", 15)}, true},
		{"17 bytes", rpc.Metadata{"k": strings.Repeat("v", 16)}, false},
	}
	for _, cd := range codecs[:2] {
		t.Run(cd.name, func(t *testing.T) {
			saw := make(chan seenCall, 4)
			// The client's bound is the default one, so it sends what the
			// server refuses.
			c, _ := peers(t, cd.subprotocol, []rpc.Option{rpc.WithHandler(metaHandler(saw)), rpc.WithMaxMetadata(2, 16)}, nil)
			for _, tt := range tests {
				err := c.Call(rpc.ContextWithMetadata(ctxT(t), tt.give), "m", nil, nil)
				if tt.wantOK {
					if err != nil {
						t.Errorf("%s: %v", tt.name, err)
					}
					recvSeen(t, saw)
					continue
				}
				var e *rpc.Error
				if !errors.As(err, &e) || e.Code != rpc.CodeInvalidRequest || !strings.Contains(e.Message, "metadata") {
					t.Errorf("%s: %v, want invalid request about metadata", tt.name, err)
				}
				noMoreSeen(t, saw)
			}
			if err := c.Call(ctxT(t), "m", nil, nil); err != nil {
				t.Fatalf("the connection did not survive: %v", err)
			}
		})
	}
}

// TestWithMaxMetadataSetsTheBound: the defaults, and other bounds.
func TestWithMaxMetadataSetsTheBound(t *testing.T) {
	entries := func(n int) rpc.Metadata {
		md := rpc.Metadata{}
		for i := range n {
			md["k"+strconv.Itoa(i)] = "v"
		}
		return md
	}
	bytesOf := func(n int) rpc.Metadata { return rpc.Metadata{"k": strings.Repeat("v", n-1)} }
	tests := []struct {
		name   string
		server []rpc.Option
		give   rpc.Metadata
		wantOK bool
	}{
		{"default entries", nil, entries(rpc.DefaultMaxMetadata), true},
		{"over the default entries", nil, entries(rpc.DefaultMaxMetadata + 1), false},
		{"more entries", []rpc.Option{rpc.WithMaxMetadata(rpc.DefaultMaxMetadata+1, 0)}, entries(rpc.DefaultMaxMetadata + 1), true},
		{"fewer entries", []rpc.Option{rpc.WithMaxMetadata(1, 0)}, entries(2), false},
		{"default bytes", nil, bytesOf(rpc.DefaultMaxMetadataBytes), true},
		{"over the default bytes", nil, bytesOf(rpc.DefaultMaxMetadataBytes + 1), false},
		{"more bytes", []rpc.Option{rpc.WithMaxMetadata(0, 2*rpc.DefaultMaxMetadataBytes)}, bytesOf(rpc.DefaultMaxMetadataBytes + 1), true},
		{"zero means the defaults", []rpc.Option{rpc.WithMaxMetadata(0, 0)}, entries(rpc.DefaultMaxMetadata + 1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := peers(t, rpc.SubprotocolBinary,
				append([]rpc.Option{rpc.WithHandler(services(t))}, tt.server...),
				[]rpc.Option{rpc.WithMaxMetadata(1000, 1<<20)})
			err := c.Call(rpc.ContextWithMetadata(ctxT(t), tt.give), "nothing", nil, nil)
			switch {
			case tt.wantOK && err != nil:
				t.Fatalf("refused: %v", err)
			case !tt.wantOK && rpc.CodeOf(err) != rpc.CodeInvalidRequest:
				t.Fatalf("got %v, want invalid request", err)
			}
		})
	}
}

// TestBinaryMetadataOverTheBound sends hand-built wsrpc.v1 messages: a
// request over the bound is answered with its own id, a notification over
// it is dropped and counted, and neither reaches the handler.
func TestBinaryMetadataOverTheBound(t *testing.T) {
	saw := make(chan seenCall, 8)
	c := newRawClient(t, rpc.SubprotocolBinary, rpc.WithHandler(metaHandler(saw)), rpc.WithMaxMetadata(2, 64))
	three := [][]byte{metaEntry("a", "1"), metaEntry("b", "2"), metaEntry("c", "3")}
	tests := []struct {
		name string
		give string
		want string // in the error message
	}{
		{"too many entries", binRequest(7, "m", "", three...), "entries"},
		{"too many bytes", binRequest(300, "m", "", metaEntry("k", strings.Repeat("v", 64))), "bytes"},
		{"empty key", binRequest(9, "m", "", metaEntry("", "v")), "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.send(transport.Binary, tt.give)
			r := parseBinReply(t, c.recv())
			wantID := map[string]uint64{"too many entries": 7, "too many bytes": 300, "empty key": 9}[tt.name]
			if r.kind != 4 || r.id != wantID || r.code != rpc.CodeInvalidRequest || !strings.Contains(r.message, tt.want) {
				t.Fatalf("reply %+v, want invalid request for id %d naming %q", r, wantID, tt.want)
			}
			noMoreSeen(t, saw)
		})
	}

	c.send(transport.Binary, binNotification("dropped", "", three...))
	c.send(transport.Binary, binRequest(10, "m", "", metaEntry("a", "1"), metaEntry("b", "2")))
	if r := parseBinReply(t, c.recv()); r.kind != 3 || r.id != 10 {
		t.Fatalf("reply %+v, want the result of id 10", r)
	}
	// Messages are dispatched in order: the notification was handled first.
	if got := c.peer.Stats().DroppedNotifications; got != 1 {
		t.Errorf("DroppedNotifications = %d, want 1", got)
	}
	if got := recvSeen(t, saw); got.method != "m" {
		t.Errorf("the handler saw %+v", got)
	}
	noMoreSeen(t, saw)
}

// TestBinaryUnknownExtensionTagsAreSkipped: entries of a tag the receiver
// does not know are skipped, the metadata entries beside them kept.
func TestBinaryUnknownExtensionTagsAreSkipped(t *testing.T) {
	saw := make(chan seenCall, 4)
	c := newRawClient(t, rpc.SubprotocolBinary, rpc.WithHandler(metaHandler(saw)))
	c.send(transport.Binary, binRequest(1, "m", "[1]",
		extEntry(2, []byte("a later revision's")), metaEntry("k", "v"), extEntry(300, nil), extEntry(1<<40, []byte{0xff, 0x00})))
	r := parseBinReply(t, c.recv())
	if r.kind != 3 || r.id != 1 {
		t.Fatalf("reply %+v, want a result", r)
	}
	jsonEq(t, r.result, `{"k":"v"}`)
	c.send(transport.Binary, binNotification("n", "", extEntry(7, []byte("x"))))
	if got := recvSeen(t, saw); got.method != "m" || !sameMetadata(got.md, rpc.Metadata{"k": "v"}) {
		t.Errorf("the handler saw %+v", got)
	}
	if got := recvSeen(t, saw); got.method != "n" || got.md != nil {
		t.Errorf("the handler saw %+v", got)
	}
}

// TestBinaryIgnorableKinds: a message of an unknown kind from 0x40 up is
// ignored, whatever it holds, and the connection serves on.
func TestBinaryIgnorableKinds(t *testing.T) {
	c := newRawClient(t, rpc.SubprotocolBinary, rpc.WithHandler(services(t)))
	for _, give := range []string{"\x40\x00", "\x41\x03abc\x01\x02\x03", "\x7f\x00anything", "\xff\x00"} {
		c.send(transport.Binary, give)
	}
	c.send(transport.Binary, binRequest(5, "echo", "[5]"))
	if r := parseBinReply(t, c.recv()); r.kind != 3 || r.id != 5 || r.result != "[5]" {
		t.Fatalf("reply %+v, want the echo of id 5", r)
	}
	if st := c.peer.Stats(); st.DroppedNotifications != 0 || st.UnknownReplies != 0 || st.DroppedReplies != 0 {
		t.Errorf("Stats = %+v after ignored messages", st)
	}
	if c.conn.State() != transport.StateOpen {
		t.Errorf("connection state %v", c.conn.State())
	}
}

// TestBinaryUnknownKindCloses: an unknown kind below 0x40 is a protocol
// error: the connection is closed with 1002.
func TestBinaryUnknownKindCloses(t *testing.T) {
	for _, kind := range []byte{0x00, 0x0a, 0x3f} {
		t.Run(fmt.Sprintf("%#02x", kind), func(t *testing.T) {
			c := newRawClient(t, rpc.SubprotocolBinary, rpc.WithHandler(services(t)))
			c.send(transport.Binary, string([]byte{kind, 0}))
			select {
			case <-c.conn.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("connection not closed")
			}
			var ce *transport.CloseError
			if !errors.As(c.conn.Err(), &ce) || ce.Code != transport.StatusProtocolError || !strings.Contains(ce.Reason, "unknown message kind") {
				t.Fatalf("closed with %v, want 1002 naming the unknown kind", c.conn.Err())
			}
		})
	}
}

// TestJSONRPCMetadata: "$meta" is an object of strings, within the bound;
// anything else makes the request invalid (answered with its id), and a
// notification over the bound gets the invalid-request error with a null
// id, as any invalid request that has no id.
func TestJSONRPCMetadata(t *testing.T) {
	saw := make(chan seenCall, 8)
	c := newRawClient(t, rpc.SubprotocolJSON, rpc.WithHandler(metaHandler(saw)), rpc.WithMaxMetadata(2, 64))
	refused := []struct {
		name   string
		give   string
		wantID string
	}{
		{"too many entries", `{"jsonrpc":"2.0","method":"m","id":5,"$meta":{"a":"1","b":"2","c":"3"}}`, "5"},
		{"too many bytes", `{"jsonrpc":"2.0","method":"m","id":"s","$meta":{"k":"` + strings.Repeat("v", 64) + `"}}`, `"s"`},
		{"an array", `{"jsonrpc":"2.0","method":"m","id":6,"$meta":["a","b"]}`, "6"},
		{"a string", `{"jsonrpc":"2.0","method":"m","id":7,"$meta":"a=b"}`, "7"},
		{"null", `{"jsonrpc":"2.0","method":"m","id":8,"$meta":null}`, "8"},
		{"a number value", `{"jsonrpc":"2.0","method":"m","id":9,"$meta":{"a":1}}`, "9"},
		{"an object value", `{"jsonrpc":"2.0","method":"m","id":10,"$meta":{"a":{"b":"c"}}}`, "10"},
		{"an empty key", `{"jsonrpc":"2.0","method":"m","id":11,"$meta":{"":"v"}}`, "11"},
		{"a notification over the bound", `{"jsonrpc":"2.0","method":"m","$meta":{"a":"1","b":"2","c":"3"}}`, "null"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			c.send(transport.Text, tt.give)
			if code := errorCode(t, c.recv(), tt.wantID); code != int(rpc.CodeInvalidRequest) {
				t.Fatalf("code %d, want invalid request", code)
			}
			noMoreSeen(t, saw)
		})
	}
	accepted := []struct {
		name string
		give string
		want rpc.Metadata
	}{
		{"empty", `{"jsonrpc":"2.0","method":"m","id":20,"$meta":{}}`, nil},
		{"escapes", `{"jsonrpc":"2.0","method":"m","id":21,"$meta":{"k\u00e9":"a\"b\nc","t":"\ud83d\ude00"}}`, rpc.Metadata{"ké": "a\"b\nc", "t": "😀"}},
		{"spaces", `{"jsonrpc":"2.0","method":"m","id":22,"$meta": { "a" : "1" , "b":"2" } }`, rpc.Metadata{"a": "1", "b": "2"}},
	}
	for _, tt := range accepted {
		t.Run(tt.name, func(t *testing.T) {
			c.send(transport.Text, tt.give)
			var r struct {
				Result rpc.Metadata
				Error  *rpc.Error
			}
			if err := json.Unmarshal([]byte(c.recv()), &r); err != nil || r.Error != nil {
				t.Fatalf("reply: %v %v", err, r.Error)
			}
			if got := recvSeen(t, saw); !sameMetadata(got.md, tt.want) || !sameMetadata(r.Result, tt.want) {
				t.Errorf("the handler saw %v, echoed %v; want %v", got.md, r.Result, tt.want)
			}
		})
	}
}

// TestOutgoingMetadataOverTheBoundIsNotSent: a call, notification or Send
// whose metadata the sender's own bound (or the rules: keys not empty,
// UTF-8) refuses fails with invalid request, and nothing goes on the wire.
func TestOutgoingMetadataOverTheBoundIsNotSent(t *testing.T) {
	bad := []struct {
		name string
		give rpc.Metadata
	}{
		{"too many entries", rpc.Metadata{"a": "1", "b": "2"}},
		{"too many bytes", rpc.Metadata{"k": "12345678"}},
		{"empty key", rpc.Metadata{"": "v"}},
		{"key not UTF-8", rpc.Metadata{"\xff": "v"}},
		{"value not UTF-8", rpc.Metadata{"k": "\xff"}},
	}
	for _, cd := range codecs[:2] {
		t.Run(cd.name, func(t *testing.T) {
			cc, sc := pipe.New(t, pipe.Options{Subprotocol: cd.subprotocol})
			p, err := rpc.New(cc, rpc.WithMaxMetadata(1, 8))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.CloseNow() })
			for _, tt := range bad {
				ctx := rpc.ContextWithMetadata(ctxT(t), tt.give)
				sends := map[string]func() error{
					"Call":   func() error { return p.Call(ctx, "m", nil, nil) },
					"Notify": func() error { return p.Notify(ctx, "m", nil) },
					"Send":   func() error { return p.Send(ctx, &rpc.Request{Method: "m", Reply: make(chan *rpc.Response, 1)}) },
					"Send with the Request's metadata": func() error {
						return p.Send(ctxT(t), &rpc.Request{Method: "m", Metadata: tt.give, Reply: make(chan *rpc.Response, 1)})
					},
					"Send a notification": func() error { return p.Send(ctx, &rpc.Request{Method: "m"}) },
				}
				for how, send := range sends {
					var e *rpc.Error
					if err := send(); !errors.As(err, &e) || e.Code != rpc.CodeInvalidRequest {
						t.Errorf("%s, %s: %v, want invalid request", tt.name, how, err)
					}
				}
			}
			if st := p.Stats(); st.PendingCalls != 0 {
				t.Errorf("%d calls pending", st.PendingCalls)
			}
			// The first message on the wire is the call made next.
			done := make(chan error, 1)
			// No deadline, so that the request carries no timeout.
			go func() {
				done <- p.Call(rpc.ContextWithMetadata(context.Background(), rpc.Metadata{"k": "v"}), "after", nil, nil)
			}()
			var m transport.Message
			select {
			case m = <-sc.Recv():
			case <-time.After(10 * time.Second):
				t.Fatal("nothing arrived")
			}
			if cd.subprotocol == rpc.SubprotocolBinary {
				want := binRequest(1, "after", "", metaEntry("k", "v"))
				if string(m.Data) != want {
					t.Fatalf("first message % x, want % x", m.Data, want)
				}
				sc.Send(ctxT(t), transport.Message{Type: transport.Binary, Data: []byte{3, 0, 1}})
			} else {
				jsonEq(t, string(m.Data), `{"jsonrpc":"2.0","method":"after","id":1,"$meta":{"k":"v"}}`)
				sc.Send(ctxT(t), transport.Message{Type: transport.Text, Data: []byte(`{"jsonrpc":"2.0","id":1,"result":null}`)})
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}
