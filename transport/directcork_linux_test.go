package transport_test

import (
	"bufio"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/pipe"
	"github.com/wsrpc/wsrpc/transport"
)

// writeSyscalls is this process's count of write system calls so far.
func writeSyscalls(t *testing.T) int {
	t.Helper()
	return procIO(t, "syscw: ")
}

// readSyscalls is this process's count of read system calls so far.
func readSyscalls(t *testing.T) int {
	t.Helper()
	return procIO(t, "syscr: ")
}

// procIO reads one counter of /proc/self/io.
func procIO(t *testing.T, prefix string) int {
	t.Helper()
	f, err := os.Open("/proc/self/io")
	if err != nil {
		t.Skipf("no /proc/self/io to count system calls: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Skipf("/proc/self/io has no %q line", prefix)
	return 0
}

// TestLargeDirectWriteIsOneSystemCall: a message larger than
// coder/websocket's 4 KiB write buffer, written on the sender's goroutine
// (the queue is empty), leaves in one write system call, not two.
func TestLargeDirectWriteIsOneSystemCall(t *testing.T) {
	cc, sc := pipe.New(t, pipe.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg := make([]byte, 6000)
	const n = 50
	before := writeSyscalls(t)
	for range n {
		exchange(ctx, t, cc, sc, msg)
	}
	// One write each, and a little room for the runtime's own.
	if got := writeSyscalls(t) - before; got > n+n/5 {
		t.Fatalf("%d write system calls for %d messages, want about one each", got, n)
	}
}

// TestLargeMessagesAreReadInOneSystemCall: once messages have come larger
// than coder/websocket's 4 KiB read buffer, each is read with one system
// call once it has arrived (plus the one that finds the socket empty and
// waits), not one per 4 KiB and one for the rest.
func TestLargeMessagesAreReadInOneSystemCall(t *testing.T) {
	cc, sc := pipe.New(t, pipe.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg := make([]byte, 6000)
	exchange(ctx, t, cc, sc, msg) // the first one shows the reader that messages are large
	const n = 50
	before := readSyscalls(t)
	for range n {
		exchange(ctx, t, cc, sc, msg)
	}
	if got := readSyscalls(t) - before; got > 2*n+n/2 {
		t.Fatalf("%d read system calls for %d messages, want about two each (one finds nothing and waits)", got, n)
	}
}

// exchange sends msg from one end and waits for it at the other.
func exchange(ctx context.Context, t *testing.T, from, to *transport.Conn, msg []byte) {
	t.Helper()
	if err := from.Send(ctx, transport.Message{Type: transport.Binary, Data: msg}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-to.Recv():
		if len(m.Data) != len(msg) {
			t.Fatalf("got %d bytes", len(m.Data))
		}
	case <-ctx.Done():
		t.Fatal("timed out")
	}
}
