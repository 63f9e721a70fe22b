package transport_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/wstest"
	"github.com/wsrpc/wsrpc/transport"
)

// A TLS peer that ends the connection with a close_notify in the middle of a
// message: tls.Conn reports that as io.EOF of its own, with no failed read
// beneath it, and the dialing side must still not take the part it got for
// the whole message.
func TestTLSCloseNotifyMidMessage(t *testing.T) {
	for _, tt := range []struct {
		name string
		give []byte // written after the handshake, before the close_notify
	}{
		{"after the first fragment", append([]byte{0x01, 11}, "first half "...)},
		{"inside a payload", append([]byte{0x82, 126, 0x01, 0x2c}, make([]byte, 100)...)},
		{"after a header", []byte{0x82, 126, 0x01, 0x2c}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				conn, brw, err := http.NewResponseController(w).Hijack()
				if err != nil {
					return
				}
				defer conn.Close() // a *tls.Conn: Close sends close_notify
				accept := wstest.AcceptKey(r.Header.Get("Sec-WebSocket-Key"))
				brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
					"Sec-WebSocket-Accept: " + accept + "\r\n\r\n")
				brw.Write(tt.give)
				brw.Flush()
			}))
			defer s.Close()
			c := dial(t, "wss"+strings.TrimPrefix(s.URL, "https"), &transport.DialOptions{HTTPClient: s.Client()})
			select {
			case m, ok := <-c.Recv():
				if ok {
					t.Fatalf("a cut-off message was delivered: %v %d bytes", m.Type, len(m.Data))
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the connection did not end")
			}
			if err := c.Err(); !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
				t.Fatalf("Err = %v, want the connection lost", err)
			}
		})
	}
}
