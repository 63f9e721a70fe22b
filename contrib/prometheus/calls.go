package wsrpcprom

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/internal/boundednames"
	"github.com/wsrpc/wsrpc/internal/promtext"
	"github.com/wsrpc/wsrpc/rpc"
)

// DefaultMaxMethods is how many distinct method names a [Calls] labels
// separately in each direction unless [WithMaxMethods] says otherwise;
// calls to further names are counted under [OtherMethods].
const DefaultMaxMethods = 256

// OtherMethods is the method label of the calls beyond the bound of
// [WithMaxMethods], and OtherCodes the code label of application codes
// beyond [MaxCodes].
const (
	OtherMethods = boundednames.Other
	OtherCodes   = boundednames.OtherCodes
)

// MaxCodes is how many distinct application codes (codes package rpc does
// not name) a [Calls] labels separately in each direction; the codes of
// package rpc are always labelled by name.
const MaxCodes = boundednames.MaxCodes

// Option configures [NewCalls].
type Option func(*options)

type options struct {
	buckets    []float64
	maxMethods int
}

// WithBuckets sets the upper bounds, in seconds, of the call duration
// histogram (default: 0.5ms to 10s, see docs/OBSERVABILITY.md).
func WithBuckets(seconds ...float64) Option {
	return func(o *options) { o.buckets = append([]float64(nil), seconds...) }
}

// WithMaxMethods bounds the distinct method names labelled in each
// direction (default [DefaultMaxMethods]). Method names come from the
// network: without a bound, a client sending random names would make the
// metrics grow without end. A name longer than 256 bytes is labelled by
// its first 256 bytes and "…(N bytes)", as the logs show it. n < 1 means
// the default.
func WithMaxMethods(n int) Option { return func(o *options) { o.maxMethods = n } }

// Calls records the calls its [Calls.Middleware] sees in the metrics
// wsrpc_calls_started_total, wsrpc_calls_handled_total (with the code),
// wsrpc_calls_in_flight and wsrpc_call_duration_seconds, labelled by
// direction ("incoming" for a call served, "outgoing" for one made) and
// method. It is a prometheus.Collector: register it once, and give its
// Middleware to as many handler chains and peers as you like.
type Calls struct {
	started, handled *prometheus.CounterVec
	inFlight         *prometheus.GaugeVec
	duration         *prometheus.HistogramVec
	in, out          direction
	mw               handler.Middleware
}

// NewCalls returns a Calls with no calls counted.
func NewCalls(opts ...Option) *Calls {
	o := options{buckets: promtext.DurationBoundsSeconds(), maxMethods: DefaultMaxMethods}
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxMethods < 1 {
		o.maxMethods = DefaultMaxMethods
	}
	vec := func(f promtext.Family) prometheus.CounterOpts {
		return prometheus.CounterOpts{Name: f.Name, Help: f.Help}
	}
	c := &Calls{
		started: prometheus.NewCounterVec(vec(promtext.CallsStarted), promtext.CallsStarted.Labels),
		handled: prometheus.NewCounterVec(vec(promtext.CallsHandled), promtext.CallsHandled.Labels),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: promtext.CallsInFlight.Name, Help: promtext.CallsInFlight.Help},
			promtext.CallsInFlight.Labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: promtext.CallDuration.Name, Help: promtext.CallDuration.Help, Buckets: o.buckets},
			promtext.CallDuration.Labels),
	}
	c.in = direction{c: c, name: promtext.Incoming, names: boundednames.Set{Max: o.maxMethods}}
	c.out = direction{c: c, name: promtext.Outgoing, names: boundednames.Set{Max: o.maxMethods}}
	in, out := handler.Instrument(&c.in), handler.Instrument(&c.out)
	c.mw = func(next handler.Handler) handler.Handler {
		served, made := in(next), out(next)
		return handler.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
			if req.Outgoing() {
				return made.ServeRPC(ctx, req)
			}
			return served.ServeRPC(ctx, req)
		})
	}
	return c
}

// Middleware returns the middleware that counts calls: in a handler chain
// (handler.Mux.Use, handler.Chain) it counts the calls served, given to
// rpc.WithOutgoingMiddleware the calls made, each under its direction. Put
// it outside the stages whose refusals should count (handler.Limit,
// handler.Authorize), and inside handler.Recover: a panic is counted as
// internal_error before Recover turns it into a reply.
func (c *Calls) Middleware() handler.Middleware { return c.mw }

// Describe implements prometheus.Collector.
func (c *Calls) Describe(ch chan<- *prometheus.Desc) {
	c.started.Describe(ch)
	c.handled.Describe(ch)
	c.inFlight.Describe(ch)
	c.duration.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c *Calls) Collect(ch chan<- prometheus.Metric) {
	c.started.Collect(ch)
	c.handled.Collect(ch)
	c.inFlight.Collect(ch)
	c.duration.Collect(ch)
}

// direction is the handler.Metrics of one direction's calls.
type direction struct {
	c    *Calls
	name string

	names   boundednames.Set
	codes   boundednames.Codes
	methods sync.Map // method label → *methodMetrics (at most max+1 entries)
}

// methodMetrics are one method's metrics, resolved once.
type methodMetrics struct {
	label    string
	started  prometheus.Counter
	inFlight prometheus.Gauge
	duration prometheus.Observer
	handled  sync.Map // code label → prometheus.Counter
}

func (d *direction) method(name string) *methodMetrics {
	label := d.names.Name(name)
	if m, ok := d.methods.Load(label); ok {
		return m.(*methodMetrics)
	}
	m, _ := d.methods.LoadOrStore(label, &methodMetrics{
		label:    label,
		started:  d.c.started.WithLabelValues(d.name, label),
		inFlight: d.c.inFlight.WithLabelValues(d.name, label),
		duration: d.c.duration.WithLabelValues(d.name, label),
	})
	return m.(*methodMetrics)
}

// CallStarted implements handler.Metrics.
func (d *direction) CallStarted(method string) {
	m := d.method(method)
	m.started.Inc()
	m.inFlight.Inc()
}

// CallFinished implements handler.Metrics.
func (d *direction) CallFinished(method string, code rpc.Code, dur time.Duration) {
	m := d.method(method)
	m.inFlight.Dec()
	m.duration.Observe(dur.Seconds())
	label := d.codes.Label(code)
	h, ok := m.handled.Load(label)
	if !ok {
		h, _ = m.handled.LoadOrStore(label, d.c.handled.WithLabelValues(d.name, m.label, label))
	}
	h.(prometheus.Counter).Inc()
}
