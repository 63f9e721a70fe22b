package wsrpcprom_test

import (
	"bytes"
	"context"
	"maps"
	"slices"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/internal/promtext"
	"github.com/wsrpc/wsrpc/rpc"
)

// TestCoreTextFormat: the text that `wsrpc serve --metrics-addr` writes
// from the core's own figures (package promtext, no client_golang) parses
// with Prometheus's own parser, and has the families of this package's
// collectors: the same names, types and label names.
func TestCoreTextFormat(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	c, err := client.Dial(ctx, e.url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	in, out := handler.NewMemoryMetrics(promtext.DurationBounds()...), handler.NewMemoryMetrics(promtext.DurationBounds()...)
	h := handler.Instrument(in)(rpc.HandlerFunc(func(context.Context, *rpc.Request) ([]byte, error) { return nil, rpc.NewError(-32050, "x") }))
	h.ServeRPC(ctx, &rpc.Request{Method: `a "quoted" \ method` + "\n"})
	handler.Instrument(out)(rpc.HandlerFunc(func(context.Context, *rpc.Request) ([]byte, error) { return nil, nil })).
		ServeRPC(ctx, &rpc.Request{Method: "client.ping"})
	if err := c.Call(ctx, "echo", []int{1}, nil); err != nil { // for the client_golang side
		t.Fatal(err)
	}
	if _, err := e.hub.Publish(ctx, "h.a", 1); err != nil {
		t.Fatal(err)
	}

	var w promtext.Writer
	promtext.WriteServer(&w, e.srv.Stats())
	promtext.WriteHub(&w, e.hub.Stats())
	promtext.WriteCallDirections(&w, in.Snapshot(), out.Snapshot())
	p := expfmt.NewTextParser(model.UTF8Validation)
	core, err := p.TextToMetricFamilies(bytes.NewReader(w.Bytes()))
	if err != nil {
		t.Fatalf("%v\n%s", err, w.Bytes())
	}
	if got := value(core, "wsrpc_calls_handled_total", "method", `a "quoted" \ method`+"\n", "code", "-32050"); got != 1 {
		t.Errorf("the quoted method: %v\n%s", got, w.Bytes())
	}
	if got := value(core, "wsrpc_calls_started_total", "direction", "outgoing", "method", "client.ping"); got != 1 {
		t.Errorf("outgoing: %v", got)
	}

	gathered, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	lib := make(map[string]*dto.MetricFamily)
	for _, f := range gathered {
		lib[f.GetName()] = f
	}
	if a, b := slices.Sorted(maps.Keys(core)), slices.Sorted(maps.Keys(lib)); !slices.Equal(a, b) {
		t.Fatalf("families differ:\ncore %v\nlib  %v", a, b)
	}
	for name, cf := range core {
		lf := lib[name]
		if cf.GetType() != lf.GetType() || cf.GetHelp() != lf.GetHelp() {
			t.Errorf("%s: core %v %q, lib %v %q", name, cf.GetType(), cf.GetHelp(), lf.GetType(), lf.GetHelp())
		}
		if a, b := labelNames(cf), labelNames(lf); !slices.Equal(a, b) {
			t.Errorf("%s: labels core %v, lib %v", name, a, b)
		}
	}
}

func labelNames(f *dto.MetricFamily) []string {
	if len(f.Metric) == 0 {
		return nil
	}
	var out []string
	for _, l := range f.Metric[0].Label {
		out = append(out, l.GetName())
	}
	slices.Sort(out)
	return out
}
