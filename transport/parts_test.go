package transport_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wsrpc/wsrpc/internal/pipe"
	"github.com/wsrpc/wsrpc/internal/wstest"
	"github.com/wsrpc/wsrpc/transport"
)

// These tests cover messages in parts: SendReader, which sends a message of
// any size from an io.Reader in frames of MaxFrameSize, and PartsAbove, which
// delivers a large incoming message in parts.

// seeded returns n bytes that differ from one message (seed) to the next
// and from one offset to the next, so that a byte out of place shows.
func seeded(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i%251)
	}
	return b
}

// textPattern returns n bytes of UTF-8 text mixing runes of 1 to 4 bytes
// (the last rune may be cut to make n bytes: callers use it where n does
// not matter or trim it).
func textPattern(n int) []byte {
	runes := []rune("aé€😀b")
	b := make([]byte, 0, n+utf8.UTFMax)
	for i := 0; len(b) < n; i++ {
		b = utf8.AppendRune(b, runes[i%len(runes)])
	}
	return b
}

// readWhole receives one message from c in parts (or whole) and returns its
// bytes and how many parts it came in, checking that each part is at most
// limit bytes and that only the last is not Partial.
func readWhole(t *testing.T, c *transport.Conn, limit int) ([]byte, int) {
	t.Helper()
	var data []byte
	for parts := 1; ; parts++ {
		m := recv(t, c)
		if len(m.Data) > limit {
			t.Fatalf("part %d holds %d bytes, more than %d", parts, len(m.Data), limit)
		}
		if m.Partial && len(m.Data) == 0 {
			t.Fatalf("part %d is empty", parts)
		}
		if m.Type == transport.Text && !utf8.Valid(m.Data) {
			t.Fatalf("text part %d is not valid UTF-8 on its own", parts)
		}
		data = append(data, m.Data...)
		if !m.Partial {
			return data, parts
		}
	}
}

// gatedReader gives the first `first` bytes of data, then waits for release
// before giving the rest, or failing with fail. reached is closed when it
// starts waiting.
type gatedReader struct {
	data    []byte
	first   int
	fail    error
	release chan struct{}
	reached chan struct{}
	once    sync.Once
	off     int
}

func newGatedReader(data []byte, first int) *gatedReader {
	return &gatedReader{data: data, first: first, release: make(chan struct{}), reached: make(chan struct{})}
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if g.off == g.first {
		g.once.Do(func() { close(g.reached) })
		<-g.release
		if g.fail != nil {
			return 0, g.fail
		}
	}
	if g.off >= len(g.data) {
		return 0, io.EOF
	}
	end := len(g.data)
	if g.off < g.first {
		end = g.first
	}
	n := copy(p, g.data[g.off:end])
	g.off += n
	return n, nil
}

// sizesAround returns the message sizes worth trying with frames (or parts)
// of f bytes: none, one byte, and each side of one, two and three frames.
func sizesAround(f int) []int {
	return []int{0, 1, f - 1, f, f + 1, 2*f - 1, 2 * f, 2*f + 1, 3*f - 1, 3 * f, 3*f + 1, 10*f + 7}
}

func TestSendReaderRoundTrip(t *testing.T) {
	const frame = 100
	for _, dir := range []string{"client to server", "server to client"} {
		t.Run(dir, func(t *testing.T) {
			o := transport.ConnOptions{MaxFrameSize: frame, HeartbeatInterval: -1}
			from, to := pipe.New(t, pipe.Options{Client: o, Server: o})
			if dir == "server to client" {
				from, to = to, from
			}
			for _, typ := range []transport.MessageType{transport.Binary, transport.Text} {
				for _, n := range append(sizesAround(frame), 300<<10) {
					msg := seeded(n, byte(n))
					if typ == transport.Text {
						msg = bytes.Repeat([]byte("x"), n)
					}
					if err := from.SendReader(ctxT(t), typ, bytes.NewReader(msg)); err != nil {
						t.Fatalf("SendReader of %d bytes: %v", n, err)
					}
					got := recv(t, to)
					if got.Type != typ || got.Partial || !bytes.Equal(got.Data, msg) {
						t.Fatalf("%v of %d bytes: got %v of %d bytes (partial %v)", typ, n, got.Type, len(got.Data), got.Partial)
					}
				}
			}
		})
	}
}

// A reader that gives a byte at a time makes the same frames as one that
// gives all at once: SendReader fills each frame.
func TestSendReaderFillsFrames(t *testing.T) {
	c, p := openAccepted(t, transport.ConnOptions{MaxFrameSize: 64, HeartbeatInterval: -1})
	msg := seeded(200, 7)
	errc := make(chan error, 1)
	go func() { errc <- c.SendReader(ctxT(t), transport.Binary, iotest{bytes.NewReader(msg)}) }()
	got := readFrames(t, p)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	checkFrames(t, got, transport.Binary, msg, 64)
}

// iotest gives one byte per Read, like testing/iotest.OneByteReader.
type iotest struct{ r io.Reader }

func (o iotest) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

// readFrames reads the frames of one data message from the raw peer, up to
// its final frame, passing over control frames.
func readFrames(t *testing.T, p *wstest.Peer) []wstest.Frame {
	t.Helper()
	var fs []wstest.Frame
	for {
		f, err := p.ReadFrame()
		if err != nil {
			t.Fatalf("raw peer, after %d frames: %v", len(fs), err)
		}
		if wstest.IsControl(f.Opcode) {
			continue
		}
		fs = append(fs, f)
		if f.Fin {
			return fs
		}
	}
}

// checkFrames checks that fs carry msg, of type typ, as SendReader frames
// it with frames of at most frame bytes: one frame if it fits, otherwise
// full frames, the rest, and an empty final frame.
func checkFrames(t *testing.T, fs []wstest.Frame, typ transport.MessageType, msg []byte, frame int) {
	t.Helper()
	var got []byte
	for i, f := range fs {
		want := byte(wstest.OpContinuation)
		if i == 0 {
			want = byte(typ)
		}
		if f.Opcode != want {
			t.Fatalf("frame %d of %d: opcode %#x, want %#x", i, len(fs), f.Opcode, want)
		}
		if len(f.Payload) > frame {
			t.Fatalf("frame %d carries %d bytes, more than MaxFrameSize %d", i, len(f.Payload), frame)
		}
		got = append(got, f.Payload...)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("frames carry %d bytes, not the %d sent", len(got), len(msg))
	}
	if len(msg) <= frame {
		if len(fs) != 1 {
			t.Fatalf("a message of %d bytes came in %d frames, want one (MaxFrameSize %d)", len(msg), len(fs), frame)
		}
		return
	}
	full := (len(msg) - 1) / frame // frames before the one with the rest
	if len(fs) != full+2 {
		t.Fatalf("a message of %d bytes came in %d frames, want %d (MaxFrameSize %d)", len(msg), len(fs), full+2, frame)
	}
	for i := range full {
		if len(fs[i].Payload) != frame {
			t.Fatalf("frame %d carries %d bytes, want a full frame of %d", i, len(fs[i].Payload), frame)
		}
	}
	if last := fs[len(fs)-1]; len(last.Payload) != 0 {
		t.Fatalf("the final frame carries %d bytes, want none", len(last.Payload))
	}
}

func TestSendReaderFrames(t *testing.T) {
	// 125/126 and 65535/65536 are where the frame header's length field
	// grows; MinFrameSize is the smallest frame allowed.
	for _, frame := range []int{transport.MinFrameSize, 125, 126, 1000, 65535, 65536} {
		t.Run(fmt.Sprintf("frame=%d", frame), func(t *testing.T) {
			for _, e := range ends[:2] {
				t.Run(e.name, func(t *testing.T) {
					c, p := e.open(t, transport.ConnOptions{MaxFrameSize: frame, HeartbeatInterval: -1})
					for i, n := range sizesAround(frame) {
						typ := transport.Binary
						msg := seeded(n, byte(i))
						if i%2 == 1 {
							typ, msg = transport.Text, bytes.Repeat([]byte("t"), n)
						}
						errc := make(chan error, 1)
						go func() { errc <- c.SendReader(context.Background(), typ, bytes.NewReader(msg)) }()
						fs := readFrames(t, p)
						if err := <-errc; err != nil {
							t.Fatalf("SendReader of %d bytes: %v", n, err)
						}
						checkFrames(t, fs, typ, msg, frame)
					}
				})
			}
		})
	}
}

func TestSendReaderCompressed(t *testing.T) {
	o := transport.ConnOptions{MaxFrameSize: 1000, Compression: transport.CompressionNoContextTakeover, HeartbeatInterval: -1}
	c, s := pipe.New(t, pipe.Options{Client: o, Server: o})
	for _, n := range []int{0, 999, 1000, 1001, 100 << 10} {
		msg := textPattern(n)
		if err := c.SendReader(ctxT(t), transport.Text, bytes.NewReader(msg)); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, s); !bytes.Equal(got.Data, msg) {
			t.Fatalf("%d bytes compressed: got %d bytes back", len(msg), len(got.Data))
		}
	}
}

func TestPartsDelivery(t *testing.T) {
	const limit = 100
	c, s := pipe.New(t, pipe.Options{
		Client: transport.ConnOptions{MaxFrameSize: 64, HeartbeatInterval: -1},
		Server: transport.ConnOptions{PartsAbove: limit, HeartbeatInterval: -1},
	})
	send := map[string]func(typ transport.MessageType, msg []byte) error{
		"Send": func(typ transport.MessageType, msg []byte) error {
			return c.Send(ctxT(t), transport.Message{Type: typ, Data: msg})
		},
		"SendReader": func(typ transport.MessageType, msg []byte) error {
			return c.SendReader(ctxT(t), typ, bytes.NewReader(msg))
		},
	}
	for name, send := range send {
		t.Run(name, func(t *testing.T) {
			for i, n := range sizesAround(limit) {
				msg := seeded(n, byte(i))
				if err := send(transport.Binary, msg); err != nil {
					t.Fatal(err)
				}
				got, parts := readWhole(t, s, limit)
				if !bytes.Equal(got, msg) {
					t.Fatalf("%d bytes: got %d back", n, len(got))
				}
				if want := max(1, (n+limit-1)/limit); parts != want {
					t.Errorf("%d bytes came in %d parts, want %d", n, parts, want)
				}
			}
			// Text parts end on a rune boundary, so each is valid UTF-8
			// (readWhole checks), a few bytes short of the limit at most.
			for _, n := range []int{limit - 1, limit, limit + 1, 1000, 1003} {
				msg := textPattern(n)
				if err := send(transport.Text, msg); err != nil {
					t.Fatal(err)
				}
				got, parts := readWhole(t, s, limit)
				if !bytes.Equal(got, msg) {
					t.Fatalf("text of %d bytes: got %d back", len(msg), len(got))
				}
				if most := (len(msg) + limit - 4) / (limit - 3); parts > most {
					t.Errorf("text of %d bytes came in %d parts, want at most %d", len(msg), parts, most)
				}
			}
		})
	}
}

// The parts of a message come together: a message from another goroutine,
// sent at the same time, comes before or after, never between.
func TestPartsNotInterleaved(t *testing.T) {
	const limit, senders, each = 64, 3, 10
	c, s := pipe.New(t, pipe.Options{
		Client: transport.ConnOptions{MaxFrameSize: 64, HeartbeatInterval: -1},
		Server: transport.ConnOptions{PartsAbove: limit, HeartbeatInterval: -1},
	})
	var wg sync.WaitGroup
	errs := make(chan error, senders*each)
	for g := range senders {
		wg.Go(func() {
			for i := range each {
				tag := byte(g*each + i)
				msg := bytes.Repeat([]byte{tag}, 500+i*37)
				var err error
				if g == 0 {
					err = c.Send(ctxT(t), transport.Message{Type: transport.Binary, Data: msg})
				} else {
					err = c.SendReader(ctxT(t), transport.Binary, bytes.NewReader(msg))
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	next := make([]int, senders) // the next message expected from each sender
	for range senders * each {
		got, _ := readWhole(t, s, limit)
		tag := got[0]
		if bytes.Count(got, []byte{tag}) != len(got) {
			t.Fatalf("message %d has bytes of another message among its parts", tag)
		}
		g, i := int(tag)/each, int(tag)%each
		if i != next[g] || len(got) != 500+i*37 {
			t.Fatalf("from sender %d: message %d of %d bytes, want message %d of %d", g, i, len(got), next[g], 500+next[g]*37)
		}
		next[g]++
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// The UTF-8 check of text received in parts sees across the parts: a valid
// rune cut by a part's end goes whole into the next part, and an invalid
// sequence closes the connection with 1007 wherever it falls.
func TestPartsInvalidUTF8(t *testing.T) {
	const limit = transport.MinPartSize
	seqs := []struct {
		name  string
		seq   string
		valid bool
	}{
		{"two-byte rune", "é", true},
		{"three-byte rune", "€", true},
		{"four-byte rune", "😀", true},
		{"cut three-byte rune", "\xe2\x82", false},
		{"cut four-byte rune", "\xf0\x9f\x98", false},
		{"lone continuation byte", "\x80", false},
		{"overlong", "\xe0\x80\xaf", false},
		{"surrogate half", "\xed\xa0\x80", false},
		{"0xff", "\xff", false},
	}
	for _, sq := range seqs {
		t.Run(sq.name, func(t *testing.T) {
			for _, e := range ends[:2] {
				t.Run(e.name, func(t *testing.T) {
					// The sequence starts from 4 bytes before the end of the
					// first part to just after it, and so falls across every
					// place the end of a part can cut it.
					for at := limit - 4; at <= limit+1; at++ {
						c, p := e.open(t, transport.ConnOptions{PartsAbove: limit, HeartbeatInterval: -1})
						msg := strings.Repeat("a", at) + sq.seq + strings.Repeat("z", 2*limit)
						// Frames of 50 bytes: their ends fall elsewhere.
						var fs []wstest.Frame
						for i := 0; i < len(msg); i += 50 {
							fs = append(fs, cont(i+50 >= len(msg), msg[i:min(i+50, len(msg))]))
						}
						fs[0].Opcode = wstest.OpText
						write(t, p, frames(p, fs...))
						if sq.valid {
							if got, _ := readWhole(t, c, limit); string(got) != msg {
								t.Fatalf("at %d: got %q, want %q", at, got, msg)
							}
							continue
						}
						if code, _ := readClose(t, p); code != transport.StatusInvalidPayload {
							t.Fatalf("at %d: raw peer got close %d, want 1007", at, code)
						}
						if err := p.CloseFrame(int(transport.StatusInvalidPayload), ""); err != nil {
							t.Fatal(err)
						}
						var got []byte
						for m := range c.Recv() {
							if !m.Partial || !utf8.Valid(m.Data) {
								t.Fatalf("at %d: delivered a part %q (partial %v) of an invalid message", at, m.Data, m.Partial)
							}
							got = append(got, m.Data...)
						}
						if !strings.HasPrefix(msg, string(got)) || len(got) > at {
							t.Fatalf("at %d: delivered %q, beyond the valid start of the message", at, got)
						}
						if err := c.Err(); !errors.Is(err, transport.ErrInvalidUTF8) || closeErr(t, err).Code != transport.StatusInvalidPayload {
							t.Fatalf("at %d: Err = %v, want 1007 wrapping ErrInvalidUTF8", at, err)
						}
					}
				})
			}
		})
	}
}

func TestPartsTooBig(t *testing.T) {
	const limit, most = 100, 1000
	msg := seeded(most+1, 3)
	tests := []struct {
		name string
		give func(p *wstest.Peer) []byte
		want transport.StatusCode // 0: the message is delivered whole
	}{
		{"exactly the cap in one frame", func(p *wstest.Peer) []byte {
			return p.EncodeFrame(wstest.Frame{Fin: true, Opcode: wstest.OpBinary, Payload: msg[:most]})
		}, 0},
		{"cap+1 in one frame", func(p *wstest.Peer) []byte {
			return p.EncodeFrame(wstest.Frame{Fin: true, Opcode: wstest.OpBinary, Payload: msg})
		}, transport.StatusMessageTooBig},
		{"cap+1 over eleven fragments", func(p *wstest.Peer) []byte {
			var fs []wstest.Frame
			for i := 0; i < len(msg); i += 91 {
				fs = append(fs, cont(i+91 >= len(msg), string(msg[i:min(i+91, len(msg))])))
			}
			fs[0].Opcode = wstest.OpBinary
			return frames(p, fs...)
		}, transport.StatusMessageTooBig},
		{"header announces 1 TiB, cap+1 bytes follow", func(p *wstest.Peer) []byte {
			return append(header(p, true, wstest.OpBinary, 1<<40), msg...)
		}, transport.StatusMessageTooBig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, e := range ends {
				t.Run(e.name, func(t *testing.T) {
					// ReadLimit below the cap does not apply to messages in parts.
					c, p := e.open(t, transport.ConnOptions{ReadLimit: limit, PartsAbove: limit, MaxPartsSize: most, HeartbeatInterval: -1})
					write(t, p, tt.give(p))
					if tt.want == 0 {
						if got, _ := readWhole(t, c, limit); !bytes.Equal(got, msg[:most]) {
							t.Fatalf("got %d bytes, want %d", len(got), most)
						}
						return
					}
					n := 0
					for m := range c.Recv() {
						if !m.Partial {
							t.Fatalf("the last part of a message over the cap was delivered")
						}
						n += len(m.Data)
					}
					if n > most {
						t.Errorf("%d bytes delivered, more than the cap %d", n, most)
					}
					if code, _ := readClose(t, p); code != tt.want {
						t.Errorf("raw peer got close %d, want %d", code, tt.want)
					}
					err := c.Err()
					if ce := closeErr(t, err); ce.Code != tt.want || ce.Remote || !errors.Is(err, transport.ErrMessageTooBig) {
						t.Errorf("Err = %v, want a local %d wrapping ErrMessageTooBig", err, tt.want)
					}
					if !strings.Contains(err.Error(), "limit 1000") {
						t.Errorf("Err %q does not name the cap", err)
					}
				})
			}
		})
	}
}

// Inputs that break the protocol in the middle of a message received in
// parts: coder/websocket rejects them (1002) or the transport does, and no
// message is completed by a part that did not come.
func TestPartsBadInput(t *testing.T) {
	const limit = 64
	long := strings.Repeat("p", 3*limit+10)
	ping := wstest.Frame{Fin: true, Opcode: wstest.OpPing, Payload: []byte("mid")}
	tests := []struct {
		name  string
		give  func(p *wstest.Peer) []byte
		parts int                  // Partial parts delivered first
		want  transport.StatusCode // close code the raw peer gets; 0: the peer ends
		why   string               // in Err
		eof   bool                 // the raw peer shuts its side after give
	}{
		{"continuation without a start", func(p *wstest.Peer) []byte { return frames(p, cont(false, long), cont(true, "x")) },
			0, transport.StatusProtocolError, "continuation frame without", false},
		{"new message after three parts", func(p *wstest.Peer) []byte { return frames(p, text(false, long), text(true, "x")) },
			3, transport.StatusProtocolError, "without finishing the previous message", false},
		{"reserved opcode after three parts", func(p *wstest.Peer) []byte {
			return frames(p, text(false, long), wstest.Frame{Fin: true, Opcode: 0x3})
		}, 3, transport.StatusProtocolError, "unknown opcode", false},
		{"fragmented ping after three parts", func(p *wstest.Peer) []byte {
			return frames(p, text(false, long), wstest.Frame{Opcode: wstest.OpPing})
		}, 3, transport.StatusProtocolError, "fragmented control frame", false},
		{"close frame after three parts", func(p *wstest.Peer) []byte {
			return append(frames(p, text(false, long)), closeWith(1000, "changed my mind")(p)...)
		}, 3, 0, "changed my mind", false},
		{"connection lost after a whole fragment", func(p *wstest.Peer) []byte { return frames(p, text(false, long)) },
			3, 0, "unexpected EOF", true},
		{"connection lost inside a fragment", func(p *wstest.Peer) []byte {
			b := frames(p, text(false, long))
			return b[:len(b)-5]
		}, 3, 0, "unexpected EOF", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, e := range ends {
				t.Run(e.name, func(t *testing.T) {
					c, p := e.open(t, transport.ConnOptions{PartsAbove: limit, HeartbeatInterval: -1})
					write(t, p, tt.give(p))
					if tt.eof {
						if err := p.CloseWrite(); err != nil {
							t.Fatal(err)
						}
					}
					n := 0
					for m := range c.Recv() {
						if !m.Partial {
							t.Fatalf("a last part (%q) was delivered for a message never finished", m.Data)
						}
						n++
					}
					if n != tt.parts {
						t.Errorf("%d parts delivered, want %d", n, tt.parts)
					}
					if tt.want != 0 {
						if code, _ := readClose(t, p); code != tt.want {
							t.Errorf("raw peer got close %d, want %d", code, tt.want)
						}
					}
					if err := c.Err(); err == nil || !strings.Contains(err.Error(), tt.why) {
						t.Errorf("Err = %v, want it to say %q", err, tt.why)
					}
				})
			}
		})
	}
	t.Run("ping and empty fragments between parts", func(t *testing.T) {
		for _, e := range ends {
			t.Run(e.name, func(t *testing.T) {
				c, p := e.open(t, transport.ConnOptions{PartsAbove: limit, HeartbeatInterval: -1})
				write(t, p, frames(p, text(false, long[:100]), ping, cont(false, ""), cont(false, long[100:]), ping, cont(true, "")))
				for range 2 {
					if f, err := p.ReadFrame(); err != nil || f.Opcode != wstest.OpPong {
						t.Fatalf("raw peer read %v, %v; want a pong", f, err)
					}
				}
				if got, _ := readWhole(t, c, limit); string(got) != long {
					t.Fatalf("got %q, want %q", got, long)
				}
			})
		}
	})
}

func TestSendReaderCancelled(t *testing.T) {
	const frame = 100
	o := transport.ConnOptions{MaxFrameSize: frame, HeartbeatInterval: -1}
	t.Run("mid-message", func(t *testing.T) {
		// Frames larger than coder/websocket's 4 KiB write buffer: most of
		// the first reaches the receiver while SendReader waits.
		const frame = 5000
		o := o
		o.MaxFrameSize = frame
		c, s := pipe.New(t, pipe.Options{Client: o, Server: transport.ConnOptions{PartsAbove: 1000, HeartbeatInterval: -1}})
		r := newGatedReader(seeded(20*frame, 1), 3*frame)
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- c.SendReader(ctx, transport.Binary, r) }()
		<-r.reached
		if m := recv(t, s); !m.Partial {
			t.Fatal("the first part is not Partial")
		}
		// Cancelled while SendReader waits for its reader: the connection
		// is closed at once, without waiting for the reader.
		cancel()
		err := waitEnd(t, c, 5*time.Second)
		if ce := closeErr(t, err); ce.Code != transport.StatusInternalError || ce.Remote || !errors.Is(err, transport.ErrMessageAbandoned) || !errors.Is(err, context.Canceled) {
			t.Errorf("sender's Err = %v, want a local 1011 wrapping ErrMessageAbandoned and context.Canceled", err)
		}
		close(r.release)
		err = <-errc
		if !errors.Is(err, context.Canceled) || !errors.Is(err, transport.ErrMessageAbandoned) || !errors.Is(err, transport.ErrClosed) {
			t.Errorf("SendReader = %v, want it to wrap context.Canceled, ErrMessageAbandoned and ErrClosed", err)
		}
		for m := range s.Recv() {
			if !m.Partial {
				t.Fatal("the receiver got the last part of an abandoned message")
			}
		}
		serr := s.Err()
		if ce := closeErr(t, serr); ce.Code != transport.StatusInternalError || !ce.Remote || !strings.Contains(ce.Reason, "abandoned") {
			t.Errorf("receiver's Err = %v, want a remote 1011 saying the message was abandoned", serr)
		}
	})
	t.Run("blocked writing", func(t *testing.T) {
		// The peer never reads: SendReader is stuck writing a frame when ctx
		// ends, and the connection is closed all the same.
		const frame = 64 << 10
		c, _ := openAccepted(t, transport.ConnOptions{MaxFrameSize: frame, HeartbeatInterval: -1, WriteTimeout: -1})
		ctx, cancel := context.WithCancel(context.Background())
		marked := make(chan struct{})
		r := &zeros{n: 1 << 30, total: 1 << 30, mark: 2*frame + 1, marked: marked}
		errc := make(chan error, 1)
		go func() { errc <- c.SendReader(ctx, transport.Binary, r) }()
		// Once a second frame has been read, the first has been written:
		// the message has begun. The socket, which nobody reads, soon
		// fills, and SendReader waits in a write.
		select {
		case <-marked:
		case err := <-errc:
			t.Fatalf("SendReader returned %v before its ctx ended", err)
		}
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) || !errors.Is(err, transport.ErrMessageAbandoned) {
			t.Errorf("SendReader = %v, want it to wrap context.Canceled and ErrMessageAbandoned", err)
		}
		if err := waitEnd(t, c, 5*time.Second); closeErr(t, err).Code != transport.StatusInternalError {
			t.Errorf("Err = %v, want 1011", err)
		}
	})
	t.Run("already cancelled", func(t *testing.T) {
		c, s := pipe.New(t, pipe.Options{Client: o, Server: transport.ConnOptions{HeartbeatInterval: -1}})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		for range 20 { // the turn may come before ctx is seen, or after
			if err := c.SendReader(ctx, transport.Binary, bytes.NewReader(seeded(5*frame, 1))); !errors.Is(err, context.Canceled) {
				t.Fatalf("SendReader with a cancelled ctx = %v, want context.Canceled", err)
			}
		}
		if err := c.Send(ctxT(t), transport.Message{Type: transport.Text, Data: []byte("still open")}); err != nil {
			t.Fatal(err)
		}
		if m := recv(t, s); string(m.Data) != "still open" {
			t.Fatalf("got %q (%d bytes), want only the message sent after", m.Data, len(m.Data))
		}
	})
	t.Run("before its turn", func(t *testing.T) {
		c, s := pipe.New(t, pipe.Options{Client: o, Server: transport.ConnOptions{HeartbeatInterval: -1}})
		first := newGatedReader(seeded(5*frame, 1), 3*frame)
		errc := make(chan error, 1)
		go func() { errc <- c.SendReader(context.Background(), transport.Binary, first) }()
		<-first.reached
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if err := c.SendReader(ctx, transport.Binary, bytes.NewReader(seeded(5*frame, 2))); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("SendReader waiting for its turn = %v, want DeadlineExceeded", err)
		}
		if err := c.Err(); err != nil {
			t.Fatalf("the connection ended (%v): a message not begun is not abandoned", err)
		}
		close(first.release)
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if err := c.Send(ctxT(t), transport.Message{Type: transport.Text, Data: []byte("after")}); err != nil {
			t.Fatal(err)
		}
		if m := recv(t, s); !bytes.Equal(m.Data, first.data) {
			t.Fatalf("got %d bytes, want the first message", len(m.Data))
		}
		if m := recv(t, s); string(m.Data) != "after" {
			t.Fatalf("got %q, want the message sent after", m.Data)
		}
	})
	t.Run("reader fails mid-message", func(t *testing.T) {
		c, s := pipe.New(t, pipe.Options{Client: o, Server: transport.ConnOptions{HeartbeatInterval: -1}})
		r := newGatedReader(seeded(5*frame, 1), 3*frame)
		r.fail = errors.New("disk on fire")
		close(r.release)
		err := c.SendReader(ctxT(t), transport.Binary, r)
		if !errors.Is(err, r.fail) || !errors.Is(err, transport.ErrMessageAbandoned) {
			t.Errorf("SendReader = %v, want it to wrap the reader's error and ErrMessageAbandoned", err)
		}
		cerr := waitEnd(t, c, 5*time.Second)
		if ce := closeErr(t, cerr); ce.Code != transport.StatusInternalError || !errors.Is(cerr, r.fail) {
			t.Errorf("Err = %v, want 1011 wrapping the reader's error", cerr)
		}
		if serr := waitEnd(t, s, 5*time.Second); closeErr(t, serr).Code != transport.StatusInternalError {
			t.Errorf("receiver's Err = %v, want 1011", serr)
		}
	})
	t.Run("reader fails before the first frame", func(t *testing.T) {
		c, s := pipe.New(t, pipe.Options{Client: o, Server: transport.ConnOptions{HeartbeatInterval: -1}})
		r := newGatedReader(seeded(5*frame, 1), frame/2)
		r.fail = errors.New("disk on fire")
		close(r.release)
		if err := c.SendReader(ctxT(t), transport.Binary, r); !errors.Is(err, r.fail) || errors.Is(err, transport.ErrMessageAbandoned) {
			t.Errorf("SendReader = %v, want the reader's error alone", err)
		}
		if err := c.Send(ctxT(t), transport.Message{Type: transport.Text, Data: []byte("still open")}); err != nil {
			t.Fatal(err)
		}
		if m := recv(t, s); string(m.Data) != "still open" {
			t.Fatalf("got %q", m.Data)
		}
	})
}

// zeros reads as n zero bytes; marked, if set, is closed once more than
// mark of total have been read.
type zeros struct {
	n, total, mark int64
	marked         chan struct{}
}

func (z *zeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > z.n {
		p = p[:z.n]
	}
	clear(p)
	z.n -= int64(len(p))
	if z.marked != nil && z.n < z.total-z.mark {
		close(z.marked)
		z.marked = nil
	}
	return len(p), nil
}

// While a message from a reader is being written, other messages wait
// behind it, bounded as usual, and control frames still go out.
func TestSendReaderOthersWait(t *testing.T) {
	const frame, queue = 100, 4
	c, s := pipe.New(t, pipe.Options{
		Client: transport.ConnOptions{MaxFrameSize: frame, SendQueue: queue, HeartbeatInterval: -1},
		Server: transport.ConnOptions{HeartbeatInterval: -1},
	})
	r := newGatedReader(seeded(10*frame, 1), 5*frame)
	errc := make(chan error, 1)
	go func() { errc <- c.SendReader(context.Background(), transport.Binary, r) }()
	<-r.reached
	// The queue holds SendQueue messages, the place of the one being
	// written among them.
	for i := range queue - 1 {
		if err := c.Send(ctxT(t), transport.Message{Type: transport.Text, Data: fmt.Appendf(nil, "queued %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.Send(ctx, transport.Message{Type: transport.Text, Data: []byte("no room")}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send with the queue full behind a message being written = %v, want DeadlineExceeded", err)
	}
	if c.TrySend(transport.Message{Type: transport.Text, Data: []byte("no room")}) {
		t.Fatal("TrySend queued a message past SendQueue")
	}
	if _, err := c.Ping(ctxT(t)); err != nil {
		t.Fatalf("Ping while a message is being written: %v", err)
	}
	close(r.release)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if m := recv(t, s); !bytes.Equal(m.Data, r.data) {
		t.Fatalf("first message: %d bytes, want the one from the reader", len(m.Data))
	}
	for i := range queue - 1 {
		if m, want := recv(t, s), fmt.Sprintf("queued %d", i); string(m.Data) != want {
			t.Fatalf("got %q, want %q", m.Data, want)
		}
	}
}

// Close while a message from a reader is being written does not wait for
// the reader: the close frame goes in the middle of the message.
func TestSendReaderCloseMidMessage(t *testing.T) {
	c, s := pipe.New(t, pipe.Options{
		Client: transport.ConnOptions{MaxFrameSize: 100, HeartbeatInterval: -1},
		Server: transport.ConnOptions{HeartbeatInterval: -1},
	})
	r := newGatedReader(seeded(1000, 1), 500)
	errc := make(chan error, 1)
	go func() { errc <- c.SendReader(context.Background(), transport.Binary, r) }()
	<-r.reached
	if err := c.Send(ctxT(t), transport.Message{Type: transport.Text, Data: []byte("queued behind")}); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(transport.StatusGoingAway, "bye"); err != nil {
		t.Fatalf("Close: %v", err)
	}
	close(r.release)
	if err := <-errc; !errors.Is(err, transport.ErrClosed) {
		t.Errorf("SendReader cut short by Close = %v, want ErrClosed", err)
	}
	noMessage(t, s)
	if ce := closeErr(t, s.Err()); ce.Code != transport.StatusGoingAway || ce.Reason != "bye" {
		t.Errorf("receiver's Err = %v, want 1001 bye", s.Err())
	}
}

func TestPartsOptionBounds(t *testing.T) {
	tests := []struct {
		name string
		give transport.ConnOptions
		ok   bool
	}{
		{"defaults", transport.ConnOptions{}, true},
		{"smallest frame", transport.ConnOptions{MaxFrameSize: transport.MinFrameSize}, true},
		{"largest frame", transport.ConnOptions{MaxFrameSize: transport.MaxFrameSizeLimit}, true},
		{"frame too small", transport.ConnOptions{MaxFrameSize: transport.MinFrameSize - 1}, false},
		{"frame too large", transport.ConnOptions{MaxFrameSize: transport.MaxFrameSizeLimit + 1}, false},
		{"negative frame", transport.ConnOptions{MaxFrameSize: -1}, false},
		{"parts off", transport.ConnOptions{PartsAbove: -1}, true},
		{"smallest parts", transport.ConnOptions{PartsAbove: transport.MinPartSize}, true},
		{"parts too small", transport.ConnOptions{PartsAbove: transport.MinPartSize - 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, &transport.AcceptOptions{ConnOptions: tt.give}, echo)
			c, err := transport.Dial(ctxT(t), s.wsURL(), &transport.DialOptions{ConnOptions: tt.give})
			if (err == nil) != tt.ok {
				t.Fatalf("Dial = %v, want ok %v", err, tt.ok)
			}
			if err == nil {
				c.CloseNow()
			}
			// The server refuses the same options; a client with defaults
			// sees its answer.
			c, err = transport.Dial(ctxT(t), s.wsURL(), nil)
			var he *transport.HandshakeError
			switch {
			case tt.ok && err != nil:
				t.Fatalf("Dial to a server with these options = %v", err)
			case !tt.ok && (!errors.As(err, &he) || he.StatusCode != 500):
				t.Fatalf("Dial to a server with bad options = %v, want a 500 HandshakeError", err)
			}
			if err == nil {
				c.CloseNow()
			}
		})
	}
}

// MessageTimeout bounds each part of a message received in parts: a peer
// that stalls inside a part is cut off, a consumer that takes its time
// between parts is not.
func TestPartsMessageTimeout(t *testing.T) {
	const limit, timeout = 64, 100 * time.Millisecond
	o := transport.ConnOptions{PartsAbove: limit, MessageTimeout: timeout, RecvQueue: -1, HeartbeatInterval: -1}
	t.Run("peer stalls inside a part", func(t *testing.T) {
		c, p := openAccepted(t, o)
		write(t, p, frames(p, text(false, strings.Repeat("s", limit+10))))
		if m := recv(t, c); !m.Partial {
			t.Fatal("the first part is not Partial")
		}
		err := waitEnd(t, c, 2*time.Second)
		if ce := closeErr(t, err); ce.Code != transport.StatusPolicyViolation || !errors.Is(err, transport.ErrMessageTimeout) {
			t.Errorf("Err = %v, want 1008 wrapping ErrMessageTimeout", err)
		}
	})
	t.Run("consumer slow between parts", func(t *testing.T) {
		c, p := openAccepted(t, o)
		msg := strings.Repeat("q", 4*limit)
		write(t, p, frames(p, text(true, msg)))
		var got []byte
		for {
			// Longer than MessageTimeout between parts: that time is the
			// consumer's, not the peer's (Recv is unbuffered, so the
			// reader waits with each part).
			<-time.After(2 * timeout)
			m := recv(t, c)
			got = append(got, m.Data...)
			if !m.Partial {
				break
			}
		}
		if string(got) != msg || c.Err() != nil {
			t.Fatalf("got %d bytes, Err %v; want the whole message and the connection open", len(got), c.Err())
		}
	})
}
