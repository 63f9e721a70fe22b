package wsrpcprom

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsrpc/wsrpc/internal/promtext"
	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/server"
)

// descs are the descriptions of families, by name.
type descs map[string]*prometheus.Desc

func newDescs(fs []promtext.Family) descs {
	d := make(descs, len(fs))
	for _, f := range fs {
		d[f.Name] = prometheus.NewDesc(f.Name, f.Help, f.Labels, nil)
	}
	return d
}

func (d descs) describe(ch chan<- *prometheus.Desc) {
	for _, desc := range d {
		ch <- desc
	}
}

func (d descs) counter(ch chan<- prometheus.Metric, f promtext.Family, v uint64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d[f.Name], prometheus.CounterValue, float64(v), labels...)
}

func (d descs) gauge(ch chan<- prometheus.Metric, f promtext.Family, v int) {
	ch <- prometheus.MustNewConstMetric(d[f.Name], prometheus.GaugeValue, float64(v))
}

type serverCollector struct {
	s *server.Server
	d descs
}

// NewServerCollector returns a collector of s's figures, read from
// [server.Server.Stats] at each scrape: wsrpc_server_state{state},
// wsrpc_server_connections,
// wsrpc_server_connections_accepted_total,
// wsrpc_server_handshakes_refused_total{reason} (every reason, zeros
// included), wsrpc_server_messages_received_total and _sent_total,
// wsrpc_server_received_bytes_total and _sent_bytes_total.
func NewServerCollector(s *server.Server) prometheus.Collector {
	return &serverCollector{s: s, d: newDescs(promtext.ServerFamilies)}
}

func (c *serverCollector) Describe(ch chan<- *prometheus.Desc) { c.d.describe(ch) }

func (c *serverCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	for _, state := range promtext.States() {
		v := 0.0
		if state == st.State {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.d[promtext.ServerState.Name], prometheus.GaugeValue, v, state.String())
	}
	c.d.gauge(ch, promtext.ServerConnections, st.Conns)
	c.d.counter(ch, promtext.ServerAccepted, st.Accepted)
	for _, r := range server.Refusals() {
		c.d.counter(ch, promtext.ServerRefused, st.Refused[r], r.String())
	}
	c.d.counter(ch, promtext.ServerMessagesIn, st.MessagesIn)
	c.d.counter(ch, promtext.ServerMessagesOut, st.MessagesOut)
	c.d.counter(ch, promtext.ServerBytesIn, st.BytesIn)
	c.d.counter(ch, promtext.ServerBytesOut, st.BytesOut)
}

type hubCollector struct {
	h *pubsub.Hub
	d descs
}

// NewHubCollector returns a collector of h's figures, read from
// [pubsub.Hub.Stats] at each scrape: the gauges wsrpc_pubsub_connections,
// _subscriptions and _topics; the counters
// wsrpc_pubsub_publications_total, _deliveries_total,
// _slow_subscribers_closed_total, _publications_dropped_total,
// _deliveries_lost_total and _recoveries_total{result="complete" or
// "incomplete"}; the histogram wsrpc_pubsub_broker_publish_seconds; and,
// for a broker that counts its own work (pubsub.EventCounter: the NATS
// broker), wsrpc_pubsub_broker_events_total{event}.
func NewHubCollector(h *pubsub.Hub) prometheus.Collector {
	return &hubCollector{h: h, d: newDescs(promtext.PubSubFamilies)}
}

func (c *hubCollector) Describe(ch chan<- *prometheus.Desc) { c.d.describe(ch) }

func (c *hubCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.h.Stats()
	c.d.gauge(ch, promtext.PubSubConnections, st.Connections)
	c.d.gauge(ch, promtext.PubSubSubs, st.Subscriptions)
	c.d.gauge(ch, promtext.PubSubTopics, st.Topics)
	c.d.counter(ch, promtext.PubSubPublished, st.Published)
	c.d.counter(ch, promtext.PubSubDelivered, st.Delivered)
	c.d.counter(ch, promtext.PubSubSlowClosed, st.SlowClosed)
	c.d.counter(ch, promtext.PubSubDropped, st.Dropped)
	c.d.counter(ch, promtext.PubSubLost, st.Lost)
	c.d.counter(ch, promtext.PubSubRecoveries, st.Recovered, "complete")
	c.d.counter(ch, promtext.PubSubRecoveries, st.RecoveryIncomplete, "incomplete")
	b := st.BrokerPublish
	buckets := make(map[float64]uint64, len(b.Bounds))
	var cum uint64
	for i, bound := range b.Bounds {
		cum += b.Counts[i]
		buckets[bound.Seconds()] = cum
	}
	ch <- prometheus.MustNewConstHistogram(c.d[promtext.PubSubBrokerPub.Name], b.Count, b.Sum.Seconds(), buckets)
	for name, n := range st.BrokerEvents {
		c.d.counter(ch, promtext.PubSubBrokerEvents, n, name)
	}
}
