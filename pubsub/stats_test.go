package pubsub_test

import (
	"fmt"
	"testing"

	"github.com/wsrpc/wsrpc/pubsub"
)

// TestStatsRecoveriesAndBroker: a subscription that recovers everything,
// one whose epoch is gone and one on a topic without history are counted
// apart, and every publication's trip through the broker is timed.
func TestStatsRecoveriesAndBroker(t *testing.T) {
	e := newEnvWith(t, envConfig{hub: []pubsub.Option{pubsub.WithRule("h.>", pubsub.Rule{HistorySize: 10})}})
	ctx := ctxT(t)
	pos, err := e.hub.Publish(ctx, "h.a", 1)
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, e.hub, "h.a", 2, 3)
	p := e.dial(codecs[0]).Peer()
	subscribe := func(params string, wantRecovered bool) {
		t.Helper()
		r, err := rawSubscribe(t, p, params)
		if err != nil {
			t.Fatal(err)
		}
		if r.Recovered == nil || *r.Recovered != wantRecovered {
			t.Fatalf("%s: recovered %v, want %v", params, r.Recovered, wantRecovered)
		}
		unsubscribeRaw(t, p, r.Sub)
	}
	subscribe(fmt.Sprintf(`{"topic":"h.a","since":{"offset":1,"epoch":%q}}`, pos.Epoch), true)
	subscribe(`{"topic":"h.a","since":{"offset":1,"epoch":"another"}}`, false)
	subscribe(`{"topic":"live","since":{"offset":1,"epoch":"e"}}`, false)
	if _, err := rawSubscribe(t, p, `{"topic":"h.b"}`); err != nil { // no since: not a recovery
		t.Fatal(err)
	}
	st := e.hub.Stats()
	if st.Recovered != 1 || st.RecoveryIncomplete != 2 {
		t.Errorf("Recovered %d, RecoveryIncomplete %d; want 1 and 2", st.Recovered, st.RecoveryIncomplete)
	}
	b := st.BrokerPublish
	var n uint64
	for _, c := range b.Counts {
		n += c
	}
	if b.Count != 3 || n != 3 || len(b.Counts) != len(b.Bounds)+1 || b.Sum <= 0 {
		t.Errorf("BrokerPublish = %+v, want 3 publications timed", b)
	}
	if st.Published != 3 {
		t.Errorf("Published = %d", st.Published)
	}
}

// countingBroker is a broker that counts its own work.
type countingBroker struct{ pubsub.Broker }

func (countingBroker) BrokerEvents() map[string]uint64 { return map[string]uint64{"filled": 2} }

// TestStatsBrokerEvents: a broker's own counts are in the Hub's Stats.
func TestStatsBrokerEvents(t *testing.T) {
	h, err := pubsub.New(pubsub.WithBroker(countingBroker{pubsub.NewMemoryBroker(0)}))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if ev := h.Stats().BrokerEvents; len(ev) != 1 || ev["filled"] != 2 {
		t.Errorf("BrokerEvents = %v", ev)
	}
	plain, err := pubsub.New()
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if ev := plain.Stats().BrokerEvents; ev != nil {
		t.Errorf("the memory broker's BrokerEvents = %v, want nil", ev)
	}
}
