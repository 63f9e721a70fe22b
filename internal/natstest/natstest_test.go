package natstest

import (
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func reachable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func TestStartRestartKill(t *testing.T) {
	s := Start(t, true)
	addr := strings.TrimPrefix(s.URL, "nats://")
	if !strings.HasPrefix(addr, "127.0.0.1:") || !reachable(addr) {
		t.Fatalf("%s: not listening on loopback", s.URL)
	}
	if !strings.Contains(s.Logs(), "JetStream") {
		t.Fatalf("started without JetStream:\n%s", s.Logs())
	}
	s.Restart(t)
	if !reachable(addr) {
		t.Fatal("not listening after Restart")
	}
	s.Kill()
	if reachable(addr) {
		t.Fatal("still listening after Kill")
	}
	s.Stop() // stopping a stopped server does nothing
	s.StartAgain(t)
	if !reachable(addr) {
		t.Fatal("not listening after StartAgain")
	}
}
