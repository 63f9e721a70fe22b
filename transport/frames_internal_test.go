package transport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/coder/websocket"
)

// Sizes around every boundary of the frame header and of what is written
// and read here rather than by coder/websocket.
var ownFrameSizes = []int{0, 1, 125, 126, 127, 1000, 4095, 4096, 65535, 65536, maxOwnFrame, maxOwnFrame + 1, 200_000}

func sizedMessage(i, n int) (MessageType, []byte) {
	b := make([]byte, n)
	for j := range b {
		b[j] = 'a' + byte((i+j)%26)
	}
	if i%2 == 0 {
		return Text, b
	}
	return Binary, b
}

// exchangeWithPlain sends every size each way between ours and plain,
// a bare coder/websocket connection at the other end, pinging from plain
// between messages so that control frames come amid the data frames.
func exchangeWithPlain(t *testing.T, ours *Conn, plain *websocket.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	plain.SetReadLimit(1 << 20)
	// Ours sends; plain reads.
	for i, n := range ownFrameSizes {
		typ, b := sizedMessage(i, n)
		if err := ours.Send(ctx, Message{Type: typ, Data: b}); err != nil {
			t.Fatalf("send %d bytes: %v", n, err)
		}
		gt, got, err := plain.Read(ctx)
		if err != nil {
			t.Fatalf("plain read of %d bytes: %v", n, err)
		}
		if MessageType(gt) != typ || !bytes.Equal(got, b) {
			t.Fatalf("plain read %v of %d bytes, want %v of %d (equal %v)", gt, len(got), typ, n, bytes.Equal(got, b))
		}
	}
	if ours.ownWritten.Load() == 0 {
		t.Error("no frame was written by the corkConn")
	}
	// Plain sends, with a ping (which ours must answer) after every third
	// message: the reads that follow a ping are coder/websocket's, until
	// the next message that arrives alone.
	readErr := make(chan error, 1)
	go func() { // plain.Ping waits for the pong, which only a Reader of plain's reads
		_, _, err := plain.Reader(ctx)
		readErr <- err
	}()
	for i, n := range ownFrameSizes {
		typ, b := sizedMessage(i+1, n)
		if err := plain.Write(ctx, websocket.MessageType(typ), b); err != nil {
			t.Fatalf("plain write of %d bytes: %v", n, err)
		}
		if i%3 == 2 {
			if err := plain.Ping(ctx); err != nil {
				t.Fatalf("ping after %d bytes: %v", n, err)
			}
		}
		expectMessage(ctx, t, ours, typ, b)
	}
	if ours.ownRead.Load() == 0 {
		t.Error("no message was read by the corkConn")
	}
	plain.CloseNow()
	if err := <-readErr; err == nil {
		t.Error("plain's reader got a message")
	}
}

// expectMessage fails t unless ours delivers a message of type typ
// holding b before ctx ends.
func expectMessage(ctx context.Context, t *testing.T, ours *Conn, typ MessageType, b []byte) {
	t.Helper()
	select {
	case m := <-ours.Recv():
		if m.Type != typ || !bytes.Equal(m.Data, b) {
			t.Fatalf("read %v of %d bytes, want %v of %d", m.Type, len(m.Data), typ, len(b))
		}
	case <-ctx.Done():
		t.Fatalf("nothing read of %d bytes: %v", len(b), ours.Err())
	}
}

// plainServer accepts one bare coder/websocket connection.
func plainServer(t *testing.T) (url string, conns <-chan *websocket.Conn) {
	t.Helper()
	ch := make(chan *websocket.Conn, 1)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			close(ch)
			return
		}
		ch <- c
	}))
	t.Cleanup(s.Close)
	return "ws" + strings.TrimPrefix(s.URL, "http"), ch
}

// Frames written and read by the corkConn are what a bare coder/websocket
// peer writes and reads, at every size, both ways, from either end.
func TestOwnFramesWithPlainPeer(t *testing.T) {
	withPlainPeer(t, 1<<20, exchangeWithPlain)
}

// withPlainPeer runs f with ours at either end (accepted, then dialed) of
// a connection to a bare coder/websocket peer, plain; ours reads up to
// limit bytes, and writes and reads frames itself.
func withPlainPeer(t *testing.T, limit int64, f func(t *testing.T, ours *Conn, plain *websocket.Conn)) {
	t.Run("ours accepted", func(t *testing.T) {
		url, ch := acceptingServer(t, &AcceptOptions{ConnOptions: ConnOptions{ReadLimit: limit}})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		plain, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer plain.CloseNow()
		ours := <-ch
		if ours == nil {
			t.Fatal("accept failed")
		}
		defer ours.CloseNow()
		if !ours.ownFrames || !ours.ownReads {
			t.Fatalf("ownFrames %v, ownReads %v on an accepted plain TCP connection", ours.ownFrames, ours.ownReads)
		}
		f(t, ours, plain)
	})
	t.Run("ours dialed", func(t *testing.T) {
		url, conns := plainServer(t)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ours, err := Dial(ctx, url, &DialOptions{ConnOptions: ConnOptions{ReadLimit: limit}})
		if err != nil {
			t.Fatal(err)
		}
		defer ours.CloseNow()
		plain := <-conns
		if plain == nil {
			t.Fatal("accept failed")
		}
		defer plain.CloseNow()
		if !ours.ownFrames || !ours.ownReads || ours.mask == nil {
			t.Fatalf("ownFrames %v, ownReads %v, masking %v on a dialed plain TCP connection", ours.ownFrames, ours.ownReads, ours.mask != nil)
		}
		f(t, ours, plain)
	})
}

func TestMaskBytes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 200 {
		key := r.Uint32()
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		want := bytes.Clone(b)
		var k [4]byte
		binary.LittleEndian.PutUint32(k[:], key)
		for i := range want {
			want[i] ^= k[i%4]
		}
		maskBytes(b, key)
		if !bytes.Equal(b, want) {
			t.Fatalf("%d bytes, key %08x: got % x, want % x", n, key, b, want)
		}
	}
}

func TestMaskingKeysDiffer(t *testing.T) {
	a, b := newMasker(), newMasker()
	seen := map[uint32]bool{}
	for range 64 {
		seen[a.key()] = true
		seen[b.key()] = true
	}
	if len(seen) < 120 { // 128 draws of 32 bits: a repeat is very unlikely, many are a broken generator
		t.Fatalf("%d distinct keys in 128", len(seen))
	}
}

// appendTestFrame appends a frame with the given first byte, masked or
// not, in the shortest length encoding or the one asked for (long: 2 or 8
// bytes even for a short payload, which RFC 6455 forbids but a peer may send).
func appendTestFrame(b []byte, first byte, payload []byte, masked bool, long int) []byte {
	b = append(b, first)
	mbit := byte(0)
	if masked {
		mbit = 0x80
	}
	n := len(payload)
	switch {
	case long == 8 || n > 0xffff:
		b = binary.BigEndian.AppendUint64(append(b, mbit|127), uint64(n))
	case long == 2 || n >= 126:
		b = binary.BigEndian.AppendUint16(append(b, mbit|126), uint16(n))
	default:
		b = append(b, mbit|byte(n))
	}
	if !masked {
		return append(b, payload...)
	}
	key := [4]byte{0x11, 0x22, 0x33, 0x44}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// What is handed to coder/websocket through Read never passes the end of
// a frame, however the bytes come in, and the frames are followed to the
// end of the stream.
func TestFramedReadsStopAtFrameEnds(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for round := range 200 {
		var stream []byte
		var ends []int
		for range 1 + r.IntN(8) {
			n := []int{0, 1, 125, 126, 300, 70000}[r.IntN(6)]
			first := []byte{0x81, 0x82, 0x02, 0x80, 0x89, 0x8a, 0x88}[r.IntN(7)]
			stream = appendTestFrame(stream, first, make([]byte, n), r.IntN(2) == 0, []int{0, 0, 2, 8}[r.IntN(4)])
			ends = append(ends, len(stream))
		}
		var f frameFollower
		pos := 0
		for pos < len(stream) {
			avail := stream[pos:min(len(stream), pos+1+r.IntN(5000))] // what one socket read brought
			for len(avail) > 0 {
				want := 1 + r.IntN(5000) // what the reader asked for
				n := min(want, f.limit(avail))
				if n <= 0 {
					t.Fatalf("round %d: limit %d with %d bytes available", round, n, len(avail))
				}
				for _, e := range ends {
					if pos < e && pos+n > e {
						t.Fatalf("round %d: handed out %d..%d, past the frame end at %d", round, pos, pos+n, e)
					}
				}
				f.follow(avail[:n])
				avail = avail[n:]
				pos += n
			}
		}
		if !f.between() {
			t.Fatalf("round %d: not between frames at the end", round)
		}
	}
}

// streamConn is a net.Conn whose reads come from r, in pieces of at most
// step bytes; only Read is used.
type streamConn struct {
	net.Conn
	r    io.Reader
	step int
}

func (s *streamConn) Read(p []byte) (int, error) {
	return s.r.Read(p[:min(len(p), s.step)])
}

// FuzzNextMessage feeds arbitrary bytes, as read from the network, to
// the reader of whole frames, cut anywhere: the first split bytes were
// read ahead, the rest arrives in pieces of step bytes. It takes a message
// only when it is one final, well-formed data frame for this end within
// the limit, whose header was read ahead, and then exactly that frame's
// bytes (a stream that ends inside it is an error, never a message);
// otherwise it takes nothing.
func FuzzNextMessage(f *testing.F) {
	f.Add(appendTestFrame(nil, 0x82, []byte("hello"), true, 0), true, 0, 1)
	f.Add(appendTestFrame(nil, 0x81, []byte("hello"), false, 0), false, 3, 2)
	f.Add(appendTestFrame(nil, 0x81, []byte("x"), true, 8), true, 0, 1)
	f.Add(appendTestFrame(nil, 0x01, []byte("part"), true, 0), true, 0, 1)
	f.Add(appendTestFrame(nil, 0x89, nil, true, 0), true, 0, 1)
	f.Add(appendTestFrame(nil, 0xc2, []byte("rsv"), true, 0), true, 0, 1)
	f.Add(append(appendTestFrame(nil, 0x82, make([]byte, 300), true, 0), 0x82, 0x80), true, 0, 7)
	f.Add(appendTestFrame(nil, 0x82, make([]byte, 900), true, 0), true, 100, 64)
	f.Add(appendTestFrame(nil, 0x82, make([]byte, 900), false, 0)[:500], false, 10, 64)
	f.Add([]byte{0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, true, 0, 1)
	f.Add([]byte{0x82}, false, 0, 1)
	f.Add(appendTestFrame(nil, 0x82, []byte("masked to a client"), true, 0), false, 0, 1)
	f.Add(appendTestFrame(nil, 0x82, []byte("unmasked to a server"), false, 0), true, 0, 1)
	f.Fuzz(func(t *testing.T, data []byte, server bool, split, step int) {
		if len(data) == 0 {
			return // an empty read-ahead would wait on the socket
		}
		split = len(data) - abs(split)%len(data) // 1 to len(data) bytes read ahead
		step = 1 + abs(step)%4096
		const limit = 1000
		rest := bytes.NewReader(data[split:])
		c := &corkConn{Conn: &streamConn{r: rest, step: step}, ahead: bytes.Clone(data[:split]), aheadBuf: bytes.Clone(data[:split])}
		m, ok, err := c.nextMessage(server, limit, 0, func() {})
		hl, n, hok := frameHeaderLen(data[:split])
		takes := hok && data[0]&0xf0 == 0x80 && n <= limit && (data[1]&0x80 != 0) == server &&
			(data[0]&0x0f == 1 || data[0]&0x0f == 2)
		taken := split - len(c.ahead) + int(rest.Size()) - rest.Len()
		switch {
		case !takes:
			if ok || err != nil || taken != 0 {
				t.Fatalf("took %d bytes (message %v, error %v) of a frame it must leave: % x", taken, ok, err, data[:min(len(data), 14)])
			}
			return
		case uint64(hl)+n > uint64(len(data)):
			if ok || !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("frame of %d+%d in %d bytes: message %v, error %v; want io.ErrUnexpectedEOF", hl, n, len(data), ok, err)
			}
			return
		case err != nil || !ok:
			t.Fatalf("whole frame of %d+%d not taken: message %v, error %v", hl, n, ok, err)
		}
		if MessageType(data[0]&0x0f) != m.Type {
			t.Fatalf("opcode %d taken as %v", data[0]&0x0f, m.Type)
		}
		if taken != hl+int(n) || len(m.Data) != int(n) {
			t.Fatalf("took %d bytes and a %d-byte message from a frame of %d+%d", taken, len(m.Data), hl, n)
		}
		want := bytes.Clone(data[hl : hl+int(n)])
		if server {
			key := data[hl-4 : hl]
			for i := range want {
				want[i] ^= key[i%4]
			}
		}
		if !bytes.Equal(m.Data, want) {
			t.Fatalf("payload % x, want % x", m.Data, want)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -(n + 1) // never negative, even for the most negative int
	}
	return n
}

// rawHandshakeServer answers one WebSocket handshake by hand and writes
// the 101 response and then extra in a single write, so that the client's
// HTTP transport reads the two together.
func rawHandshakeServer(t *testing.T, extra []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		req, err := http.ReadRequest(bufio.NewReader(nc))
		if err != nil {
			return
		}
		h := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(h[:]) + "\r\n\r\n"
		if _, err := nc.Write(append([]byte(resp), extra...)); err != nil {
			return
		}
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, nc) // until the client goes
	}()
	return "ws://" + ln.Addr().String()
}

// A frame that arrives with the 101 response is kept in net/http's
// buffer: the corkConn cannot follow the frames from the first, so it
// leaves the reading to coder/websocket, and the frame is read all the same.
func TestFramesWithTheHandshakeResponse(t *testing.T) {
	for _, extra := range [][]byte{nil, appendTestFrame(nil, 0x81, []byte("early"), false, 0)} {
		t.Run(fmt.Sprintf("extra=%d", len(extra)), func(t *testing.T) {
			url := rawHandshakeServer(t, extra)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := Dial(ctx, url, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			if c.ownReads != (len(extra) == 0) {
				t.Fatalf("ownReads %v with %d bytes after the 101 response", c.ownReads, len(extra))
			}
			if len(extra) == 0 {
				return
			}
			select {
			case m := <-c.Recv():
				if string(m.Data) != "early" {
					t.Fatalf("read %q", m.Data)
				}
			case <-ctx.Done():
				t.Fatalf("the early frame was not read: %v", c.Err())
			}
		})
	}
}

// rawUpgrade is a WebSocket handshake request written by hand.
const rawUpgrade = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"

// A frame sent with the handshake request is kept in net/http's reader:
// the accepted side leaves reading to coder/websocket, which reads it.
func TestFramesWithTheHandshakeRequest(t *testing.T) {
	url, accepted := acceptingServer(t, nil)
	nc, err := net.Dial("tcp", strings.TrimPrefix(url, "ws://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write(appendTestFrame([]byte(rawUpgrade), 0x82, []byte("early"), true, 0)); err != nil {
		t.Fatal(err)
	}
	c := <-accepted
	if c == nil {
		t.Fatal("accept failed")
	}
	defer c.CloseNow()
	select {
	case m := <-c.Recv():
		if string(m.Data) != "early" {
			t.Fatalf("read %q", m.Data)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("the early frame was not read: %v", c.Err())
	}
	if c.ownReads {
		t.Fatal("ownReads with bytes read before the hijack")
	}
}

// hugeLengthHeader is the header of a client's frame whose 64-bit length
// is payload, as a hostile peer may send it.
func hugeLengthHeader(payload uint64) []byte {
	h := []byte{0x82, 0x80 | 127}
	h = binary.BigEndian.AppendUint64(h, payload)
	return append(h, 1, 2, 3, 4) // the masking key: 14 bytes in all
}

// FuzzFrameFollower hands arbitrary bytes out as readFramed does, in
// pieces of arbitrary sizes: each piece must be at least a byte (no read
// that returns nothing while bytes wait: coder/websocket would retry it
// forever) and never past the end of a frame, whatever the lengths say.
func FuzzFrameFollower(f *testing.F) {
	f.Add(hugeLengthHeader(1<<64-10), uint8(5))
	f.Add(hugeLengthHeader(1<<64-1), uint8(1))
	f.Add(hugeLengthHeader(1<<63), uint8(13))
	f.Add(appendTestFrame(appendTestFrame(nil, 0x81, []byte("ab"), true, 8), 0x89, nil, false, 0), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		var ff frameFollower
		for len(data) > 0 {
			n := ff.limit(data)
			if n < 1 || n > len(data) {
				t.Fatalf("limit %d with %d bytes", n, len(data))
			}
			n = min(n, 1+int(step)%len(data))
			before := ff
			ff.follow(data[:n])
			if before.between() && ff.left == 0 && ff.hdrN == 0 && n > 0 {
				// A whole frame of n bytes: its header said so.
				hl, payload, ok := frameHeaderLen(data[:n])
				if !ok || uint64(hl)+payload != uint64(n) {
					t.Fatalf("%d bytes taken as a whole frame: % x", n, data[:min(n, 14)])
				}
			}
			data = data[n:]
		}
	})
}

// rawAccepted is an accepted Conn whose client is a bare TCP socket that
// did the handshake by hand (rawUpgrade), for tests that write frames as a
// peer may; the transport reads frames itself on it. Both are closed when
// the test ends.
func rawAccepted(t *testing.T, opts *AcceptOptions) (net.Conn, *Conn) {
	t.Helper()
	url, accepted := acceptingServer(t, opts)
	nc, err := net.Dial("tcp", strings.TrimPrefix(url, "ws://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	if _, err := nc.Write([]byte(rawUpgrade)); err != nil {
		t.Fatal(err)
	}
	c := <-accepted
	if c == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.CloseNow() })
	br := bufio.NewReader(nc)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	if !c.ownReads {
		t.Fatal("the transport does not read frames itself here: the test needs it to")
	}
	return nc, c
}

// A frame whose 64-bit length is near 2^64 (coder/websocket takes it for
// a negative length, a protocol error) ends the connection: the reader
// neither spins nor holds Close up.
func TestHugeFrameLengthEndsTheConnection(t *testing.T) {
	for _, payload := range []uint64{1<<64 - 10, 1<<64 - 1, 1 << 63} {
		t.Run(fmt.Sprintf("length=%#x", payload), func(t *testing.T) {
			nc, c := rawAccepted(t, nil)
			if _, err := nc.Write(hugeLengthHeader(payload)); err != nil {
				t.Fatal(err)
			}
			select {
			case <-c.Done():
				var ce *CloseError
				if !errors.As(c.Err(), &ce) || ce.Code != StatusProtocolError {
					t.Fatalf("ended with %v, want 1002", c.Err())
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the connection did not end")
			}
		})
	}
}

// Messages that arrive while Close waits for the peer's close frame are
// delivered as a prefix of what the peer sent: coder/websocket reads from
// then on, and this reader takes nothing between the frames it drops.
func TestMessagesDuringCloseArePrefix(t *testing.T) {
	url, conns := plainServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ours, err := Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ours.CloseNow()
	plain := <-conns
	if plain == nil {
		t.Fatal("accept failed")
	}
	defer plain.CloseNow()
	if !ours.ownReads {
		t.Fatal("the transport does not read frames itself here: the test needs it to")
	}
	go func() { // plain answers our close frame (it reads nothing else)
		for {
			if _, _, err := plain.Read(ctx); err != nil {
				return
			}
		}
	}()
	const n = 2000
	sent := make(chan error, 1)
	go func() {
		for i := range n {
			if err := plain.Write(ctx, websocket.MessageBinary, binary.BigEndian.AppendUint32(nil, uint32(i))); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	// Read a few, then close while the rest stream in.
	for range 10 {
		<-ours.Recv()
	}
	closed := make(chan struct{})
	go func() {
		ours.Close(StatusNormalClosure, "")
		close(closed)
	}()
	next := uint32(10)
	for m := range ours.Recv() {
		if got := binary.BigEndian.Uint32(m.Data); got != next {
			t.Fatalf("after message %d came %d: a gap", next-1, got)
		}
		next++
	}
	<-closed
	<-sent // plain's writes end with the close
	t.Logf("%d messages delivered in all", next)
}

// Every connection holds a corkConn for its whole life, idle or not: the
// idle-memory target (docs/BENCHMARKS.md, issue 13) has no room for it to
// pass the 256-byte size class.
func TestCorkConnSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(corkConn{}); n > 256 {
		t.Fatalf("corkConn is %d bytes, over the 256-byte size class: reorder or trim its fields", n)
	}
}

// A large message from a bare coder/websocket peer, which arrives over many
// reads, is read here (its payload straight into its buffer), at every size
// up to the read limit, from either end; one byte over the limit is still
// coder/websocket's 1009.
func TestLargeFramesReadInPlace(t *testing.T) {
	const limit = 1 << 20
	sizes := []int{readAhead - 14, readAhead, readAhead + 1, 100_000, 300_001, limit}
	check := func(t *testing.T, ours *Conn, plain *websocket.Conn) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for i, n := range sizes {
			typ, b := sizedMessage(i, n)
			before := ours.ownRead.Load()
			if err := plain.Write(ctx, websocket.MessageType(typ), b); err != nil {
				t.Fatalf("plain write of %d bytes: %v", n, err)
			}
			expectMessage(ctx, t, ours, typ, b)
			if ours.ownRead.Load() != before+1 {
				t.Errorf("%d bytes: not read by the corkConn", n)
			}
		}
		go plain.Write(ctx, websocket.MessageBinary, make([]byte, limit+1)) // fails once ours closes
		go plain.Read(ctx)                                                  // the close frame
		select {
		case <-ours.Done():
			var ce *CloseError
			if !errors.As(ours.Err(), &ce) || ce.Code != StatusMessageTooBig {
				t.Fatalf("ended with %v, want 1009", ours.Err())
			}
		case <-ctx.Done():
			t.Fatal("a message over the limit did not end the connection")
		}
	}
	withPlainPeer(t, limit, check)
}

// A peer that goes away in the middle of a large frame's payload ends the
// connection as lost (1006), with nothing of that frame delivered and
// nothing left behind.
func TestFrameCutShortEndsTheConnection(t *testing.T) {
	nc, c := rawAccepted(t, &AcceptOptions{ConnOptions: ConnOptions{ReadLimit: 1 << 20}})
	frame := appendTestFrame(nil, 0x82, make([]byte, 500_000), true, 0)
	if _, err := nc.Write(frame[:200_000]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // let the reader start on it
	nc.Close()
	select {
	case <-c.Done():
		var ce *CloseError
		if !errors.As(c.Err(), &ce) || ce.Code != StatusAbnormal {
			t.Fatalf("ended with %v, want 1006", c.Err())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the connection did not end")
	}
	for m := range c.Recv() {
		t.Fatalf("a message of %d bytes was delivered", len(m.Data))
	}
}

// fixedPacker packs any messages as the one payload it holds.
type fixedPacker struct{ payload []byte }

func (p fixedPacker) Pack(dst []byte, _ []Message) []byte { return append(dst, p.payload...) }

// A message packed straight into its frame's buffer makes the frame
// appendFrame makes of the same payload, in the shortest length encoding,
// whether the packer's bound was right, above (a shorter header: the
// payload moves left) or below (a longer one: it moves right), masked or
// not, after bytes already in the buffer.
func TestAppendPackedFrame(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 70000} {
		for _, bound := range []int{n, n + 16, max(0, n-1), 200, 70000} {
			for _, masked := range []bool{false, true} {
				typ, payload := sizedMessage(n, n)
				var mk *masker
				if masked {
					mk = newMasker()
				}
				prefix := []byte("corked before")
				b, got := appendPackedFrame(append(make([]byte, 0, len(prefix)+bound+14), prefix...), typ, bound, fixedPacker{payload}, nil, mk)
				if got != n || !bytes.Equal(b[:len(prefix)], prefix) {
					t.Fatalf("n %d bound %d: length %d, prefix %q", n, bound, got, b[:len(prefix)])
				}
				frame := b[len(prefix):]
				hl, plen, ok := frameHeaderLen(frame)
				if !ok || plen != uint64(n) || len(frame) != hl+n {
					t.Fatalf("n %d bound %d masked %v: header of %d bytes for %d (ok %v), frame of %d", n, bound, masked, hl, plen, ok, len(frame))
				}
				want := appendFrame(nil, typ, payload, nil)
				if masked {
					maskBytes(frame[hl:], binary.LittleEndian.Uint32(frame[hl-4:hl]))
					frame = append(append([]byte{frame[0], frame[1] &^ 0x80}, frame[2:hl-4]...), frame[hl:]...)
				}
				if !bytes.Equal(frame, want) {
					t.Fatalf("n %d bound %d masked %v: frame differs from appendFrame's (header % x, want % x)", n, bound, masked, frame[:min(len(frame), 10)], want[:min(len(want), 10)])
				}
			}
		}
	}
}
