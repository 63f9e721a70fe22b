package pubsub

import (
	"sync/atomic"
	"time"

	"github.com/wsrpc/wsrpc/internal/durhist"
)

// Durations is a histogram of durations, as [Stats.BrokerPublish] reports
// it.
type Durations struct {
	Bounds []time.Duration // the upper bounds of the buckets, ascending (100µs to 10s)
	// Counts has one entry per bound, plus one: Counts[i] is the number of
	// durations d with Bounds[i-1] < d <= Bounds[i] (not cumulative), and
	// the last entry counts those above the largest bound.
	Counts []uint64
	Count  uint64        // every duration recorded
	Sum    time.Duration // their sum
}

// hubCounts are the Hub's counters that are not in hub.go: recoveries and
// the broker's round trips.
type hubCounts struct {
	recovered, incomplete atomic.Uint64
	publish               durhist.H
}

// recovery counts a subscription that asked to recover (since): complete
// when every missed publication could be sent.
func (k *hubCounts) recovery(complete bool) {
	if complete {
		k.recovered.Add(1)
	} else {
		k.incomplete.Add(1)
	}
}

// fill puts the counts into st.
func (k *hubCounts) fill(st *Stats) {
	st.Recovered = k.recovered.Load()
	st.RecoveryIncomplete = k.incomplete.Load()
	counts, total, sum := k.publish.Snapshot()
	st.BrokerPublish = Durations{Bounds: durhist.Bounds[:], Counts: counts, Count: total, Sum: sum}
}

// EventCounter is what a [Broker] implements to report counts of what it
// does on its own, beyond what the Hub sees (the NATS broker: gaps filled
// from JetStream, duplicates dropped): event names in snake case, each
// with its count since the broker was made. [Hub.Stats] reads them into
// [Stats.BrokerEvents], and so a metrics collector.
type EventCounter interface {
	BrokerEvents() map[string]uint64
}

// brokerEvents asks the broker for its counts, if it keeps any.
func (h *Hub) brokerEvents() map[string]uint64 {
	if ec, ok := h.broker.(EventCounter); ok {
		return ec.BrokerEvents()
	}
	return nil
}
