package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
	"github.com/wsrpc/wsrpc/transport"
)

// wantRefused checks that s has refused one handshake, for reason.
func wantRefused(t *testing.T, s *server.Server, reason server.Refusal) {
	t.Helper()
	st := s.Stats()
	for _, r := range server.Refusals() {
		want := uint64(0)
		if r == reason {
			want = 1
		}
		if got := st.Refused[r]; got != want {
			t.Errorf("Refused[%s] = %d, want %d", r, got, want)
		}
	}
}

// TestStatsRefusedSubprotocol: a handshake without the subprotocol the
// server requires is upgraded, then closed with 1008, and counted.
func TestStatsRefusedSubprotocol(t *testing.T) {
	s := newServer(t, rpc.WithSubprotocols(rpc.SubprotocolBinary))
	addr := startHTTP(t, s)
	rc := dialRaw(t, addr)
	req := strings.Replace(handshake(addr, ""), "Sec-WebSocket-Protocol: "+rpc.SubprotocolJSON+"\r\n", "", 1)
	if resp := rc.RoundTrip(req); resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// Counted before the close frame is sent.
	rc.Conn.SetReadDeadline(time.Now().Add(closeBound))
	if _, err := rc.Reader.ReadByte(); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, s, server.RefusedSubprotocol)
}

// TestStatsTraffic: connections and their messages are counted, and the
// counts of a connection that ends stay in the totals.
func TestStatsTraffic(t *testing.T) {
	registered, ended := make(chan struct{}, 2), make(chan struct{}, 2)
	s := newServer(t, server.WithOnConnect(func(*rpc.Peer) { registered <- struct{}{} }),
		server.WithOnDisconnect(func(*rpc.Peer, error) { ended <- struct{}{} }))
	url := start(t, s)
	var ps []*rpc.Peer
	for range 2 {
		p := dial(t, url, &transport.DialOptions{Subprotocols: []string{rpc.SubprotocolJSON}})
		<-registered // a connection may serve calls before it is in the registry
		ps = append(ps, p)
		for range 3 {
			var out []string
			if err := p.Call(ctxT(t), "echo", []string{"hi"}, &out); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A request is counted as it is read, before it is served; a reply
	// once written, which may be after the client has it.
	st := s.Stats()
	if st.Conns != 2 || st.Accepted != 2 || st.MessagesIn != 6 || st.MessagesOut > 6 {
		t.Fatalf("Stats = %+v, want 2 connections, 2 accepted, 6 messages in", st)
	}
	var clients transport.Stats
	for _, p := range ps {
		p.Close()
		<-ended // the connection has left the registry: its counts are final
		clients = clients.Add(p.Conn().Stats())
		if now := s.Stats(); now.MessagesIn != st.MessagesIn || now.MessagesOut < st.MessagesOut || now.BytesOut < st.BytesOut {
			t.Errorf("a counter went down as a connection ended: %+v, was %+v", now, st)
		}
	}
	after := s.Stats()
	if after.Conns != 0 || after.Accepted != 2 || after.MessagesIn != 6 || after.MessagesOut != 6 {
		t.Errorf("after the connections ended: %+v, want 0 open, 2 accepted, 6 messages each way", after)
	}
	if after.BytesIn != clients.BytesOut || after.BytesOut != clients.BytesIn {
		t.Errorf("server bytes in/out %d/%d, clients sent/received %d/%d", after.BytesIn, after.BytesOut, clients.BytesOut, clients.BytesIn)
	}
}
