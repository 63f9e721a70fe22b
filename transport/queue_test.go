package transport_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/wstest"
	"github.com/wsrpc/wsrpc/transport"
)

// These tests check the bounds that keep a peer from pinning memory: the
// bytes queued for a peer that does not read (MaxQueuedBytes), and the time
// a peer may take to finish a message it has started (MessageTimeout).

const queueBound = 256 << 10

// fillUntil sends 64 KiB messages with send until it fails or until the
// peer, which never reads, has been offered limit bytes; it returns the
// error and checks that the queue never held more than the bound plus one
// message.
func fillUntil(t *testing.T, c *transport.Conn, limit int, send func(transport.Message) error) error {
	t.Helper()
	msg := transport.Message{Type: transport.Binary, Data: make([]byte, 64<<10)}
	for sent := 0; sent < limit; sent += len(msg.Data) {
		if q := c.QueuedBytes(); q > queueBound+int64(len(msg.Data)) {
			t.Fatalf("%d bytes queued, bound %d", q, queueBound)
		}
		if err := send(msg); err != nil {
			return err
		}
	}
	return nil
}

func TestPushEndsSlowReader(t *testing.T) {
	c, p := openAccepted(t, transport.ConnOptions{MaxQueuedBytes: queueBound, HeartbeatInterval: -1, WriteTimeout: -1})
	_ = p // never reads
	// Loopback socket buffers take a few MiB before the queue grows; 256 MiB
	// is far beyond them.
	err := fillUntil(t, c, 256<<20, func(m transport.Message) error { return c.Push(context.Background(), m) })
	if !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Push to a peer that never reads: %v, want ErrClosed once the queue is full", err)
	}
	cerr := waitEnd(t, c, 10*time.Second)
	ce := closeErr(t, cerr)
	if ce.Code != transport.StatusPolicyViolation || ce.Remote || !errors.Is(cerr, transport.ErrSlowReader) {
		t.Errorf("Err = %v (code %d, remote %v), want a local 1008 wrapping ErrSlowReader", cerr, ce.Code, ce.Remote)
	}
	c.CloseNow() // waits for the writer, which drops the queue
	if q := c.QueuedBytes(); q != 0 {
		t.Errorf("%d bytes still counted as queued after the end, want 0 (the queue is dropped)", q)
	}
}

func TestSendWaitsForRoom(t *testing.T) {
	c, _ := openAccepted(t, transport.ConnOptions{MaxQueuedBytes: queueBound, HeartbeatInterval: -1, WriteTimeout: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := fillUntil(t, c, 256<<20, func(m transport.Message) error { return c.Send(ctx, m) })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send to a peer that never reads: %v, want it to wait for room until ctx ends", err)
	}
	if c.Err() != nil {
		t.Fatalf("the connection ended (%v); a Send that waits must not end it", c.Err())
	}
	if c.TrySend(transport.Message{Type: transport.Binary, Data: make([]byte, queueBound)}) {
		t.Error("TrySend queued a message past the bound")
	}
	// A message sent from a goroutine that waits for room goes out once the
	// peer reads: CloseNow ends the wait with ErrClosed.
	done := make(chan error, 1)
	go func() {
		done <- c.Send(context.Background(), transport.Message{Type: transport.Binary, Data: make([]byte, 64<<10)})
	}()
	select {
	case err := <-done:
		t.Fatalf("Send returned %v while the queue was full", err)
	case <-time.After(50 * time.Millisecond): // it is waiting, as it should
	}
	c.CloseNow()
	if err := <-done; !errors.Is(err, transport.ErrClosed) {
		t.Errorf("waiting Send after CloseNow: %v, want ErrClosed", err)
	}
}

func TestMessageTimeout(t *testing.T) {
	starts := []struct {
		name string
		give func(p *wstest.Peer) []byte
	}{
		// The first fragment of a message that is never finished, then a
		// ping, which the transport answers: the peer is alive, the message
		// is not.
		{"first fragment only", func(p *wstest.Peer) []byte {
			return frames(p, text(false, "never finished "), wstest.Frame{Fin: true, Opcode: wstest.OpPing, Payload: []byte("hi")})
		}},
		// A frame header announcing a payload that never comes.
		{"header only", func(p *wstest.Peer) []byte { return header(p, true, wstest.OpBinary, 300) }},
	}
	for _, st := range starts {
		t.Run(st.name, func(t *testing.T) { testMessageTimeout(t, st.give) })
	}
}

func testMessageTimeout(t *testing.T, give func(p *wstest.Peer) []byte) {
	for _, e := range ends {
		t.Run(e.name, func(t *testing.T) {
			c, p := e.open(t, transport.ConnOptions{MessageTimeout: 200 * time.Millisecond, HeartbeatInterval: -1})
			write(t, p, give(p))
			start := time.Now()
			// Within closeGrace (1 s) of the timeout.
			err := waitEnd(t, c, 2*time.Second)
			if d := time.Since(start); d < 150*time.Millisecond {
				t.Errorf("ended after %s, before the message timeout", d)
			}
			ce := closeErr(t, err)
			if ce.Code != transport.StatusPolicyViolation || !errors.Is(err, transport.ErrMessageTimeout) {
				t.Errorf("Err = %v (code %d), want 1008 wrapping ErrMessageTimeout", err, ce.Code)
			}
			for {
				f, err := p.ReadFrame()
				if err != nil {
					t.Fatalf("raw peer: no close frame: %v", err)
				}
				if f.Opcode == wstest.OpClose {
					if len(f.Payload) < 2 || int(f.Payload[0])<<8|int(f.Payload[1]) != int(transport.StatusPolicyViolation) {
						t.Errorf("close frame %q, want 1008", f.Payload)
					}
					break
				}
			}
			noMessage(t, c)
		})
	}
}

func TestMessageTimeoutLeavesSlowButFinishedMessages(t *testing.T) {
	c, p := openAccepted(t, transport.ConnOptions{MessageTimeout: 2 * time.Second, HeartbeatInterval: -1})
	// A message in three fragments with pauses, well within the timeout,
	// and then another, to check that the clock restarts per message.
	for range 2 {
		write(t, p, frames(p, text(false, "a")))
		time.Sleep(20 * time.Millisecond) // the pause under test
		write(t, p, frames(p, cont(false, "b")))
		time.Sleep(20 * time.Millisecond)
		write(t, p, frames(p, cont(true, "c")))
		if m := recv(t, c); string(m.Data) != "abc" {
			t.Fatalf("got %q, want abc", m.Data)
		}
	}
}

// TestPushSmallMessagesNeverWait: pushes of small messages to a peer that
// does not read never wait, whatever their number; the byte bound ends the
// connection.
func TestPushSmallMessagesNeverWait(t *testing.T) {
	c, _ := openAccepted(t, transport.ConnOptions{MaxQueuedBytes: queueBound, HeartbeatInterval: -1, WriteTimeout: -1})
	msg := transport.Message{Type: transport.Binary, Data: make([]byte, 1<<10)}
	deadline := time.Now().Add(10 * time.Second)
	var err error
	for err == nil {
		if time.Now().After(deadline) {
			t.Fatal("10 s of pushes to a peer that never reads, and the connection is still open")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = c.PushQueued(ctx, msg)
		cancel()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("PushQueued waited for the peer")
	}
	if werr := waitEnd(t, c, 5*time.Second); !errors.Is(werr, transport.ErrSlowReader) {
		t.Fatalf("Err = %v, want ErrSlowReader", werr)
	}
}

// TestSendLeavesRoomForPush: a sender held back by the bound does not make
// the pushes (replies) of a peer that reads look like a slow reader's.
func TestSendLeavesRoomForPush(t *testing.T) {
	c, p := openAccepted(t, transport.ConnOptions{MaxQueuedBytes: queueBound, HeartbeatInterval: -1})
	p.SetDeadline(time.Now().Add(20 * time.Second))
	read := make(chan error, 1)
	go func() { // the peer reads everything, but slowly
		for {
			f, err := p.ReadFrame()
			if err != nil || f.Opcode == wstest.OpClose {
				read <- err
				return
			}
			time.Sleep(50 * time.Microsecond) // a slow consumer, on purpose
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	sent := make(chan struct{})
	go func() { // fills Send's share of the queue for a second
		defer close(sent)
		for ctx.Err() == nil {
			c.Send(ctx, transport.Message{Type: transport.Binary, Data: make([]byte, 64<<10)})
		}
	}()
	small := transport.Message{Type: transport.Binary, Data: make([]byte, 100)}
	for ctx.Err() == nil {
		if err := c.Push(context.Background(), small); err != nil {
			t.Fatalf("Push while the peer reads and Send is held back: %v (Err %v)", err, c.Err())
		}
		time.Sleep(time.Millisecond)
	}
	<-sent
	c.CloseNow()
	<-read
}
