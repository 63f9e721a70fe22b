package promtext_test

import (
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/internal/promtext"
	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestWriteCalls(t *testing.T) {
	mm := handler.NewMemoryMetrics(time.Millisecond, 10*time.Millisecond)
	mm.CallStarted("add")
	mm.CallFinished("add", 0, 500*time.Microsecond)
	mm.CallStarted("add")
	mm.CallFinished("add", rpc.CodeInvalidParams, 5*time.Millisecond)
	mm.CallStarted("add") // in flight
	mm.CallStarted(`we"ird\` + "\n")
	mm.CallFinished(`we"ird\`+"\n", -32050, time.Second)
	var w promtext.Writer
	promtext.WriteCalls(&w, promtext.Incoming, mm.Snapshot())
	got := string(w.Bytes())
	for _, want := range []string{
		"# HELP wsrpc_calls_started_total Calls and notifications started.\n# TYPE wsrpc_calls_started_total counter\n",
		`wsrpc_calls_started_total{direction="incoming",method="add"} 3` + "\n",
		`wsrpc_calls_handled_total{direction="incoming",method="add",code="ok"} 1` + "\n",
		`wsrpc_calls_handled_total{direction="incoming",method="add",code="invalid_params"} 1` + "\n",
		`wsrpc_calls_handled_total{direction="incoming",method="we\"ird\\\n",code="-32050"} 1` + "\n",
		`wsrpc_calls_in_flight{direction="incoming",method="add"} 1` + "\n",
		`wsrpc_call_duration_seconds_bucket{direction="incoming",method="add",le="0.001"} 1` + "\n",
		`wsrpc_call_duration_seconds_bucket{direction="incoming",method="add",le="0.01"} 2` + "\n",
		`wsrpc_call_duration_seconds_bucket{direction="incoming",method="add",le="+Inf"} 2` + "\n",
		`wsrpc_call_duration_seconds_sum{direction="incoming",method="add"} 0.0055` + "\n",
		`wsrpc_call_duration_seconds_count{direction="incoming",method="add"} 2` + "\n",
		`wsrpc_call_duration_seconds_bucket{direction="incoming",method="we\"ird\\\n",le="+Inf"} 1` + "\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	if n := strings.Count(got, "# TYPE wsrpc_call_duration_seconds histogram\n"); n != 1 {
		t.Errorf("%d TYPE lines for the histogram", n)
	}
}

func TestWriteServerAndHub(t *testing.T) {
	var w promtext.Writer
	st := server.Stats{State: server.StateDraining, Conns: 2, Accepted: 5, Refused: map[server.Refusal]uint64{server.RefusedOrigin: 3}}
	st.BytesIn = 1 << 40
	promtext.WriteServer(&w, st)
	promtext.WriteHub(&w, pubsub.Stats{Recovered: 4, BrokerEvents: map[string]uint64{"filled": 7, "duplicates": 1}, BrokerPublish: pubsub.Durations{
		Bounds: []time.Duration{time.Millisecond}, Counts: []uint64{2, 1}, Count: 3, Sum: 1500 * time.Millisecond}})
	got := string(w.Bytes())
	for _, want := range []string{
		"wsrpc_server_connections 2\n",
		`wsrpc_server_state{state="ready"} 0` + "\n",
		`wsrpc_server_state{state="draining"} 1` + "\n",
		"wsrpc_server_connections_accepted_total 5\n",
		`wsrpc_server_handshakes_refused_total{reason="origin"} 3` + "\n",
		`wsrpc_server_handshakes_refused_total{reason="rate"} 0` + "\n",
		"wsrpc_server_received_bytes_total 1.099511627776e+12\n",
		`wsrpc_pubsub_recoveries_total{result="complete"} 4` + "\n",
		`wsrpc_pubsub_broker_publish_seconds_bucket{le="0.001"} 2` + "\n",
		`wsrpc_pubsub_broker_publish_seconds_bucket{le="+Inf"} 3` + "\n",
		"wsrpc_pubsub_broker_publish_seconds_sum 1.5\n",
		"# TYPE wsrpc_pubsub_broker_events_total counter\n",
		`wsrpc_pubsub_broker_events_total{event="duplicates"} 1` + "\n",
		`wsrpc_pubsub_broker_events_total{event="filled"} 7` + "\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
}
