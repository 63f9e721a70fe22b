package transport

import (
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
)

// readWatch remembers whether a read from the network failed.
// coder/websocket reports a connection lost in the middle of a message (after
// a complete fragment, or right after a frame header) as the end of that
// message, io.EOF; this flag is how the reader tells the two apart. It must
// sit above TLS: tls.Conn answers a close_notify with io.EOF of its own,
// without any failed read beneath it.
type readWatch struct {
	broken   atomic.Bool
	deferred error // came with data; returned by the next read (the reader's own)
}

// pending returns, once, an error kept from an earlier read.
func (w *readWatch) pending() error {
	err := w.deferred
	if err != nil {
		w.deferred = nil
		w.broken.Store(true)
	}
	return err
}

// took returns the outcome of a read. An error that comes with data
// (tls.Conn's io.EOF after a close_notify, say) is kept for the next read,
// so that the data is not mistaken for a broken message.
func (w *readWatch) took(n int, err error) (int, error) {
	if err == nil {
		return n, nil
	}
	if n > 0 {
		w.deferred = err
		return n, nil
	}
	w.broken.Store(true)
	return 0, err
}

// watchedBody is the connection a dialed WebSocket reads from: the body of
// the 101 response, above TLS, whatever RoundTripper made it.
type watchedBody struct {
	io.ReadWriteCloser
	watch readWatch
}

func (b *watchedBody) Read(p []byte) (int, error) {
	if err := b.watch.pending(); err != nil {
		return 0, err
	}
	return b.watch.took(b.ReadWriteCloser.Read(p))
}

// drained reports whether every byte that follows the 101 response will
// be read from cork, the connection beneath, with nothing kept in net/http's
// buffer. It is asked once, before anything reads the body. net/http's body
// of a 101 response reads from that buffer while it holds something, and
// from the connection otherwise: an empty read reaches cork only then. A
// body of another kind (another RoundTripper's) is not asked: false.
func (b *watchedBody) drained(cork *corkConn) bool {
	if fmt.Sprintf("%T", b.ReadWriteCloser) != "*http.readWriteCloserBody" {
		return false
	}
	cork.emptyRead = false
	_, err := b.ReadWriteCloser.Read(nil)
	return err == nil && cork.emptyRead
}

// watchingTransport wraps the body of a 101 response in a watchedBody and
// keeps it in body, for one handshake.
type watchingTransport struct {
	rt   http.RoundTripper
	body **watchedBody
}

func (t watchingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusSwitchingProtocols {
		if rwc, ok := resp.Body.(io.ReadWriteCloser); ok {
			b := &watchedBody{ReadWriteCloser: rwc}
			resp.Body = b
			*t.body = b
		}
	}
	return resp, err
}

// watching returns a copy of hc whose handshake's connection is watched, and
// where the watchedBody will be once the handshake is done.
func watching(hc *http.Client) (*http.Client, **watchedBody) {
	c := *hc
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	body := new(*watchedBody)
	c.Transport = watchingTransport{rt: rt, body: body}
	return &c, body
}
