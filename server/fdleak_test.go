package server_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/internal/wstest"
	"github.com/wsrpc/wsrpc/server"
)

// These tests count the process's file descriptors (Linux: /proc/self/fd)
// and goroutines while clients end their connections every way a client can
// without a close frame: a FIN, a RST, a killed process. Every one must be
// released, whoever ends the connection.

func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("counting file descriptors needs /proc/self/fd (Linux): %v", err)
	}
	return len(ents)
}

// settle waits up to within for the fd and goroutine counts to come back to
// at most their baselines (goroutines with slack for the runtime's own), and
// fails the test naming what stayed.
func settle(t *testing.T, what string, fds, goroutines int, within time.Duration) {
	t.Helper()
	const goroutineSlack = 2
	deadline := time.Now().Add(within)
	for {
		f, g := openFDs(t), runtime.NumGoroutine()
		if f <= fds && g <= goroutines+goroutineSlack {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d fds (baseline %d) and %d goroutines (baseline %d) %s later", what, f, fds, g, goroutines, within)
		}
		time.Sleep(time.Millisecond) // polling a count; nothing to wait on
	}
}

// listen serves s on a loopback port and returns its ws:// URL; s is closed
// at cleanup.
func listen(t *testing.T, s *server.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ln) }()
	t.Cleanup(func() { s.Close(); <-done })
	return "ws://" + ln.Addr().String() + "/rpc"
}

func echoServer(t *testing.T) *server.Server {
	t.Helper()
	mux := handler.NewMux()
	mux.Handle("echo", handler.Func(func(_ context.Context, s []string) ([]string, error) { return s, nil }))
	s, err := server.New(mux)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// callRaw makes one JSON-RPC call on a raw peer and reads its reply.
func callRaw(t testing.TB, p *wstest.Peer, id int) {
	t.Helper()
	if err := p.WriteFrame(wstest.Frame{Fin: true, Opcode: wstest.OpText,
		Payload: fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"echo","params":["hi"]}`, id)}); err != nil {
		t.Fatal(err)
	}
	f, err := p.ReadFrame()
	if err != nil || !strings.Contains(string(f.Payload), `"result":["hi"]`) {
		t.Fatalf("reply: %v %q", err, f.Payload)
	}
}

func TestAbruptDropsReleaseSockets(t *testing.T) {
	url := listen(t, echoServer(t))
	// Warm up: one clean connection, so lazily made resources (the
	// listener's poller, pools) are in the baseline.
	p, _, err := wstest.DialPeer(ctxT(t), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	callRaw(t, p, 0)
	p.CloseFrame(1000, "")
	p.ReadClose()
	p.Close()
	fds, goroutines := openFDs(t), runtime.NumGoroutine()
	settle(t, "after a clean close", fds, goroutines, time.Second)

	cycles := 200
	if testing.Short() {
		cycles = 40
	}
	for i := range cycles {
		p, _, err := wstest.DialPeer(ctxT(t), url, nil)
		if err != nil {
			t.Fatalf("cycle %d: dial: %v", i, err)
		}
		p.SetDeadline(time.Now().Add(5 * time.Second))
		callRaw(t, p, i)
		how := "FIN"
		if i%2 == 0 {
			p.Close()
		} else {
			how = "RST"
			p.Reset()
		}
		settle(t, fmt.Sprintf("cycle %d (%s)", i, how), fds, goroutines, time.Second)
	}
}

// TestKilledClientProcessReleasesSockets runs clients in a child process
// (this test binary again), kills it with SIGKILL and checks that every
// server socket is released.
func TestKilledClientProcessReleasesSockets(t *testing.T) {
	if os.Getenv("WSRPC_TEST_CHILD_URL") != "" {
		t.Skip("this is the child process")
	}
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("counting file descriptors needs /proc/self/fd (Linux)")
	}
	url := listen(t, echoServer(t))
	fds, goroutines := openFDs(t), runtime.NumGoroutine()
	const conns = 50
	for round := range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestChildHoldsConnections$")
		cmd.Env = append(os.Environ(), "WSRPC_TEST_CHILD_URL="+url, "WSRPC_TEST_CHILD_CONNS="+strconv.Itoa(conns))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan bool, 1)
		go func() { // ends with the pipe, when the child exits
			sc := bufio.NewScanner(out)
			ok := false
			for sc.Scan() {
				if sc.Text() == "ready" {
					ok = true
					ready <- true
				}
			}
			if !ok {
				ready <- false
			}
		}()
		select {
		case ok := <-ready:
			if !ok {
				cmd.Wait()
				t.Fatal("child exited before its connections were ready")
			}
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("child not ready after 20 s")
		}
		if got := openFDs(t); got < fds+conns {
			t.Fatalf("round %d: %d fds with %d child connections open, baseline %d", round, got, conns, fds)
		}
		cmd.Process.Kill()
		cmd.Wait()
		settle(t, fmt.Sprintf("round %d: after killing a client process with %d connections", round, conns), fds, goroutines, 2*time.Second)
	}
}

// TestChildHoldsConnections is the child of
// TestKilledClientProcessReleasesSockets: it opens connections, makes a call
// on each, says "ready" and waits to be killed.
func TestChildHoldsConnections(t *testing.T) {
	url := os.Getenv("WSRPC_TEST_CHILD_URL")
	if url == "" {
		t.Skip("run by TestKilledClientProcessReleasesSockets in a child process")
	}
	n, _ := strconv.Atoi(os.Getenv("WSRPC_TEST_CHILD_CONNS"))
	peers := make([]*wstest.Peer, 0, n)
	for i := range n {
		p, _, err := wstest.DialPeer(ctxT(t), url, nil)
		if err != nil {
			t.Fatal(err)
		}
		callRaw(t, p, i)
		peers = append(peers, p)
	}
	fmt.Println("ready")
	<-ctxT(t).Done() // killed long before
	for _, p := range peers {
		p.Close()
	}
}
