package transport_test

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/coder/websocket"

	"github.com/wsrpc/wsrpc/internal/wstest"
	"github.com/wsrpc/wsrpc/transport"
)

// A byte stream of many frames (messages of assorted sizes, some fragmented
// with pings between the fragments) arrives cut at arbitrary points: in one
// write, and in pieces of random length. Every message must come out whole,
// whatever the read-ahead and the reader's buffers make of the cuts.
func TestFramesCutAnywhere(t *testing.T) {
	for _, e := range ends {
		for _, cut := range []string{"one write", "random pieces"} {
			t.Run(e.name+"/"+cut, func(t *testing.T) {
				c, p := e.open(t, transport.ConnOptions{})
				rng := rand.New(rand.NewPCG(7, uint64(len(cut))))
				var stream []byte
				var want [][]byte
				for i := range 120 {
					n := []int{0, 3, 125, 126, 4096, 4100, 9000, 33000, 70000}[i%9] + rng.IntN(50)
					msg := make([]byte, n)
					for j := range msg {
						msg[j] = byte(i + j*13)
					}
					want = append(want, msg)
					if i%4 != 3 || n < 3 {
						stream = append(stream, p.EncodeFrame(wstest.Frame{Fin: true, Opcode: byte(websocket.MessageBinary), Payload: msg})...)
						continue
					}
					// Three fragments with a ping between the first two.
					a, b := n/3, 2*n/3
					stream = append(stream, p.EncodeFrame(wstest.Frame{Opcode: byte(websocket.MessageBinary), Payload: msg[:a]})...)
					stream = append(stream, p.EncodeFrame(wstest.Frame{Fin: true, Opcode: 0x9, Payload: []byte("hi")})...)
					stream = append(stream, p.EncodeFrame(wstest.Frame{Opcode: 0x0, Payload: msg[a:b]})...)
					stream = append(stream, p.EncodeFrame(wstest.Frame{Fin: true, Opcode: 0x0, Payload: msg[b:]})...)
				}
				writeErr := make(chan error, 1)
				go func() { // owned: its result is received below
					if cut == "one write" {
						writeErr <- p.WriteRaw(stream)
						return
					}
					for len(stream) > 0 {
						k := min(len(stream), 1+rng.IntN(9000))
						if err := p.WriteRaw(stream[:k]); err != nil {
							writeErr <- err
							return
						}
						stream = stream[k:]
					}
					writeErr <- nil
				}()
				drained := make(chan struct{})
				go func() { // owned: waited for at cleanup, once the peer is closed
					defer close(drained)
					drainPongs(p)
				}()
				t.Cleanup(func() {
					p.Close()
					<-drained
				})
				for i, w := range want {
					m := recv(t, c)
					if m.Type != transport.Binary || !bytes.Equal(m.Data, w) {
						t.Fatalf("message %d: %d bytes, want %d, equal %v", i, len(m.Data), len(w), bytes.Equal(m.Data, w))
					}
					if m.Recycle != nil && i%2 == 0 {
						m.Recycle.Recycle(m.Data)
					}
				}
				if err := <-writeErr; err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// drainPongs reads (and drops) what the transport sends the raw peer, the
// pongs that answer its pings, until the peer is closed.
func drainPongs(p *wstest.Peer) {
	for {
		if _, err := p.ReadFrame(); err != nil {
			return
		}
	}
}
