package transport

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"
)

// OfferNow on an idle connection writes the message on the caller's
// goroutine: no writer goroutine starts, nothing stays queued.
func TestOfferWritesAtOnceWhenIdle(t *testing.T) {
	client, server := loopbackPair(t)
	for i, size := range []int{0, 1, 125, 126, 65535 >> 2, maxOfferNow} {
		m := bytes.Repeat([]byte{byte('a' + i)}, size)
		if err := server.OfferNow(Message{Type: Binary, Data: m}, 0, StatusPolicyViolation, "slow"); err != nil {
			t.Fatal(err)
		}
		server.qmu.Lock()
		writing, queued := server.writing, len(server.queue)
		server.qmu.Unlock()
		if writing || queued != 0 {
			t.Fatalf("%d bytes: a writer started (%v) or %d messages queued", size, writing, queued)
		}
		select {
		case got := <-client.Recv():
			if !bytes.Equal(got.Data, m) || got.Type != Binary {
				t.Fatalf("%d bytes: got %d bytes of type %v", size, len(got.Data), got.Type)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%d bytes: nothing came", size)
		}
	}
	if got := server.Stats().MessagesOut; got != 6 {
		t.Fatalf("Stats: %d messages sent, want 6", got)
	}
}

// A frame the socket takes only in part (the peer stopped reading) is
// finished before anything else goes out: the peer, reading again, gets
// every message whole and in order.
func TestOfferCutFrameIsFinishedFirst(t *testing.T) {
	const size = 12345 // odd: the socket is unlikely to fill at a frame's end
	for attempt := 0; ; attempt++ {
		client, server := loopbackPair(t)
		// The client's reader fills Recv and stops reading; the socket
		// buffers fill behind it. Offer until a frame went out in part,
		// then a few more, which must queue behind its rest.
		sent, after := 0, -1
		for sent < 3000 && after < 20 {
			m := make([]byte, size)
			binary.BigEndian.PutUint32(m, uint32(sent))
			if err := server.OfferNow(Message{Type: Binary, Data: m}, 0, StatusPolicyViolation, "slow"); err != nil {
				t.Fatalf("Offer %d: %v", sent, err)
			}
			sent++
			if after >= 0 {
				after++
			} else if server.offerCuts.Load() > 0 {
				after = 0
			}
		}
		if server.offerCuts.Load() == 0 {
			if attempt < 5 {
				continue // every frame fitted or none did: try again
			}
			t.Fatalf("no frame was written in part in %d attempts", attempt+1)
		}
		for i := range sent {
			select {
			case got, ok := <-client.Recv():
				if !ok {
					t.Fatalf("message %d: the connection ended: %v", i, client.Err())
				}
				if len(got.Data) != size || binary.BigEndian.Uint32(got.Data) != uint32(i) {
					t.Fatalf("message %d: %d bytes, number %d", i, len(got.Data), binary.BigEndian.Uint32(got.Data))
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("message %d of %d did not come", i, sent)
			}
		}
		t.Logf("%d messages, %d cut, attempt %d", sent, server.offerCuts.Load(), attempt+1)
		return
	}
}
