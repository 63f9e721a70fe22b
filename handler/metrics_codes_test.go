package handler_test

import (
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
)

// TestMemoryMetricsTooManyCodes: the codes of one method are bounded too
// (the other side chooses the codes of the calls a peer makes).
func TestMemoryMetricsTooManyCodes(t *testing.T) {
	m := handler.NewMemoryMetrics()
	for i := range handler.MaxMetricCodes + 10 {
		m.CallStarted("m")
		m.CallFinished("m", rpc.Code(-31000-i), time.Millisecond)
	}
	mm := m.Snapshot().Methods["m"]
	if len(mm.Finished) != handler.MaxMetricCodes+1 || mm.Finished[handler.OtherCodes].Count != 10 {
		t.Errorf("%d codes kept, %d calls under OtherCodes; want %d and 10", len(mm.Finished), mm.Finished[handler.OtherCodes].Count, handler.MaxMetricCodes+1)
	}
	m.CallFinished("m", -31000, time.Millisecond) // a code already kept still counts as itself
	if got := m.Snapshot().Methods["m"].Finished[-31000].Count; got != 2 {
		t.Errorf("code -31000 counted %d times, want 2", got)
	}
}
