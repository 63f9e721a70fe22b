package rpc_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/pipe"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// rawClient speaks to an rpc.Peer server with hand-written messages.
type rawClient struct {
	t    *testing.T
	conn *transport.Conn
	peer *rpc.Peer
}

func newRawClient(t *testing.T, subprotocol string, opts ...rpc.Option) *rawClient {
	t.Helper()
	cc, sc := pipe.New(t, pipe.Options{Subprotocol: subprotocol})
	s, err := rpc.New(sc, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.CloseNow() })
	return &rawClient{t: t, conn: cc, peer: s}
}

func (c *rawClient) send(typ transport.MessageType, data string) {
	c.t.Helper()
	if err := c.conn.Send(ctxT(c.t), transport.Message{Type: typ, Data: []byte(data)}); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawClient) recv() string {
	c.t.Helper()
	select {
	case m, ok := <-c.conn.Recv():
		if !ok {
			c.t.Fatalf("connection ended: %v", c.conn.Err())
		}
		return string(m.Data)
	case <-time.After(10 * time.Second):
		c.t.Fatal("no reply")
	}
	return ""
}

// jsonEq compares two JSON texts structurally.
func jsonEq(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("reply %q is not JSON: %v", got, err)
	}
	json.Unmarshal([]byte(want), &w)
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Fatalf("reply\n got %s\nwant %s", gb, wb)
	}
}

// errorCode extracts error.code (and checks the id) from a JSON-RPC reply.
func errorCode(t *testing.T, reply, wantID string) int {
	t.Helper()
	var r struct {
		ID    json.RawMessage `json:"id"`
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(reply), &r); err != nil {
		t.Fatalf("reply %q: %v", reply, err)
	}
	if string(r.ID) != wantID {
		t.Fatalf("reply id %s, want %s (reply %s)", r.ID, wantID, reply)
	}
	return r.Error.Code
}

func TestJSONRPCBadInputGetsErrorReplies(t *testing.T) {
	tests := []struct {
		name   string
		give   string
		wantID string
		want   rpc.Code
	}{
		{"malformed JSON", `{"jsonrpc":"2.0","method":"echo","params":[1,}`, "null", rpc.CodeParseError},
		{"not an object", `"hello"`, "null", rpc.CodeInvalidRequest},
		{"method not a string", `{"jsonrpc":"2.0","method":1,"params":"bar","id":3}`, "3", rpc.CodeInvalidRequest},
		{"wrong version", `{"jsonrpc":"1.0","method":"echo","id":4}`, "4", rpc.CodeInvalidRequest},
		{"params a scalar", `{"jsonrpc":"2.0","method":"echo","params":5,"id":5}`, "5", rpc.CodeInvalidRequest},
		{"unknown method", `{"jsonrpc":"2.0","method":"nope","id":"abc"}`, `"abc"`, rpc.CodeMethodNotFound},
		{"invalid params", `{"jsonrpc":"2.0","method":"add","params":["x"],"id":1.5}`, "1.5", rpc.CodeInvalidParams},
		{"empty batch", `[]`, "null", rpc.CodeInvalidRequest},
	}
	c := newRawClient(t, rpc.SubprotocolJSON, rpc.WithHandler(services(t)))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.send(transport.Text, tt.give)
			if got := errorCode(t, c.recv(), tt.wantID); got != int(tt.want) {
				t.Fatalf("code %d, want %d", got, tt.want)
			}
		})
	}
	// Still open and serving.
	c.send(transport.Text, `{"jsonrpc":"2.0","method":"echo","params":["still here"],"id":9}`)
	jsonEq(t, c.recv(), `{"jsonrpc":"2.0","id":9,"result":["still here"]}`)
}

func TestJSONRPCSpecExamples(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string // "" means no reply at all
	}{
		{"positional params", `{"jsonrpc":"2.0","method":"add","params":[42,23],"id":1}`, `{"jsonrpc":"2.0","result":65,"id":1}`},
		{"named params echo", `{"jsonrpc":"2.0","method":"echo","params":{"subtrahend":23,"minuend":42},"id":3}`,
			`{"jsonrpc":"2.0","result":{"subtrahend":23,"minuend":42},"id":3}`},
		{"params omitted", `{"jsonrpc":"2.0","method":"nothing","id":"x"}`, `{"jsonrpc":"2.0","result":null,"id":"x"}`},
		{"batch mixed", `[
			{"jsonrpc":"2.0","method":"add","params":[1,2,4],"id":"1"},
			{"jsonrpc":"2.0","method":"notify_hello","params":[7]},
			{"jsonrpc":"2.0","method":"add","params":[42,23],"id":"2"},
			{"foo":"boo"},
			{"jsonrpc":"2.0","method":"foo.get","params":{"name":"myself"},"id":"5"}
		]`, ""},
		{"batch of numbers", `[1,2,3]`, ""},
	}
	c := newRawClient(t, "", rpc.WithHandler(services(t)))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.send(transport.Text, tt.give)
			got := c.recv()
			if tt.want != "" {
				jsonEq(t, got, tt.want)
				return
			}
			var arr []map[string]any
			if err := json.Unmarshal([]byte(got), &arr); err != nil {
				t.Fatalf("batch reply %q: %v", got, err)
			}
			if tt.name == "batch of numbers" {
				if len(arr) != 3 {
					t.Fatalf("want 3 error replies, got %s", got)
				}
				return
			}
			if len(arr) != 4 { // 2 results, 1 invalid request, 1 method not found; none for the notification
				t.Fatalf("want 4 replies, got %d: %s", len(arr), got)
			}
			ids := map[any]bool{}
			for _, r := range arr {
				ids[r["id"]] = true
			}
			for _, id := range []any{"1", "2", "5", nil} {
				if !ids[id] {
					t.Errorf("no reply with id %v in %s", id, got)
				}
			}
		})
	}
	// A batch of notifications gets no reply at all: the next reply is for the next request.
	c.send(transport.Text, `[{"jsonrpc":"2.0","method":"echo","params":[1]},{"jsonrpc":"2.0","method":"echo","params":[2]}]`)
	c.send(transport.Text, `{"jsonrpc":"2.0","method":"echo","params":["after"],"id":10}`)
	jsonEq(t, c.recv(), `{"jsonrpc":"2.0","result":["after"],"id":10}`)
}

func TestJSONRPCBatchLimit(t *testing.T) {
	c := newRawClient(t, rpc.SubprotocolJSON, rpc.WithHandler(services(t)), rpc.WithMaxBatch(2))
	c.send(transport.Text, `[{"jsonrpc":"2.0","method":"echo","id":1},{"jsonrpc":"2.0","method":"echo","id":2},{"jsonrpc":"2.0","method":"echo","id":3}]`)
	if code := errorCode(t, c.recv(), "null"); code != int(rpc.CodeInvalidRequest) {
		t.Fatalf("code %d", code)
	}
}

func TestDuplicateInFlightID(t *testing.T) {
	release := make(chan struct{})
	h := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return []byte(`"done"`), nil
	})
	c := newRawClient(t, rpc.SubprotocolJSON, rpc.WithHandler(h))
	c.send(transport.Text, `{"jsonrpc":"2.0","method":"hold","id":7}`)
	c.send(transport.Text, `{"jsonrpc":"2.0","method":"hold","id":7}`)
	if code := errorCode(t, c.recv(), "7"); code != int(rpc.CodeInvalidRequest) {
		t.Fatalf("duplicate id got code %d", code)
	}
	close(release)
	jsonEq(t, c.recv(), `{"jsonrpc":"2.0","id":7,"result":"done"}`)
}

func TestUnknownReplyIDIsCounted(t *testing.T) {
	c := newRawClient(t, rpc.SubprotocolJSON, rpc.WithHandler(services(t)))
	c.send(transport.Text, `{"jsonrpc":"2.0","id":999,"result":1}`)
	c.send(transport.Text, `{"jsonrpc":"2.0","id":"s","error":{"code":1,"message":"x"}}`)
	c.send(transport.Text, `{"jsonrpc":"2.0","method":"echo","params":[1],"id":1}`)
	c.recv() // processed in order: the replies above were handled first
	if got := c.peer.Stats().UnknownReplies; got != 2 {
		t.Fatalf("UnknownReplies = %d, want 2", got)
	}
}

func TestJSONRPCCancelAndTimeoutExtensions(t *testing.T) {
	cancelled := make(chan error, 1)
	deadline := make(chan time.Duration, 1)
	h := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		switch req.Method {
		case "hold":
			<-ctx.Done()
			cancelled <- ctx.Err()
			return nil, ctx.Err()
		case "deadline":
			dl, _ := ctx.Deadline()
			deadline <- time.Until(dl)
		}
		return []byte(`1`), nil
	})
	c := newRawClient(t, rpc.SubprotocolJSON, rpc.WithHandler(h))
	c.send(transport.Text, `{"jsonrpc":"2.0","method":"hold","id":"h"}`)
	c.send(transport.Text, `{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"h"}}`)
	if err := <-cancelled; err == nil {
		t.Fatal("handler not cancelled")
	}
	c.send(transport.Text, `{"jsonrpc":"2.0","method":"deadline","id":2,"$timeout":5000}`)
	// The cancelled call sends no reply, so the next reply is for id 2.
	jsonEq(t, c.recv(), `{"jsonrpc":"2.0","id":2,"result":1}`)
	if left := <-deadline; left <= 0 || left > 5*time.Second {
		t.Fatalf("handler saw %v left of a 5000 ms $timeout", left)
	}
}

func TestBinaryBadInputClosesConnection(t *testing.T) {
	tests := []struct {
		name     string
		give     transport.Message
		wantCode transport.StatusCode
		wantWhy  string
	}{
		{"unknown kind", transport.Message{Type: transport.Binary, Data: []byte{42}}, transport.StatusProtocolError, "unknown message kind"},
		{"truncated", transport.Message{Type: transport.Binary, Data: []byte{1, 0x80}}, transport.StatusProtocolError, "bad varint"},
		{"text frame", transport.Message{Type: transport.Text, Data: []byte(`{}`)}, transport.StatusUnsupportedData, "text message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newRawClient(t, rpc.SubprotocolBinary, rpc.WithHandler(services(t)))
			if err := c.conn.Send(ctxT(t), tt.give); err != nil {
				t.Fatal(err)
			}
			select {
			case <-c.conn.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("connection not closed")
			}
			ce := c.conn.Err().(*transport.CloseError)
			if ce.Code != tt.wantCode || !strings.Contains(ce.Reason, tt.wantWhy) {
				t.Fatalf("closed with %d %q, want %d naming %q", ce.Code, ce.Reason, tt.wantCode, tt.wantWhy)
			}
		})
	}
}

func TestBinaryFrameOnJSONConnection(t *testing.T) {
	c := newRawClient(t, rpc.SubprotocolJSON, rpc.WithHandler(services(t)))
	c.send(transport.Binary, "\x01")
	<-c.conn.Done()
	if code := transport.CloseStatus(c.conn.Err()); code != transport.StatusUnsupportedData {
		t.Fatalf("closed with %d, want 1003", code)
	}
}

func TestJSONRPCInvalidHandlerResult(t *testing.T) {
	tests := []struct {
		give []byte
		want string
	}{
		{[]byte{}, `{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"handler returned a result that is not valid JSON"}}`},
		{[]byte("not json"), `{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"handler returned a result that is not valid JSON"}}`},
	}
	for _, tt := range tests {
		h := rpc.HandlerFunc(func(context.Context, *rpc.Request) ([]byte, error) { return tt.give, nil })
		c := newRawClient(t, rpc.SubprotocolJSON, rpc.WithHandler(h))
		c.send(transport.Text, `{"jsonrpc":"2.0","method":"x","id":1}`)
		jsonEq(t, c.recv(), tt.want)
	}
	bad := rpc.HandlerFunc(func(context.Context, *rpc.Request) ([]byte, error) {
		return nil, &rpc.Error{Code: 7, Message: "m", Data: []byte("{broken")}
	})
	c := newRawClient(t, rpc.SubprotocolJSON, rpc.WithHandler(bad))
	c.send(transport.Text, `{"jsonrpc":"2.0","method":"x","id":2}`)
	jsonEq(t, c.recv(), `{"jsonrpc":"2.0","id":2,"error":{"code":7,"message":"m (error data dropped: not valid JSON)"}}`)
}

func TestJSONRPCMalformedReplyFailsThePendingCallAndIsNotAnswered(t *testing.T) {
	c := newRawClient(t, rpc.SubprotocolJSON)
	callErr := make(chan error, 1)
	go func() { callErr <- c.peer.Call(ctxT(t), "client.method", nil, nil) }()
	req := c.recv() // the server's call to us
	var m struct{ ID json.RawMessage }
	json.Unmarshal([]byte(req), &m)
	c.send(transport.Text, `{"jsonrpc":"2.0","id":`+string(m.ID)+`,"result":1,"error":{"code":1,"message":"both"}}`)
	if err := <-callErr; rpc.CodeOf(err) != rpc.CodeInternalError || !strings.Contains(err.Error(), "invalid reply") {
		t.Fatalf("call = %v, want an invalid-reply internal error", err)
	}
	// No error reply was sent for the malformed reply: the next message is the answer to this request.
	c.send(transport.Text, `{"jsonrpc":"2.0","method":"nope","id":"next"}`)
	if code := errorCode(t, c.recv(), `"next"`); code != int(rpc.CodeMethodNotFound) {
		t.Fatalf("code %d", code)
	}
}

func TestSubprotocolCaseInsensitive(t *testing.T) {
	cc, sc := pipe.New(t, pipe.Options{Subprotocol: "WSRPC.V1"})
	s, err := rpc.New(sc, rpc.WithHandler(services(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.CloseNow()
	c, err := rpc.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	var out []int
	if err := c.Call(ctxT(t), "echo", []int{3}, &out); err != nil || out[0] != 3 {
		t.Fatalf("echo over %q: %v %v", cc.Subprotocol(), out, err)
	}
}

// TestGracefulCloseMeansNotStarted: a request still pending when the other
// side closes with 1012 after its shutdown notice was never started, so the
// caller gets unavailable (retry elsewhere), not an unknown outcome.
func TestGracefulCloseMeansNotStarted(t *testing.T) {
	tests := []struct {
		name string
		give func(sc *transport.Conn)
		want rpc.Code
	}{
		{"notice then 1012", func(sc *transport.Conn) {
			sc.Send(ctxT(t), transport.Message{Type: transport.Binary, Data: []byte{6, 0, 0}})
			sc.Close(transport.StatusServiceRestart, "restart")
		}, rpc.CodeUnavailable},
		{"1012 without a notice", func(sc *transport.Conn) {
			sc.Close(transport.StatusServiceRestart, "restart")
		}, rpc.CodeConnectionLost},
		{"notice then a dropped connection", func(sc *transport.Conn) {
			sc.Send(ctxT(t), transport.Message{Type: transport.Binary, Data: []byte{6, 0, 0}})
			sc.CloseNow()
		}, rpc.CodeConnectionLost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc, sc := pipe.New(t, pipe.Options{Subprotocol: rpc.SubprotocolBinary})
			c, err := rpc.New(cc)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			callErr := make(chan error, 1)
			go func() { callErr <- c.Call(ctxT(t), "work", nil, nil) }()
			<-sc.Recv() // the request arrived; the server never starts it
			tt.give(sc)
			if got := rpc.CodeOf(<-callErr); got != tt.want {
				t.Fatalf("pending call got %v, want %v", got, tt.want)
			}
		})
	}
}
