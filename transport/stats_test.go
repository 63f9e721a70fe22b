package transport_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wsrpc/wsrpc/transport"
)

// TestStatsCountBothSides: each side counts the data messages and payload
// bytes it sends and receives, whole messages and SendReader's frames
// alike, and a message received in parts once.
func TestStatsCountBothSides(t *testing.T) {
	served := make(chan transport.Stats, 1)
	srv := newServer(t, &transport.AcceptOptions{ConnOptions: transport.ConnOptions{PartsAbove: 100}}, func(c *transport.Conn) {
		n := 0
		for m := range c.Recv() {
			if !m.Partial {
				n++
			}
			if n == 3 {
				// Read everything the client sent: reply once, then wait for
				// its close.
				if err := c.Send(ctxT(t), transport.Message{Type: transport.Text, Data: []byte("done")}); err != nil {
					t.Error(err)
				}
			}
		}
		served <- c.Stats()
	})
	c := dial(t, srv.wsURL(), nil)
	send := func(m transport.Message) {
		t.Helper()
		if err := c.Send(ctxT(t), m); err != nil {
			t.Fatal(err)
		}
	}
	send(transport.Message{Type: transport.Text, Data: []byte("hello")})   // 5 bytes
	send(transport.Message{Type: transport.Binary, Data: make([]byte, 0)}) // 0 bytes
	big := bytes.Repeat([]byte("x"), 250)                                  // parts on the server: 100+100+50
	if err := c.SendReader(ctxT(t), transport.Binary, bytes.NewReader(big)); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, c); string(m.Data) != "done" {
		t.Fatalf("got %q", m.Data)
	}
	c.Close(transport.StatusNormalClosure, "")
	got := c.Stats()
	want := transport.Stats{MessagesOut: 3, BytesOut: 255, MessagesIn: 1, BytesIn: 4}
	if got != want {
		t.Errorf("client Stats = %+v, want %+v", got, want)
	}
	s := <-served
	if want := (transport.Stats{MessagesIn: 3, BytesIn: 255, MessagesOut: 1, BytesOut: 4}); s != want {
		t.Errorf("server Stats = %+v, want %+v", s, want)
	}
	if sum := got.Add(s); sum.MessagesIn != 4 || sum.BytesOut != 259 {
		t.Errorf("Add = %+v", sum)
	}
}

// TestAcceptErrorStatus: a refused handshake says the status it got.
func TestAcceptErrorStatus(t *testing.T) {
	errc := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := transport.Accept(w, r, nil)
		errc <- err
	}))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	req.Header.Set("Origin", "http://evil.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var ae *transport.AcceptError
	if err := <-errc; !errors.As(err, &ae) || ae.Status != http.StatusForbidden || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("err = %v (%T), response %d; want an AcceptError with 403", err, err, resp.StatusCode)
	}
}
