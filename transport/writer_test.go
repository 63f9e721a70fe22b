package transport_test

import (
	"context"
	"errors"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/transport"
)

// TestWriteFailureReleasesTheQueue: when the socket fails under a batch of
// more than one corked burst, every message of the batch is taken out of
// the queue's counts.
func TestWriteFailureReleasesTheQueue(t *testing.T) {
	c, _ := openAccepted(t, transport.ConnOptions{HeartbeatInterval: -1, WriteTimeout: -1})
	sock := transport.SocketOf(c)
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	// Every socket write fails from now on; writes into the cork buffer do not.
	if err := sock.SetWriteDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ { // no yield: all 200 land before the writer runs
		if err := c.PushQueued(context.Background(), transport.Message{Type: transport.Binary, Data: make([]byte, 100)}); err != nil {
			t.Fatalf("PushQueued %d: %v", i, err)
		}
	}
	runtime.GOMAXPROCS(prev)
	waitEnd(t, c, 5*time.Second)
	c.CloseNow() // waits for the writer (and its dropQueue)
	if q, n := c.QueuedBytes(), transport.PendingOf(c); q != 0 || n != 0 {
		t.Errorf("after the end: QueuedBytes = %d, pending = %d; want 0, 0 (%d messages of 164 leaked)", q, n, q/164)
	}
}

// TestWriteTimeoutPerBurst: the write timeout bounds each corked burst of
// the writer, not the whole queue it takes, so a peer that reads steadily
// is not dropped while a long queue drains.
func TestWriteTimeoutPerBurst(t *testing.T) {
	c, p := openAccepted(t, transport.ConnOptions{MaxQueuedBytes: 8 << 20, WriteTimeout: time.Second, HeartbeatInterval: -1})
	_ = p.SetDeadline(time.Now().Add(20 * time.Second))
	// A small, fixed send buffer, so that the kernel wakes a blocked write
	// every few KiB instead of every third of a multi-MiB autotuned buffer.
	if err := transport.SocketOf(c).(*net.TCPConn).SetWriteBuffer(32 << 10); err != nil {
		t.Fatal(err)
	}
	read := 0
	readerDone := make(chan struct{})
	var maxGap time.Duration
	go func() { // steady: four 4 KiB frames every 10 ms (1.6 MB/s)
		defer close(readerDone)
		last := time.Now()
		for {
			if _, err := p.ReadFrame(); err != nil {
				return
			}
			if g := time.Since(last); g > maxGap && read > 0 {
				maxGap = g
			}
			last = time.Now()
			read++
			if read%4 == 0 {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}()
	// 64 messages (one corked burst) take 0.16 s at that rate, well within
	// the write timeout; a whole queue of 3 MiB takes 2 s.
	msg := transport.Message{Type: transport.Binary, Data: make([]byte, 4<<10)}
	deadline := time.Now().Add(4 * time.Second)
	pushed := 0
	for time.Now().Before(deadline) && c.Err() == nil {
		if c.QueuedBytes() > 3<<20 {
			time.Sleep(5 * time.Millisecond) // keep well under the bound: never a slow reader
			continue
		}
		if err := c.PushQueued(context.Background(), msg); err != nil {
			break
		}
		pushed++
	}
	err := c.Err()
	c.CloseNow()
	p.Close()
	<-readerDone
	if errors.Is(err, transport.ErrWriteTimeout) {
		t.Errorf("a peer that read steadily was dropped as a write timeout (pushed %d, read %d frames, longest gap %v)", pushed, read, maxGap)
	}
}
