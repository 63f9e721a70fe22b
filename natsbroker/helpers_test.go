package natsbroker_test

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsrpc/wsrpc/natsbroker"
	"github.com/wsrpc/wsrpc/pubsub"
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// node is a broker as one process has it, with what it delivered.
type node struct {
	t  testing.TB
	b  *natsbroker.Broker
	ch chan pubsub.Publication
}

// newNode connects a broker to url and opens it, collecting deliveries.
func newNode(t testing.TB, url string, opts natsbroker.Options, natsOpts ...nats.Option) *node {
	t.Helper()
	b, err := natsbroker.Connect(url, opts, natsOpts...)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, b: b, ch: make(chan pubsub.Publication, 100_000)}
	if err := b.Open(func(p pubsub.Publication) { n.ch <- p }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return n
}

func (n *node) subscribe(pattern string) {
	n.t.Helper()
	if err := n.b.Subscribe(ctxT(n.t), pattern); err != nil {
		n.t.Fatal(err)
	}
}

func (n *node) publish(topic, data string, history int) pubsub.Position {
	n.t.Helper()
	pos, err := n.b.Publish(ctxT(n.t), topic, []byte(data), pubsub.PublishOptions{HistorySize: history})
	if err != nil {
		n.t.Fatalf("publish %s: %v", topic, err)
	}
	return pos
}

// next returns the next delivery, failing after 10 s.
func (n *node) next() pubsub.Publication {
	n.t.Helper()
	select {
	case p := <-n.ch:
		return p
	case <-time.After(10 * time.Second):
		n.t.Fatal("no publication delivered in 10s")
	}
	return pubsub.Publication{}
}

// quiet fails if anything is delivered within d.
func (n *node) quiet(d time.Duration) {
	n.t.Helper()
	select {
	case p := <-n.ch:
		n.t.Fatalf("unexpected delivery %s %d %q", p.Topic, p.Offset, p.Data)
	case <-time.After(d):
	}
}

// eventually polls cond for up to 15 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// proxy is a TCP proxy on loopback in front of a NATS server, which a test
// cuts to lose one process's connection while the others keep theirs.
type proxy struct {
	t      testing.TB
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newProxy(t testing.TB, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, ln: ln, target: target}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) url() string { return "nats://" + p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		p.wg.Go(func() { _, _ = io.Copy(u, c); u.Close() })
		p.wg.Go(func() { _, _ = io.Copy(c, u); c.Close() })
	}
}

// cut closes every proxied connection and refuses new ones until heal.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) heal() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// rawNATS connects a plain nats.go client to url, closed when t ends.
func rawNATS(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// streamState returns the state of the stream name.
func streamState(t testing.TB, js jetstream.JetStream, name string) jetstream.StreamState {
	t.Helper()
	st, err := js.Stream(ctxT(t), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return info.State
}
