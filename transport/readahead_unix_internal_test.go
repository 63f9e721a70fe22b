//go:build unix

package transport

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// After any message, a connection waiting for the next one holds no
// read-ahead buffer, whatever the size of the message before.
func TestIdleConnectionHoldsNoReadAhead(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client, server := loopbackPair(t)
	if server.cork == nil || client.cork == nil || server.cork.now == nil || client.cork.now == nil {
		t.Fatal("loopback connections should read ahead")
	}

	for _, n := range []int{1, 1000, 4096, 4096 + 12, 9000, 20000, 32768, 36000, 36864, 40000, 60000, 70000, 100000, 300000, 1<<20 - 100} {
		for _, burst := range []int{1, 3} {
			msg := bytes.Repeat([]byte{byte(n)}, n)
			for range burst {
				if err := client.Send(ctx, Message{Type: Binary, Data: msg}); err != nil {
					t.Fatal(err)
				}
			}
			for range burst {
				select {
				case m := <-server.Recv():
					if !bytes.Equal(m.Data, msg) {
						t.Fatalf("%d bytes: message corrupted", n)
					}
				case <-ctx.Done():
					t.Fatal("timed out")
				}
			}
			// The reader has gone back to waiting: give it a moment to
			// start its next read, then count.
			held := func() int32 { return server.cork.held.Load() + client.cork.held.Load() }
			deadline := time.Now().Add(2 * time.Second)
			for held() != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("after %d × %d bytes, %d read-ahead buffers still held by an idle connection", burst, n, held())
				}
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(20 * time.Millisecond)
			if h := held(); h != 0 {
				t.Fatalf("after %d × %d bytes, an idle connection holds %d read-ahead buffers", burst, n, h)
			}
		}
	}
}
