package transport

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// recvFrames reads n messages packed by joinPacker (or alone) from c and
// returns the frames as they came and the messages in them, in order.
func recvFrames(t *testing.T, c *Conn, n int) (frames, msgs []string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for len(msgs) < n {
		select {
		case m, ok := <-c.Recv():
			if !ok {
				t.Fatalf("connection ended after %d of %d messages: %v", len(msgs), n, c.Err())
			}
			frames = append(frames, string(m.Data))
			if d := m.Data; bytes.HasPrefix(d, []byte("[")) {
				for _, p := range bytes.Split(d[1:len(d)-1], []byte("|")) {
					msgs = append(msgs, string(p))
				}
			} else {
				msgs = append(msgs, string(d))
			}
		case <-deadline:
			t.Fatalf("got %d of %d messages: %q", len(msgs), n, msgs)
		}
	}
	return frames, msgs
}

// Messages sent with SendPacked while the writer is busy are gathered into
// one buffer and leave as packed messages, in order and within the pack
// bounds; a message sent otherwise in between closes the pack, so that it
// keeps its place; one gathered alone leaves as itself.
func TestSendPackedGathersWhileTheWriterIsBusy(t *testing.T) {
	client, server := loopbackPair(t)
	ctx := context.Background()
	var want []string
	send := func(s string) {
		t.Helper()
		head, body := s[:1], s[1:] // in two parts, as a stream result is
		if err := server.SendPacked(ctx, Text, joinPacker{}, []byte(head), []byte(body), nil); err != nil {
			server.wmu.Unlock()
			t.Fatal(err)
		}
		want = append(want, s)
	}
	server.wmu.Lock() // hold the writer so that everything below queues up
	send("a0")        // nothing queued: a message of its own
	for i := 1; i < 2*MaxPack+10; i++ {
		send(fmt.Sprintf("a%d", i)) // gathered: 64 at most a pack
	}
	if err := server.Send(ctx, Message{Type: Text, Data: []byte("plain")}); err != nil {
		server.wmu.Unlock()
		t.Fatal(err)
	}
	want = append(want, "plain")
	send("c0")                                                // gathered alone: leaves as itself
	server.Send(ctx, Message{Type: Text, Data: []byte("p2")}) //nolint:errcheck // checked by what arrives
	want = append(want, "p2")
	big := strings.Repeat("x", 6000)
	for i := range 12 { // 72 KB: more than MaxPackBytes, so several packs
		send(fmt.Sprintf("b%d%s", i, big))
	}
	if q := server.QueuedBytes(); q == 0 {
		server.wmu.Unlock()
		t.Fatal("nothing counted as queued")
	}
	server.wmu.Unlock()

	frames, got := recvFrames(t, client, len(want))
	for i := range want {
		if i >= len(got) || got[i] != want[i] {
			t.Fatalf("message %d of %d: got %.20q, want %.20q (out of order or changed)", i, len(want), got[min(i, len(got)-1)], want[i])
		}
	}
	// a0 | a1..a64 | a65..a137 (64, then 9) | plain | c0 | p2 | the b's in packs of at most 32 KiB.
	var packs, bigPacks int
	for _, f := range frames {
		if !strings.HasPrefix(f, "[") {
			continue
		}
		packs++
		if len(f) > MaxPackBytes {
			t.Fatalf("a packed message of %d bytes, more than MaxPackBytes", len(f))
		}
		if strings.Contains(f, big) {
			bigPacks++
		}
	}
	if packs < 4 || bigPacks < 2 {
		t.Fatalf("%d packed messages (%d of the large ones) in %d frames: not gathered as expected", packs, bigPacks, len(frames))
	}
	for _, alone := range []string{"a0", "plain", "c0", "p2"} {
		found := false
		for _, f := range frames {
			found = found || f == alone
		}
		if !found {
			t.Errorf("%q did not leave as a message of its own", alone)
		}
	}
	waitFor(t, func() bool { return server.QueuedBytes() == 0 }, "the queue's bytes to go back to 0")
}

// A pack still queued when the connection ends is dropped and its bytes
// taken out of the queue's count; SendPacked then fails.
func TestSendPackedDroppedWhenTheConnectionEnds(t *testing.T) {
	_, server := loopbackPair(t)
	ctx := context.Background()
	server.wmu.Lock()
	for i := range 10 {
		if err := server.SendPacked(ctx, Binary, joinPacker{}, []byte{'h'}, []byte(fmt.Sprint(i)), nil); err != nil {
			server.wmu.Unlock()
			t.Fatal(err)
		}
	}
	server.discard.Store(true) // as a slow reader's end does: drop, do not flush
	server.wmu.Unlock()
	server.CloseNow()
	<-server.Done()
	waitFor(t, func() bool { return server.QueuedBytes() == 0 }, "the dropped pack's bytes to be counted out")
	if err := server.SendPacked(ctx, Binary, joinPacker{}, []byte{'h'}, []byte("late"), nil); err == nil {
		t.Fatal("SendPacked on an ended connection: no error")
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Senders on many goroutines, each with its own mix of Send, Push, Offer
// and SendPacked and pauses that let the writer wait between bursts: every
// message arrives, each sender's in order. A wake-up lost between a
// message queued and the writer taking the queue would leave the last
// messages unwritten: the writer's idle timer, which would otherwise
// write them a second later, is set to an hour here, so the test would
// time out waiting for them.
func TestConcurrentSendersAreAllWritten(t *testing.T) {
	old := writerIdle
	writerIdle = time.Hour
	t.Cleanup(func() { writerIdle = old })
	client, server := loopbackPair(t)
	const senders, each = 8, 1500
	ctx := context.Background()
	errs := make(chan error, senders)
	for g := range senders {
		go func() {
			for i := range each {
				data := fmt.Appendf(nil, "%d.%d", g, i)
				var err error
				switch (g + i) % 4 {
				case 0:
					err = server.Send(ctx, Message{Type: Text, Data: data})
				case 1:
					err = server.Push(ctx, Message{Type: Text, Data: data})
				case 2:
					err = server.Offer(Message{Type: Text, Data: data, Pack: joinPacker{}}, 0, StatusPolicyViolation, "slow")
				default:
					err = server.SendPacked(ctx, Text, joinPacker{}, data[:1], data[1:2], data[2:])
				}
				if err != nil {
					errs <- err
					return
				}
				if i%100 == 99 {
					time.Sleep(200 * time.Microsecond) // the writer waits for the next burst
				}
			}
			errs <- nil
		}()
	}
	got := make(chan []string, 1)
	go func() { // owned: the test waits for it below (it ends with the client)
		var msgs []string
		for m := range client.Recv() {
			if d := m.Data; bytes.HasPrefix(d, []byte("[")) {
				for _, p := range bytes.Split(d[1:len(d)-1], []byte("|")) {
					msgs = append(msgs, string(p))
				}
			} else {
				msgs = append(msgs, string(d))
			}
			if len(msgs) >= senders*each {
				break
			}
		}
		got <- msgs
	}()
	deadline := time.After(20 * time.Second)
	for range senders {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
		case <-deadline:
			client.CloseNow() // ends the receiver
			<-got
			t.Fatal("senders still blocked: the writer stopped writing")
		}
	}
	var msgs []string
	select {
	case msgs = <-got:
	case <-time.After(20 * time.Second):
		client.CloseNow()
		<-got
		t.Fatal("not every message arrived: the writer stopped writing")
	}
	if len(msgs) != senders*each {
		t.Fatalf("%d of %d messages arrived", len(msgs), senders*each)
	}
	next := make([]int, senders)
	for _, m := range msgs {
		var g, i int
		if _, err := fmt.Sscanf(m, "%d.%d", &g, &i); err != nil || g < 0 || g >= senders {
			t.Fatalf("message %q", m)
		}
		if i != next[g] {
			t.Fatalf("sender %d: message %d after %d", g, i, next[g]-1)
		}
		next[g]++
	}
}
