package pubsub_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wsrpc/wsrpc/internal/pipe"
	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
)

// fuzzMethods are the methods FuzzHubParams calls, chosen by its first
// argument.
var fuzzMethods = []string{pubsub.MethodSubscribe, pubsub.MethodUnsubscribe, pubsub.MethodPublish, pubsub.MethodPublication}

// FuzzHubParams feeds arbitrary params to the reserved methods, through
// Hub.Middleware on a real pair of peers for each codec, and checks that
// every reply is a well-formed result or an *rpc.Error with one of the
// codes the hub answers bad input with (a panic would be an internal
// error), and that nothing is left subscribed.
func FuzzHubParams(f *testing.F) {
	hub, err := pubsub.New(
		pubsub.WithRule("drop.>", pubsub.Rule{Publish: func(context.Context, *rpc.Peer, *pubsub.Message) error { return pubsub.ErrDrop }}),
		pubsub.WithRule("ro.>", pubsub.Rule{}),
		pubsub.WithRule(">", pubsub.Rule{Publish: allowAll, HistorySize: 8}),
		pubsub.WithLimits(pubsub.Limits{MaxSubscriptions: 4, MaxReplay: 4, MaxPublicationSize: 1024, MaxTopicLen: 64, MaxTopicTokens: 6}),
	)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = hub.Close() })
	type end struct {
		codec string
		peer  *rpc.Peer
	}
	var ends []end
	for _, codec := range codecs {
		cc, sc := pipe.New(f, pipe.Options{Subprotocol: codec})
		fallback := rpc.HandlerFunc(func(context.Context, *rpc.Request) ([]byte, error) {
			return nil, rpc.Errorf(rpc.CodeMethodNotFound, "not here")
		})
		srv, err := rpc.New(sc, rpc.WithHandler(hub.Middleware()(fallback)))
		if err != nil {
			f.Fatal(err)
		}
		hub.Attach(srv)
		cli, err := rpc.New(cc)
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(func() {
			_ = cli.Close()
			_ = srv.Close()
			cli.Wait()
			srv.Wait()
			hub.Detach(srv)
		})
		ends = append(ends, end{codec, cli})
	}
	// Seeds: good and bad params for each method (the committed corpus in
	// testdata/fuzz/FuzzHubParams has more).
	for _, s := range []struct {
		m      byte
		params string
	}{
		{0, `{"topic":"a.b"}`},
		{0, `{"topic":"a.*"}`},
		{0, `{"topic":"a.>","echo":true}`},
		{0, `{"topic":"a.b","since":{"offset":0,"epoch":""}}`},
		{0, `{"topic":"a.b","since":{"offset":3,"epoch":"x"}}`},
		{0, `{"topic":"a..b"}`},
		{0, `{"topic":"a.*","since":{"offset":1,"epoch":"e"}}`},
		{0, `[]`},
		{1, `{"sub":1}`},
		{1, `{"sub":-1}`},
		{1, `{}`},
		{2, `{"topic":"a.b","data":{"x":[1,2,3]}}`},
		{2, `{"topic":"drop.x","data":1}`},
		{2, `{"topic":"ro.x","data":1}`},
		{2, `{"topic":"a.*","data":1}`},
		{2, `{"topic":"a.b"}`},
		{3, `{"sub":1,"topic":"a","offset":1,"epoch":"e","data":1}`},
		{0, "\x00\xff"},
		{2, `{"topic":"a.b","data":`},
	} {
		f.Add(s.m, []byte(s.params))
	}
	f.Fuzz(func(t *testing.T, m byte, params []byte) {
		method := fuzzMethods[int(m)%len(fuzzMethods)]
		for _, end := range ends {
			var in any
			if len(params) > 0 {
				in = rpc.Raw(params)
			}
			if end.codec == rpc.SubprotocolJSON && in != nil && !jsonParams(params) {
				continue // JSON-RPC carries only JSON arrays and objects
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			var res rpc.Raw
			err := end.peer.Call(ctx, method, in, &res)
			cancel()
			if err != nil {
				var re *rpc.Error
				if !errors.As(err, &re) {
					t.Fatalf("%s %s %q: %v (%T), want an *rpc.Error", end.codec, method, params, err, err)
				}
				switch re.Code {
				case rpc.CodeInvalidParams, rpc.CodePermissionDenied, rpc.CodeBusy, rpc.CodeInvalidRequest:
				default:
					t.Fatalf("%s %s %q: %v: not an answer to bad input", end.codec, method, params, err)
				}
				if method == pubsub.MethodPublication && re.Code != rpc.CodeInvalidRequest {
					t.Fatalf("%s: $/publication answered %v, want invalid request", end.codec, err)
				}
				continue
			}
			if !json.Valid(res) {
				t.Fatalf("%s %s %q: result %q is not JSON", end.codec, method, params, res)
			}
			switch method {
			case pubsub.MethodSubscribe:
				var r struct {
					Sub   uint64 `json:"sub"`
					Topic string `json:"topic"`
				}
				if err := json.Unmarshal(res, &r); err != nil || r.Sub == 0 || pubsub.ValidPattern(r.Topic) != nil {
					t.Fatalf("%s subscribe %q: result %s", end.codec, params, res)
				}
				// End it, so that every input starts from a clean connection.
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				var ok bool
				err := end.peer.Call(ctx, pubsub.MethodUnsubscribe, map[string]uint64{"sub": r.Sub}, &ok)
				cancel()
				if err != nil || !ok {
					t.Fatalf("%s: unsubscribe %d after subscribe %q: %v", end.codec, r.Sub, params, err)
				}
			case pubsub.MethodUnsubscribe:
				t.Fatalf("%s unsubscribe %q succeeded with nothing subscribed: %s", end.codec, params, res)
			case pubsub.MethodPublish:
				var r struct {
					Offset  uint64 `json:"offset"`
					Epoch   string `json:"epoch"`
					Dropped bool   `json:"dropped"`
				}
				if err := json.Unmarshal(res, &r); err != nil || !r.Dropped && (r.Offset == 0 || r.Epoch == "") {
					t.Fatalf("%s publish %q: result %s", end.codec, params, res)
				}
			case pubsub.MethodPublication:
				t.Fatalf("%s: $/publication as a request succeeded: %s", end.codec, res)
			}
		}
		if st := hub.Stats(); st.Subscriptions != 0 {
			t.Fatalf("%d subscriptions left after %s %q", st.Subscriptions, method, params)
		}
	})
}

// jsonParams reports whether b can be JSON-RPC params: a JSON object or
// array, in UTF-8.
func jsonParams(b []byte) bool {
	if !json.Valid(b) || !utf8.Valid(b) {
		return false
	}
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{', '[':
			return true
		}
		return false
	}
	return false
}
