package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// joinPacker packs messages as "[a|b|c]".
type joinPacker struct{}

func (joinPacker) Pack(dst []byte, msgs []Message) []byte {
	dst = append(dst, '[')
	for i, m := range msgs {
		if i > 0 {
			dst = append(dst, '|')
		}
		dst = append(dst, m.Data...)
	}
	return append(dst, ']')
}

// Messages queued together with the same Packer leave as packed messages,
// in order, within the bounds; a message without one breaks the run.
func TestQueuedMessagesArePacked(t *testing.T) {
	client, server := loopbackPair(t)
	var want []string
	server.wmu.Lock() // hold the writer so that everything below queues up
	for i := range 150 {
		m := Message{Type: Text, Data: fmt.Appendf(nil, "m%d", i), Pack: joinPacker{}}
		if i == 100 {
			m.Pack = nil // unpackable: goes alone
		}
		if err := server.Offer(m, 0, StatusPolicyViolation, "slow"); err != nil {
			server.wmu.Unlock()
			t.Fatal(err)
		}
		want = append(want, string(m.Data))
	}
	server.wmu.Unlock()
	server.wake <- struct{}{}

	var got []string
	var frames []string
	deadline := time.After(10 * time.Second)
	for len(got) < len(want) {
		select {
		case m := <-client.Recv():
			frames = append(frames, string(m.Data))
			d := m.Data
			if bytes.HasPrefix(d, []byte("[")) {
				parts := bytes.Split(d[1:len(d)-1], []byte("|"))
				if len(parts) > MaxPack {
					t.Fatalf("%d messages packed, more than MaxPack", len(parts))
				}
				for _, p := range parts {
					got = append(got, string(p))
				}
			} else {
				got = append(got, string(d))
			}
		case <-deadline:
			t.Fatalf("got %d of %d messages", len(got), len(want))
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("messages out of order or changed:\n got %v\nwant %v", got, want)
	}
	if len(frames) >= len(want)/2 {
		t.Fatalf("%d frames for %d messages: not packed", len(frames), len(want))
	}
	for _, f := range frames {
		if f == "m100" {
			return
		}
	}
	t.Fatalf("the unpackable message was packed: %q", frames)
}

// Offer past its own bound closes the connection with the code given.
func TestOfferOverItsBoundCloses(t *testing.T) {
	client, server := loopbackPair(t)
	server.wmu.Lock()
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		err = server.Offer(Message{Type: Binary, Data: make([]byte, 1000)}, 10_000, 4008, "slow subscriber")
	}
	server.wmu.Unlock()
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("Offer past the bound: %v, want ErrClosed", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	select {
	case <-client.Done():
	case <-ctx.Done():
		t.Fatal("client not closed")
	}
	var ce *CloseError
	if !errors.As(client.Err(), &ce) || ce.Code != 4008 || ce.Reason != "slow subscriber" {
		t.Fatalf("client saw %v, want 4008 slow subscriber", client.Err())
	}
	select {
	case <-server.Done():
	case <-ctx.Done():
		t.Fatal("server side not ended")
	}
	if !errors.Is(server.Err(), ErrSlowReader) {
		t.Fatalf("server Err %v, want ErrSlowReader", server.Err())
	}
}
