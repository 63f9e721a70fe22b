package wsrpcprom_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wsrpc/wsrpc/client"
	wsrpcprom "github.com/wsrpc/wsrpc/contrib/prometheus"
	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// env is a real server with a hub and the three collectors on a registry
// of its own, served by promhttp.
type env struct {
	srv     *server.Server
	hub     *pubsub.Hub
	url     string // ws:// of the RPC endpoint
	metrics string // http:// of /metrics
	reg     *prometheus.Registry
	joined  chan struct{} // a connection is registered
}

func newEnv(t *testing.T) *env {
	t.Helper()
	calls := wsrpcprom.NewCalls()
	hub, err := pubsub.New(pubsub.WithRule("h.>", pubsub.Rule{HistorySize: 10}))
	if err != nil {
		t.Fatal(err)
	}
	mux := handler.NewMux()
	mux.Use(handler.Recover(nil), calls.Middleware())
	mux.Handle("echo", handler.Func(func(_ context.Context, v json.RawMessage) (json.RawMessage, error) { return v, nil }))
	mux.Handle("fail", handler.NoParams(func(context.Context) (any, error) {
		return nil, rpc.NewError(-32050, "out of stock")
	}))
	mux.Handle("boom", handler.NoParams(func(context.Context) (any, error) { panic("boom") }))
	mux.Handle("callback", handler.NoParams(func(ctx context.Context) (string, error) {
		var s string
		err := rpc.RequestFromContext(ctx).Peer().Call(ctx, "client.ping", nil, &s)
		return s, err
	}))
	joined := make(chan struct{}, 4)
	srv, err := server.New(mux, server.WithHub(hub), rpc.WithOutgoingMiddleware(calls.Middleware()),
		server.WithOnConnect(func(*rpc.Peer) { joined <- struct{}{} }))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(calls, wsrpcprom.NewServerCollector(srv), wsrpcprom.NewHubCollector(hub))
	hs := httptest.NewServer(srv)
	ms := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
		ms.Close()
		hub.Close()
	})
	return &env{srv: srv, hub: hub, url: "ws" + strings.TrimPrefix(hs.URL, "http"), metrics: ms.URL, reg: reg, joined: joined}
}

// scrape gets /metrics over HTTP and parses it.
func (e *env) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(e.metrics)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// value is the value of the sample of family name whose labels include
// labels (name=value pairs); -1 when there is none.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

func TestCollectorsAfterRealCalls(t *testing.T) {
	for _, codec := range []string{rpc.SubprotocolBinary, rpc.SubprotocolJSON} {
		t.Run(codec, func(t *testing.T) {
			e := newEnv(t)
			ctx := ctxT(t)
			ping := rpc.HandlerFunc(func(context.Context, *rpc.Request) ([]byte, error) { return []byte(`"pong"`), nil })
			c, err := client.Dial(ctx, e.url, rpc.WithSubprotocols(codec), rpc.WithHandler(ping))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			<-e.joined
			for range 3 {
				if err := c.Call(ctx, "echo", []int{1}, nil); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Call(ctx, "fail", nil, nil); rpc.CodeOf(err) != -32050 {
				t.Fatalf("fail: %v", err)
			}
			if err := c.Call(ctx, "boom", nil, nil); rpc.CodeOf(err) != rpc.CodeInternalError {
				t.Fatalf("boom: %v", err)
			}
			var pong string
			if err := c.Call(ctx, "callback", nil, &pong); err != nil || pong != "pong" {
				t.Fatalf("callback: %q, %v", pong, err)
			}
			pos, err := e.hub.Publish(ctx, "h.a", 1)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.hub.Publish(ctx, "h.a", 2); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Subscribe(ctx, "h.a", client.Since(pos)); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Subscribe(ctx, "h.b", client.Since(pubsub.Position{Offset: 1, Epoch: "gone"})); err != nil {
				t.Fatal(err)
			}
			// A cross-origin handshake, refused.
			req, _ := http.NewRequest("GET", "http"+strings.TrimPrefix(e.url, "ws"), nil)
			for k, v := range map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
				"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Origin": "https://evil.example"} {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()

			f := e.scrape(t)
			in := []string{"direction", "incoming"}
			tests := []struct {
				name   string
				labels []string
				want   float64
			}{
				{"wsrpc_calls_started_total", append(in, "method", "echo"), 3},
				{"wsrpc_calls_handled_total", append(in, "method", "echo", "code", "ok"), 3},
				{"wsrpc_calls_handled_total", append(in, "method", "fail", "code", "-32050"), 1},
				{"wsrpc_calls_handled_total", append(in, "method", "boom", "code", "internal_error"), 1},
				{"wsrpc_calls_handled_total", []string{"direction", "outgoing", "method", "client.ping", "code", "ok"}, 1},
				{"wsrpc_calls_in_flight", append(in, "method", "echo"), 0},
				{"wsrpc_call_duration_seconds", append(in, "method", "echo"), 3},
				{"wsrpc_server_connections", nil, 1},
				{"wsrpc_server_connections_accepted_total", nil, 1},
				{"wsrpc_server_handshakes_refused_total", []string{"reason", "origin"}, 1},
				{"wsrpc_server_handshakes_refused_total", []string{"reason", "max_conns"}, 0},
				{"wsrpc_pubsub_publications_total", nil, 2},
				{"wsrpc_pubsub_subscriptions", nil, 2},
				{"wsrpc_pubsub_recoveries_total", []string{"result", "complete"}, 1},
				{"wsrpc_pubsub_recoveries_total", []string{"result", "incomplete"}, 1},
				{"wsrpc_pubsub_broker_publish_seconds", nil, 2},
			}
			for _, tt := range tests {
				if got := value(f, tt.name, tt.labels...); got != tt.want {
					t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
				}
			}
			// The server's traffic, as its Stats say (read after the scrape:
			// publications may still be on their way).
			st := e.srv.Stats()
			if got := value(f, "wsrpc_server_messages_received_total"); got > float64(st.MessagesIn) || got < 8 {
				t.Errorf("messages received %v, Stats says %d", got, st.MessagesIn)
			}
			if got := value(f, "wsrpc_server_sent_bytes_total"); got > float64(st.BytesOut) || got == 0 {
				t.Errorf("bytes sent %v, Stats says %d", got, st.BytesOut)
			}
			if problems, err := testutil.GatherAndLint(e.reg); err != nil || len(problems) > 0 {
				t.Errorf("lint: %v %v", problems, err)
			}
		})
	}
}

// TestMethodsBounded: method names from the network beyond the bound are
// counted together, so the series stay bounded.
func TestMethodsBounded(t *testing.T) {
	calls := wsrpcprom.NewCalls(wsrpcprom.WithMaxMethods(2))
	h := calls.Middleware()(rpc.HandlerFunc(func(context.Context, *rpc.Request) ([]byte, error) {
		return nil, rpc.NewError(rpc.CodeMethodNotFound, "no")
	}))
	for _, m := range []string{"a", "b", "c", "d", "a", "e"} {
		h.ServeRPC(context.Background(), &rpc.Request{Method: m})
	}
	for i := range wsrpcprom.MaxCodes + 10 { // application codes beyond MaxCodes: "other"
		app := calls.Middleware()(rpc.HandlerFunc(func(context.Context, *rpc.Request) ([]byte, error) {
			return nil, rpc.NewError(rpc.Code(-31000-i), "app")
		}))
		app.ServeRPC(context.Background(), &rpc.Request{Method: "a"})
	}
	if n := testutil.CollectAndCount(calls, "wsrpc_calls_started_total"); n != 3 {
		t.Errorf("%d started series, want 3 (a, b, (other))", n)
	}
	if n := testutil.CollectAndCount(calls, "wsrpc_calls_handled_total"); n != 3+wsrpcprom.MaxCodes+1 {
		t.Errorf("%d handled series, want %d", n, 3+wsrpcprom.MaxCodes+1)
	}
	want := `
# HELP wsrpc_calls_started_total Calls and notifications started.
# TYPE wsrpc_calls_started_total counter
wsrpc_calls_started_total{direction="incoming",method="(other)"} 3
wsrpc_calls_started_total{direction="incoming",method="a"} 44
wsrpc_calls_started_total{direction="incoming",method="b"} 1
`
	if err := testutil.CollectAndCompare(calls, strings.NewReader(want), "wsrpc_calls_started_total"); err != nil {
		t.Error(err)
	}
}

// TestLongMethodNameCut: a method name as long as a message is labelled by
// its first 256 bytes, so that the bound on the names bounds their bytes.
func TestLongMethodNameCut(t *testing.T) {
	calls := wsrpcprom.NewCalls()
	h := calls.Middleware()(rpc.HandlerFunc(func(context.Context, *rpc.Request) ([]byte, error) { return nil, nil }))
	long := strings.Repeat("x", 1<<20)
	h.ServeRPC(context.Background(), &rpc.Request{Method: long})
	want := `
# HELP wsrpc_calls_started_total Calls and notifications started.
# TYPE wsrpc_calls_started_total counter
wsrpc_calls_started_total{direction="incoming",method="` + strings.Repeat("x", 256) + `…(1048576 bytes)"} 1
`
	if err := testutil.CollectAndCompare(calls, strings.NewReader(want), "wsrpc_calls_started_total"); err != nil {
		t.Error(err)
	}
}

// countingBroker is a broker that counts its own work, as the NATS one does.
type countingBroker struct{ pubsub.Broker }

func (countingBroker) BrokerEvents() map[string]uint64 {
	return map[string]uint64{"filled": 3, "duplicates": 1}
}

func TestHubCollectorBrokerEvents(t *testing.T) {
	hub, err := pubsub.New(pubsub.WithBroker(countingBroker{pubsub.NewMemoryBroker(0)}))
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	want := `
# HELP wsrpc_pubsub_broker_events_total What the broker counts of its own work (NATS: filled, fill_failed, duplicates).
# TYPE wsrpc_pubsub_broker_events_total counter
wsrpc_pubsub_broker_events_total{event="duplicates"} 1
wsrpc_pubsub_broker_events_total{event="filled"} 3
`
	if err := testutil.CollectAndCompare(wsrpcprom.NewHubCollector(hub), strings.NewReader(want), "wsrpc_pubsub_broker_events_total"); err != nil {
		t.Error(err)
	}
}
