package rpc_test

import (
	"context"
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/pipe"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// A callee that sends more results than the credit granted fails the call
// (the caller does not buffer past its window) and is told to cancel it.
func TestStreamOverCreditFails(t *testing.T) {
	cc, sc := pipe.New(t, pipe.Options{Subprotocol: rpc.SubprotocolBinary})
	c, err := rpc.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	defer sc.CloseNow()
	s, err := c.Stream(ctxT(t), "flood", nil, rpc.WithWindow(2))
	if err != nil {
		t.Fatal(err)
	}
	var req transport.Message
	select {
	case req = <-sc.Recv():
	case <-time.After(5 * time.Second):
		t.Fatal("no request")
	}
	// The request: kind 1, ext (tag 2, credit 2), id...
	if req.Data[0] != 1 || req.Data[1] != 3 || req.Data[2] != 2 || req.Data[4] != 2 {
		t.Fatalf("request % x: want a stream credit of 2 in its extension block", req.Data)
	}
	id, _ := binary.Uvarint(req.Data[5:])
	for i := range 5 { // three more than the credit
		item := append([]byte{0x08, 0x00}, binary.AppendUvarint(nil, id)...)
		item = append(item, byte('1'+i))
		if err := sc.Send(ctxT(t), transport.Message{Type: transport.Binary, Data: item}); err != nil {
			t.Fatal(err)
		}
	}
	// Read nothing until all five have arrived: no credit was granted past
	// the first two.
	time.Sleep(200 * time.Millisecond)
	got := 0
	for {
		_, err := s.Recv()
		if err != nil {
			if rpc.CodeOf(err) != rpc.CodeInternalError {
				t.Fatalf("after %d results: %v, want the over-credit error", got, err)
			}
			break
		}
		got++
	}
	if got > 2 {
		t.Fatalf("%d results delivered with a window of 2", got)
	}
	// The callee was told to cancel.
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m := <-sc.Recv():
			if m.Data[0] == 0x05 {
				return
			}
		case <-deadline:
			t.Fatal("no cancel sent for the flooding stream")
		}
	}
}

// A large transfer as a stream of 64 KiB results keeps memory flat on both
// ends: it does not grow with the payload.
func TestStreamLargeTransferBoundedMemory(t *testing.T) {
	const chunk, total = 64 << 10, 96 << 20 // 96 MiB (the bench program moves 1 GiB)
	payload := make([]byte, chunk)
	for i := range payload {
		payload[i] = 'x'
	}
	raw := rpc.Raw(append(append([]byte{'"'}, payload[2:]...), '"'))
	h := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		for sent := 0; sent < total; sent += chunk {
			if err := req.Stream().Send(ctx, raw); err != nil {
				return nil, err
			}
		}
		return nil, nil
	})
	c, _ := peers(t, rpc.SubprotocolBinary, []rpc.Option{rpc.WithHandler(h)}, nil)
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	s, err := c.Stream(ctxT(t), "download", nil, rpc.WithWindow(16))
	if err != nil {
		t.Fatal(err)
	}
	received, peak := 0, uint64(0)
	for n := 0; ; n++ {
		it, err := s.Recv()
		if err != nil {
			break
		}
		received += len(it)
		if n%64 == 0 {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}
	if received != total {
		t.Fatalf("received %d bytes, want %d", received, total)
	}
	// Both ends are in this process: the window (16 × 64 KiB on the way)
	// and the transport's queues bound them, far below the payload.
	if grown := int64(peak) - int64(base.HeapInuse); grown > 32<<20 {
		t.Fatalf("heap in use grew by %d MiB moving %d MiB", grown>>20, total>>20)
	}
	t.Logf("moved %d MiB; heap in use grew by at most %d KiB", total>>20, (int64(peak)-int64(base.HeapInuse))>>10)
}
