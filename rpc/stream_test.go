package rpc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/rpc"
)

// countdown streams n, n-1, ..., 1 and ends with "liftoff"; "fail" sends
// two and fails; "wait" sends one and waits for ctx.
func streamer(t *testing.T, sent *atomic.Int64, ended chan error) rpc.Handler {
	return rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		w := req.Stream()
		var args []int
		_ = json.Unmarshal(req.Params, &args)
		n := 0
		if len(args) > 0 {
			n = args[0]
		}
		switch req.Method {
		case "countdown":
			if w == nil {
				return []byte(`"no stream"`), nil
			}
			for i := n; i > 0; i-- {
				if err := w.Send(ctx, i); err != nil {
					if ended != nil {
						ended <- err
					}
					return nil, err
				}
				if sent != nil {
					sent.Add(1)
				}
			}
			return []byte(`"liftoff"`), nil
		case "fail":
			_ = w.Send(ctx, 1)
			_ = w.Send(ctx, 2)
			return nil, rpc.Errorf(rpc.CodeInvalidParams, "two is enough")
		case "wait":
			_ = w.Send(ctx, "first")
			<-ctx.Done()
			if ended != nil {
				ended <- ctx.Err()
			}
			return nil, ctx.Err()
		}
		return nil, rpc.Errorf(rpc.CodeMethodNotFound, "no %s", req.Method)
	})
}

func TestStreamOrderAndEnd(t *testing.T) {
	for _, cd := range codecs {
		t.Run(cd.name, func(t *testing.T) {
			c, _ := peers(t, cd.subprotocol, []rpc.Option{rpc.WithHandler(streamer(t, nil, nil))}, nil)
			s, err := c.Stream(ctxT(t), "countdown", []int{1000}, rpc.WithWindow(8))
			if err != nil {
				t.Fatal(err)
			}
			for want := 1000; want > 0; want-- {
				var got int
				if err := s.RecvValue(&got); err != nil || got != want {
					t.Fatalf("result %d: %d, %v", want, got, err)
				}
			}
			if _, err := s.Recv(); !errors.Is(err, io.EOF) || !errors.Is(err, rpc.ErrStreamEnded) {
				t.Fatalf("after the last: %v, want io.EOF", err)
			}
			var final string
			if err := s.Result(&final); err != nil || final != "liftoff" {
				t.Fatalf("final result %q, %v", final, err)
			}
			// A plain call of the same method gets the handler's plain answer.
			var plain string
			if err := c.Call(ctxT(t), "countdown", []int{3}, &plain); err != nil || plain != "no stream" {
				t.Fatalf("plain call: %q, %v", plain, err)
			}
		})
	}
}

// A consumer that stops reading holds the handler at the window: it sends
// no more than the credit granted, and goes on when the consumer reads.
// Results of 128 KiB keep the window at the 10 it was opened with (1 MiB of
// them is 8); small results let it grow (TestStreamWindowGrows).
func TestStreamCreditBlocksAndRefills(t *testing.T) {
	big := rpc.Raw(`"` + strings.Repeat("x", 128<<10) + `"`)
	for _, cd := range codecs {
		t.Run(cd.name, func(t *testing.T) {
			var sent atomic.Int64
			h := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
				for range 100 {
					if err := req.Stream().Send(ctx, big); err != nil {
						return nil, err
					}
					sent.Add(1)
				}
				return nil, nil
			})
			c, _ := peers(t, cd.subprotocol, []rpc.Option{rpc.WithHandler(h)}, nil)
			s, err := c.Stream(ctxT(t), "big", nil, rpc.WithWindow(10))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			waitSent := func(want int64) {
				t.Helper()
				deadline := time.Now().Add(5 * time.Second)
				for sent.Load() < want && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond)
				}
				time.Sleep(100 * time.Millisecond) // and no more after that
				if n := sent.Load(); n != want {
					t.Fatalf("%d results sent, want %d", n, want)
				}
			}
			waitSent(10) // nothing read: the initial credit only
			for range 4 {
				if _, err := s.Recv(); err != nil {
					t.Fatal(err)
				}
			}
			waitSent(10) // 6 still out: more than half the window, no credit yet
			if _, err := s.Recv(); err != nil {
				t.Fatal(err)
			}
			waitSent(15) // 5 out: credit for 5 more, back to 10
			for i := range 95 {
				if _, err := s.Recv(); err != nil {
					t.Fatalf("result %d: %v", i+6, err)
				}
			}
			if _, err := s.Recv(); !errors.Is(err, io.EOF) {
				t.Fatalf("end: %v", err)
			}
		})
	}
}

// A caller that stops reading holds its handler at the credit granted:
// the handler's Send blocks, nothing more is sent, and memory stays flat
// on both ends while it waits. Closing the stream then ends the blocked
// Send with the cancellation, and the handler returns.
func TestStreamStalledReaderHoldsTheHandler(t *testing.T) {
	payload := rpc.Raw(`"` + strings.Repeat("y", 64<<10) + `"`)
	for _, cd := range codecs {
		t.Run(cd.name, func(t *testing.T) {
			var sent atomic.Int64
			ended := make(chan error, 1)
			h := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
				for {
					if err := req.Stream().Send(ctx, payload); err != nil {
						ended <- err
						return nil, err
					}
					sent.Add(1)
				}
			})
			c, _ := peers(t, cd.subprotocol, []rpc.Option{rpc.WithHandler(h)}, nil)
			s, err := c.Stream(ctxT(t), "flood", nil, rpc.WithWindow(8))
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for sent.Load() < 8 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond)
			heap := func() uint64 {
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				return ms.HeapAlloc
			}
			before := heap()
			time.Sleep(300 * time.Millisecond) // a flooding handler would send 1000s meanwhile
			after := heap()
			if n := sent.Load(); n != 8 {
				t.Fatalf("%d results sent to a reader that read none, want the credit, 8", n)
			}
			if after > before+1<<20 {
				t.Fatalf("heap grew from %d to %d bytes while the handler was blocked", before, after)
			}
			select {
			case err := <-ended:
				t.Fatalf("the handler's Send returned %v before the stream was closed", err)
			default:
			}
			s.Close()
			select {
			case err := <-ended:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("blocked Send ended with %v, want context.Canceled", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the handler's blocked Send did not end once the stream was closed")
			}
		})
	}
}

// Small results let the window grow past the one the stream was opened
// with, up to what StreamWindowBytes holds.
func TestStreamWindowGrows(t *testing.T) {
	var sent atomic.Int64
	c, _ := peers(t, rpc.SubprotocolBinary, []rpc.Option{rpc.WithHandler(streamer(t, &sent, nil))}, nil)
	s, err := c.Stream(ctxT(t), "countdown", []int{3000}, rpc.WithWindow(8))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range 8 {
		if _, err := s.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for sent.Load() < 1000 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := sent.Load(); n < 1000 || n > 8+4096 {
		t.Fatalf("%d sent after 8 small results were read: want the window grown to thousands, within 4096", n)
	}
}

// Cancelling mid-stream from the caller ends the handler's ctx; the
// handler failing mid-stream ends the caller's stream with its error after
// the results it sent; a deadline mid-stream ends both.
func TestStreamCancelErrorDeadline(t *testing.T) {
	for _, cd := range codecs {
		t.Run(cd.name, func(t *testing.T) {
			ended := make(chan error, 4)
			c, _ := peers(t, cd.subprotocol, []rpc.Option{rpc.WithHandler(streamer(t, nil, ended))}, nil)

			s, err := c.Stream(ctxT(t), "wait", nil)
			if err != nil {
				t.Fatal(err)
			}
			if it, err := s.Recv(); err != nil || string(it) != `"first"` {
				t.Fatalf("first: %s, %v", it, err)
			}
			s.Close()
			select {
			case err := <-ended:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("the handler's ctx ended with %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the handler was not cancelled")
			}
			if _, err := s.Recv(); !errors.Is(err, context.Canceled) {
				t.Fatalf("Recv after Close: %v", err)
			}

			s, err = c.Stream(ctxT(t), "fail", nil)
			if err != nil {
				t.Fatal(err)
			}
			for want := 1; want <= 2; want++ {
				var got int
				if err := s.RecvValue(&got); err != nil || got != want {
					t.Fatalf("result %d: %d, %v", want, got, err)
				}
			}
			if _, err := s.Recv(); rpc.CodeOf(err) != rpc.CodeInvalidParams {
				t.Fatalf("end: %v, want the handler's error", err)
			}

			ctx, cancel := context.WithTimeout(ctxT(t), 200*time.Millisecond)
			defer cancel()
			s, err = c.Stream(ctx, "wait", nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Recv(); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Recv(); !errors.Is(err, context.DeadlineExceeded) && rpc.CodeOf(err) != rpc.CodeDeadlineExceeded {
				t.Fatalf("after the deadline: %v", err)
			}
			select {
			case err := <-ended:
				// Its own deadline (which travelled), or the caller's cancel
				// when the caller's deadline passed first.
				if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
					t.Fatalf("the handler's ctx ended with %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the handler's deadline did not pass")
			}
		})
	}
}

// A connection lost mid-stream fails the stream with CodeConnectionLost,
// saying it had not ended, after the results that arrived.
func TestStreamConnectionLost(t *testing.T) {
	for _, cd := range codecs {
		t.Run(cd.name, func(t *testing.T) {
			c, srv := peers(t, cd.subprotocol, []rpc.Option{rpc.WithHandler(streamer(t, nil, nil))}, nil)
			s, err := c.Stream(ctxT(t), "wait", nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Recv(); err != nil {
				t.Fatal(err)
			}
			srv.CloseNow()
			_, err = s.Recv()
			if rpc.CodeOf(err) != rpc.CodeConnectionLost || !contains(err.Error(), "before it ended") {
				t.Fatalf("after the connection was lost: %v", err)
			}
		})
	}
}

// All iterates the results; breaking out closes the stream.
func TestStreamAll(t *testing.T) {
	c, _ := peers(t, rpc.SubprotocolBinary, []rpc.Option{rpc.WithHandler(streamer(t, nil, nil))}, nil)
	s, err := c.Stream(ctxT(t), "countdown", []int{5})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for it, err := range s.All() {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(it))
	}
	if len(got) != 5 || got[0] != "5" || got[4] != "1" {
		t.Fatalf("All gave %v", got)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// Either side serves streams: the server peer streams from the client's
// handler.
func TestStreamServerToClient(t *testing.T) {
	_, srv := peers(t, rpc.SubprotocolBinary, nil, []rpc.Option{rpc.WithHandler(streamer(t, nil, nil))})
	s, err := srv.Stream(ctxT(t), "countdown", []int{3})
	if err != nil {
		t.Fatal(err)
	}
	for want := 3; want > 0; want-- {
		var got int
		if err := s.RecvValue(&got); err != nil || got != want {
			t.Fatalf("result %d: %d, %v", want, got, err)
		}
	}
	if _, err := s.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("end: %v", err)
	}
}

// numbered returns result i of a stream: a JSON string of size bytes that
// says which it is.
func numbered(i, size int) rpc.Raw {
	s := fmt.Sprintf(`"%08d`, i)
	return rpc.Raw(s + strings.Repeat("x", size-len(s)-1) + `"`)
}

// sizedStreamer streams results of size bytes, result i being
// numbered(i % distinct) (up to params[0] of them, or until the call
// ends), pausing for pause before each burst of them (0: never), and
// counts those sent. The results are made once: sending allocates as
// little as the stream does.
func sizedStreamer(size, distinct, burst int, pause time.Duration, sent *atomic.Int64) rpc.Handler {
	results := make([]rpc.Raw, distinct)
	for i := range results {
		results[i] = numbered(i, size)
	}
	return rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		var args []int
		_ = json.Unmarshal(req.Params, &args)
		for i := 0; len(args) == 0 || i < args[0]; i++ {
			if pause > 0 && i%burst == 0 {
				time.Sleep(pause)
			}
			if err := req.Stream().Send(ctx, results[i%distinct]); err != nil {
				return nil, err
			}
			sent.Add(1)
		}
		return []byte(`null`), nil
	})
}

// Results read with Recv are the reader's to keep, and results decoded
// with RecvValue are right, while the buffers they arrived in (packed
// messages of many results) are reused for later ones: every result kept
// still holds what was sent, on both codecs.
func TestStreamResultsSurviveBufferReuse(t *testing.T) {
	for _, sp := range []string{rpc.SubprotocolBinary, rpc.SubprotocolJSON} {
		t.Run(sp, func(t *testing.T) {
			const n, size = 3000, 1000
			var sent atomic.Int64
			c, _ := peers(t, sp, []rpc.Option{rpc.WithHandler(sizedStreamer(size, n, 0, 0, &sent))}, nil)
			s, err := c.Stream(ctxT(t), "numbers", []int{n})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			kept := map[int]rpc.Raw{}
			var into rpc.Raw
			for i := range n {
				var got rpc.Raw
				if i%3 == 0 {
					if err := s.RecvValue(&into); err != nil {
						t.Fatalf("result %d: %v", i, err)
					}
					got = into
				} else {
					r, err := s.Recv()
					if err != nil {
						t.Fatalf("result %d: %v", i, err)
					}
					got, kept[i] = r, r
				}
				if want := numbered(i, size); string(got) != string(want) {
					t.Fatalf("result %d: %.20s…, want %.20s…", i, got, want)
				}
			}
			if _, err := s.Recv(); !errors.Is(err, io.EOF) {
				t.Fatalf("after %d results: %v, want io.EOF", n, err)
			}
			for i, r := range kept {
				if want := numbered(i, size); string(r) != string(want) {
					t.Fatalf("result %d, kept from Recv, changed to %.20s… once its buffer was reused", i, r)
				}
			}
		})
	}
}

// Reading a stream with RecvValue into a reused Raw allocates nothing per
// result: the received buffers go back to the transport to be read into
// again. (Counted over both ends: the sender's handful of bytes a result is
// the only allocation left, against a result's size with Recv.)
func TestStreamRecvValueReusesBuffers(t *testing.T) {
	if raceEnabled {
		t.Skip("under the race detector sync.Pool drops what is put back at random: run without -race to measure buffer reuse")
	}
	const n, size = 4000, 4096
	perResult := func(recvValue bool) float64 {
		var sent atomic.Int64
		c, _ := peers(t, rpc.SubprotocolBinary, []rpc.Option{rpc.WithHandler(sizedStreamer(size, 16, 0, 0, &sent))}, nil)
		s, err := c.Stream(ctxT(t), "numbers", []int{2 * n})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var into rpc.Raw
		recv := func() {
			if recvValue {
				err = s.RecvValue(&into)
			} else {
				_, err = s.Recv()
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		for range n { // warm the pools up
			recv()
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range n {
			recv()
		}
		runtime.ReadMemStats(&after)
		return float64(after.TotalAlloc-before.TotalAlloc) / n
	}
	withValue, withRecv := perResult(true), perResult(false)
	t.Logf("bytes allocated a %d-byte result: RecvValue %.0f, Recv %.0f", size, withValue, withRecv)
	if withValue > size/4 {
		t.Errorf("RecvValue into a reused Raw: %.0f bytes allocated a result of %d", withValue, size)
	}
	if withRecv < size {
		t.Errorf("Recv: %.0f bytes allocated a result of %d, want a copy of each (the test measures nothing)", withRecv, size)
	}
}

// A reader that keeps up lets the window grow past StreamWindowBytes, up
// to MaxStreamWindowBytes and no further: once it stops reading, the
// handler has sent at most that many bytes of results ahead.
func TestStreamWindowGrowsForAReaderThatKeepsUp(t *testing.T) {
	const size = 4096
	var sent atomic.Int64
	// Pauses of the handler make the reader wait, again and again.
	c, _ := peers(t, rpc.SubprotocolBinary, []rpc.Option{rpc.WithHandler(sizedStreamer(size, 16, 500, 20*time.Millisecond, &sent))}, nil)
	s, err := c.Stream(ctxT(t), "numbers", nil, rpc.WithWindow(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var into rpc.Raw
	const read = 3100
	for range read {
		if err := s.RecvValue(&into); err != nil {
			t.Fatal(err)
		}
	}
	// Stopped reading: the handler sends what its credit allows (pausing
	// for 20 ms every 500), then waits for more, for good.
	ahead := int64(-1)
	for range 100 {
		time.Sleep(60 * time.Millisecond)
		a := sent.Load() - read
		if a == ahead {
			break
		}
		ahead = a
	}
	initial, most := int64(rpc.StreamWindowBytes/(size+2)), int64(rpc.MaxStreamWindowBytes/size)
	t.Logf("%d results sent ahead of the reader (initial window %d, at most %d)", ahead, initial, most)
	if ahead <= initial {
		t.Errorf("%d results sent ahead: the window did not grow past its initial %d", ahead, initial)
	}
	if ahead > most+1 {
		t.Errorf("%d results sent ahead: more than MaxStreamWindowBytes holds (%d)", ahead, most)
	}
}
