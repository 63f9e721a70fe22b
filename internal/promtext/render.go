package promtext

import (
	"maps"
	"slices"
	"time"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/internal/boundednames"
	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/server"
)

// WriteServer writes the server's families from st.
func WriteServer(w *Writer, st server.Stats) {
	w.Header(ServerState)
	for _, state := range States() {
		v := 0.0
		if state == st.State {
			v = 1
		}
		w.Sample(ServerState, "", v, []string{state.String()})
	}
	w.one(ServerConnections, float64(st.Conns))
	w.one(ServerAccepted, float64(st.Accepted))
	w.Header(ServerRefused)
	for _, r := range server.Refusals() {
		w.Sample(ServerRefused, "", float64(st.Refused[r]), []string{r.String()})
	}
	w.one(ServerMessagesIn, float64(st.MessagesIn))
	w.one(ServerMessagesOut, float64(st.MessagesOut))
	w.one(ServerBytesIn, float64(st.BytesIn))
	w.one(ServerBytesOut, float64(st.BytesOut))
}

// WriteHub writes the pub/sub families from st.
func WriteHub(w *Writer, st pubsub.Stats) {
	w.one(PubSubConnections, float64(st.Connections))
	w.one(PubSubSubs, float64(st.Subscriptions))
	w.one(PubSubTopics, float64(st.Topics))
	w.one(PubSubPublished, float64(st.Published))
	w.one(PubSubDelivered, float64(st.Delivered))
	w.one(PubSubSlowClosed, float64(st.SlowClosed))
	w.one(PubSubDropped, float64(st.Dropped))
	w.one(PubSubLost, float64(st.Lost))
	w.Header(PubSubRecoveries)
	w.Sample(PubSubRecoveries, "", float64(st.Recovered), []string{"complete"})
	w.Sample(PubSubRecoveries, "", float64(st.RecoveryIncomplete), []string{"incomplete"})
	b := st.BrokerPublish
	w.Header(PubSubBrokerPub)
	w.Histogram(PubSubBrokerPub, Seconds(b.Bounds), b.Counts, b.Sum.Seconds(), nil)
	if len(st.BrokerEvents) > 0 {
		w.Header(PubSubBrokerEvents)
		for _, name := range slices.Sorted(maps.Keys(st.BrokerEvents)) {
			w.Sample(PubSubBrokerEvents, "", float64(st.BrokerEvents[name]), []string{name})
		}
	}
}

// WriteCalls writes the call families from a MemoryMetrics snapshot of
// the calls of one direction (Incoming or Outgoing). The duration
// histogram of a method sums those of its codes.
func WriteCalls(w *Writer, direction string, snap handler.MetricsSnapshot) {
	writeCalls(w, []directionSnapshot{{direction, snap}})
}

type directionSnapshot struct {
	name string
	snap handler.MetricsSnapshot
}

func writeCalls(w *Writer, dirs []directionSnapshot) {
	w.Header(CallsStarted)
	for _, d := range dirs {
		for _, m := range slices.Sorted(maps.Keys(d.snap.Methods)) {
			w.Sample(CallsStarted, "", float64(d.snap.Methods[m].Started), []string{d.name, m})
		}
	}
	w.Header(CallsHandled)
	for _, d := range dirs {
		for _, m := range slices.Sorted(maps.Keys(d.snap.Methods)) {
			fin := d.snap.Methods[m].Finished
			for _, c := range slices.Sorted(maps.Keys(fin)) {
				w.Sample(CallsHandled, "", float64(fin[c].Count), []string{d.name, m, boundednames.CodeLabel(c)})
			}
		}
	}
	w.Header(CallsInFlight)
	for _, d := range dirs {
		for _, m := range slices.Sorted(maps.Keys(d.snap.Methods)) {
			mm := d.snap.Methods[m]
			n := mm.Started
			for _, h := range mm.Finished {
				n -= h.Count
			}
			w.Sample(CallsInFlight, "", float64(n), []string{d.name, m})
		}
	}
	w.Header(CallDuration)
	for _, d := range dirs {
		bounds := Seconds(d.snap.Buckets)
		for _, m := range slices.Sorted(maps.Keys(d.snap.Methods)) {
			counts := make([]uint64, len(bounds)+1)
			var sum time.Duration
			for _, h := range d.snap.Methods[m].Finished {
				for i, n := range h.Counts {
					counts[i] += n
				}
				sum += h.Sum
			}
			w.Histogram(CallDuration, bounds, counts, sum.Seconds(), []string{d.name, m})
		}
	}
}

// States are the values of the state label, in order.
func States() []server.State {
	return []server.State{server.StateReady, server.StateDraining, server.StateStopped}
}

// one writes a family of one sample without labels.
func (w *Writer) one(f Family, v float64) {
	w.Header(f)
	w.Sample(f, "", v, nil)
}

// Seconds converts duration bounds to seconds.
func Seconds(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

// WriteCallDirections writes the call families from the snapshots of the
// calls served (incoming) and made (outgoing), each family once.
func WriteCallDirections(w *Writer, incoming, outgoing handler.MetricsSnapshot) {
	writeCalls(w, []directionSnapshot{{Incoming, incoming}, {Outgoing, outgoing}})
}
