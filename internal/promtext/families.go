// Package promtext names the Prometheus metrics of wsrpc and writes them in
// the Prometheus text exposition format (version 0.0.4) from the figures
// the core packages keep: server.Stats, pubsub.Stats and a
// handler.MemoryMetrics. `wsrpc serve --metrics-addr` serves what it writes;
// contrib/prometheus describes the same families (names, help, labels) for
// client_golang from the Family values here, so that both expose the same
// metrics. A Writer is not safe for concurrent use; the rest is.
package promtext

import (
	"time"
)

// Family is one metric: its name, help text, type and label names.
type Family struct {
	Name   string
	Help   string
	Type   string // "counter", "gauge" or "histogram"
	Labels []string
}

// Label names.
const (
	LabelDirection = "direction" // "incoming" (served) or "outgoing" (made)
	LabelMethod    = "method"
	LabelCode      = "code"   // see boundednames.CodeLabel
	LabelReason    = "reason" // server.Refusal's String
	LabelResult    = "result" // "complete" or "incomplete"
	LabelEvent     = "event"  // a broker's event name (pubsub.EventCounter)
	LabelState     = "state"  // server.State's String
)

// The server's families (server.Stats).
var (
	ServerState        = Family{"wsrpc_server_state", "1 for the state the server is in (ready, draining, stopped), 0 for the others.", "gauge", []string{LabelState}}
	ServerConnections  = Family{"wsrpc_server_connections", "Connections open now.", "gauge", nil}
	ServerAccepted     = Family{"wsrpc_server_connections_accepted_total", "Connections accepted (registered) since the server started.", "counter", nil}
	ServerRefused      = Family{"wsrpc_server_handshakes_refused_total", "Handshakes refused, by reason.", "counter", []string{LabelReason}}
	ServerMessagesIn   = Family{"wsrpc_server_messages_received_total", "WebSocket data messages received from clients.", "counter", nil}
	ServerMessagesOut  = Family{"wsrpc_server_messages_sent_total", "WebSocket data messages sent to clients.", "counter", nil}
	ServerBytesIn      = Family{"wsrpc_server_received_bytes_total", "Payload bytes of the WebSocket data messages received from clients.", "counter", nil}
	ServerBytesOut     = Family{"wsrpc_server_sent_bytes_total", "Payload bytes of the WebSocket data messages sent to clients.", "counter", nil}
	ServerFamilies     = []Family{ServerState, ServerConnections, ServerAccepted, ServerRefused, ServerMessagesIn, ServerMessagesOut, ServerBytesIn, ServerBytesOut}
	callLabels         = []string{LabelDirection, LabelMethod}
	CallsStarted       = Family{"wsrpc_calls_started_total", "Calls and notifications started.", "counter", callLabels}
	CallsHandled       = Family{"wsrpc_calls_handled_total", "Calls and notifications finished, by outcome code.", "counter", []string{LabelDirection, LabelMethod, LabelCode}}
	CallsInFlight      = Family{"wsrpc_calls_in_flight", "Calls and notifications started and not finished.", "gauge", callLabels}
	CallDuration       = Family{"wsrpc_call_duration_seconds", "How long calls and notifications took, from start to outcome.", "histogram", callLabels}
	CallFamilies       = []Family{CallsStarted, CallsHandled, CallsInFlight, CallDuration}
	PubSubConnections  = Family{"wsrpc_pubsub_connections", "Connections attached to the hub now.", "gauge", nil}
	PubSubSubs         = Family{"wsrpc_pubsub_subscriptions", "Subscriptions now, over every connection.", "gauge", nil}
	PubSubTopics       = Family{"wsrpc_pubsub_topics", "Distinct topics and patterns subscribed now.", "gauge", nil}
	PubSubPublished    = Family{"wsrpc_pubsub_publications_total", "Publications made through the hub.", "counter", nil}
	PubSubDelivered    = Family{"wsrpc_pubsub_deliveries_total", "Publications queued on a subscriber's connection.", "counter", nil}
	PubSubSlowClosed   = Family{"wsrpc_pubsub_slow_subscribers_closed_total", "Connections closed for not reading their publications (4008).", "counter", nil}
	PubSubDropped      = Family{"wsrpc_pubsub_publications_dropped_total", "Client publications a rule's publish hook dropped.", "counter", nil}
	PubSubLost         = Family{"wsrpc_pubsub_deliveries_lost_total", "Deliveries not queued because the connection was closing.", "counter", nil}
	PubSubRecoveries   = Family{"wsrpc_pubsub_recoveries_total", "Subscriptions that asked to recover missed publications, by result.", "counter", []string{LabelResult}}
	PubSubBrokerPub    = Family{"wsrpc_pubsub_broker_publish_seconds", "How long each publication took through the broker.", "histogram", nil}
	PubSubBrokerEvents = Family{"wsrpc_pubsub_broker_events_total", "What the broker counts of its own work (NATS: filled, fill_failed, duplicates).", "counter", []string{LabelEvent}}
	PubSubFamilies     = []Family{PubSubConnections, PubSubSubs, PubSubTopics, PubSubPublished, PubSubDelivered, PubSubSlowClosed, PubSubDropped, PubSubLost, PubSubRecoveries, PubSubBrokerPub, PubSubBrokerEvents}
	durationBoundsSecs = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
)

// Directions, the values of the direction label.
const (
	Incoming = "incoming"
	Outgoing = "outgoing"
)

// DurationBounds are the default upper bounds of the call duration
// histogram, from 0.5ms to 10s.
func DurationBounds() []time.Duration {
	out := make([]time.Duration, len(durationBoundsSecs))
	for i, s := range durationBoundsSecs {
		out[i] = time.Duration(s * float64(time.Second))
	}
	return out
}

// DurationBoundsSeconds are DurationBounds in seconds.
func DurationBoundsSeconds() []float64 { return append([]float64(nil), durationBoundsSecs...) }
