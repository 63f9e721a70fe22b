package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
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

// After a close frame went out (coder/websocket answering the peer's), a
// frame is never written at once behind it.
func TestNothingWrittenAtOnceAfterClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c := newCorkConn(nc)
	c.follow = true
	defer c.Close()
	if !c.canTryWrite() {
		t.Skip("no non-blocking writes on this platform")
	}
	frame := appendFrameHeader(nil, Text, 2)
	frame = append(frame, "hi"...)
	if res, err := c.tryWrite(frame); res != wroteAll || err != nil {
		t.Fatalf("before the close: %d, %v", res, err)
	}
	closeFrame := []byte{0x88, 0x02, 0x03, 0xe8} // 1000
	if _, err := c.Write(closeFrame); err != nil {
		t.Fatal(err)
	}
	if res, err := c.tryWrite(frame); res != wroteNone || err != nil {
		t.Fatalf("after the close: %d, %v", res, err)
	}
	want := append(append([]byte{}, frame...), closeFrame...)
	got := make([]byte, len(want)+1)
	peer.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	n, _ := io.ReadAtLeast(peer, got, len(want))
	if !bytes.Equal(got[:n], want) {
		t.Fatalf("the peer read % x, want % x", got[:n], want)
	}
	// Frames followed as written, in writes cut anywhere: a close frame
	// is told where it begins, and only there.
	data := append(appendFrameHeader(nil, Binary, 300), make([]byte, 300)...)
	data[100], data[101] = 0x88, 0x02 // looks like a close frame
	stream := append(append(append([]byte{}, data...), frame...), closeFrame...)
	for _, cut := range [][]int{{len(stream)}, {1, 2, 3}, {104, 105}, {len(data) + 1}, {len(data) + len(frame) + 1}} {
		f := &corkConn{follow: true}
		prev, closed := 0, -1
		for _, at := range append(cut, len(stream)) {
			f.followFrames(stream[prev:at])
			if f.closeSent && closed < 0 {
				closed = at
			}
			prev = at
		}
		if closed <= len(data)+len(frame) || !f.betweenFrames() {
			t.Errorf("writes cut at %v: close seen after byte %d (of %d), between frames %v", cut, closed, len(stream), f.betweenFrames())
		}
	}
}

// A data message whose last write to the socket looks like a close frame
// (coder/websocket writes a frame's tail apart from its start when it
// overflows its buffer) is not taken for one: OfferNow still writes at
// once after it.
func TestDataLikeCloseFrameIsNotAClose(t *testing.T) {
	client, server := loopbackPair(t)
	// 600 bytes: a 4-byte header and 508 bytes fill the 512-byte buffer
	// and go in one write, the last 92 bytes in another.
	m := make([]byte, 600)
	m[508], m[509] = 0x88, 90
	time.Sleep(time.Millisecond) // past burstGap: Send writes directly
	if err := server.Send(context.Background(), Message{Type: Binary, Data: m}); err != nil {
		t.Fatal(err)
	}
	if got := <-client.Recv(); !bytes.Equal(got.Data, m) {
		t.Fatalf("got %d bytes", len(got.Data))
	}
	server.cork.mu.Lock()
	closeSent := server.cork.closeSent
	server.cork.mu.Unlock()
	if closeSent {
		t.Fatal("the tail of a data frame was taken for a close frame")
	}
	if err := server.OfferNow(Message{Type: Binary, Data: []byte("hi")}, 0, StatusPolicyViolation, "slow"); err != nil {
		t.Fatal(err)
	}
	if got := <-client.Recv(); string(got.Data) != "hi" {
		t.Fatalf("got %q", got.Data)
	}
}

// A close frame is never gathered while corked: it goes out at once, after
// what was gathered before it, so that the reader, which closes the socket
// as it ends, cannot cut coder/websocket's answer to the peer's close.
func TestCloseFrameIsNotCorked(t *testing.T) {
	for _, masked := range []bool{false, true} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		peer, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		nc, err := ln.Accept()
		ln.Close()
		if err != nil {
			t.Fatal(err)
		}
		c := newCorkConn(nc)
		c.followFromNow()
		data := append(appendFrameHeader(nil, Binary, 3), 'a', 'b', 'c')
		closeFrame := []byte{0x88, 0x02, 0x03, 0xe8}
		if masked {
			data = []byte{0x82, 0x83, 1, 2, 3, 4, 'a' ^ 1, 'b' ^ 2, 'c' ^ 3}
			closeFrame = []byte{0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8}
		}
		c.cork()
		if _, err := c.Write(data); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(closeFrame); err != nil {
			t.Fatal(err)
		}
		want := append(append([]byte{}, data...), closeFrame...)
		got := make([]byte, len(want))
		peer.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.ReadFull(peer, got); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("masked %v: while corked the peer read % x (%v), want % x", masked, got, err, want)
		}
		c.drop()
		c.Close()
		peer.Close()
	}
}
