package integration

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
	"github.com/wsrpc/wsrpc/transport"
)

// TestStaggeredGoodbyeSpreadsReconnects: reconnecting clients of an
// instance that shuts down with a goodbye window reach the other instance
// spread over the window, each after the retry hint, and lose no call;
// without the window they arrive together. The distributions are logged.
func TestStaggeredGoodbyeSpreadsReconnects(t *testing.T) {
	const clients, hint = 30, 100 * time.Millisecond
	for _, window := range []time.Duration{0, 1200 * time.Millisecond} {
		t.Run("window="+window.String(), func(t *testing.T) {
			var (
				mu       sync.Mutex
				arrivals []time.Duration
				began    time.Time
			)
			mux := handler.NewMux()
			mux.Handle("echo", handler.Func(func(_ context.Context, n int) (int, error) { return n, nil }))
			going := newLoopbackServer(t, mux, server.WithGoodbyeWindow(window), server.WithRetryAfter(hint))
			other := newLoopbackServer(t, mux, server.WithOnConnect(func(*rpc.Peer) {
				mu.Lock()
				arrivals = append(arrivals, time.Since(began))
				mu.Unlock()
			}))
			calls := newCallLoops()
			for range clients {
				c, err := client.Dial(context.Background(), going.url, client.WithEndpoints(other.url),
					client.WithBackoff(5*time.Millisecond, 50*time.Millisecond))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				calls.start(1, func(ctx context.Context, n int) error {
					var got int
					if err := c.Call(ctx, "echo", n, &got, client.Idempotent()); err != nil || got != n {
						return fmt.Errorf("echo %d: %d, %w", n, got, err)
					}
					return nil
				})
			}
			mu.Lock()
			began = time.Now()
			mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := going.srv.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown = %v", err)
			}
			for {
				mu.Lock()
				n := len(arrivals)
				mu.Unlock()
				if n >= clients {
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("%d of %d clients reached the other instance", n, clients)
				}
				time.Sleep(5 * time.Millisecond) // polling pace
			}
			calls.stop()
			mu.Lock()
			got := slices.Clone(arrivals)
			mu.Unlock()
			slices.Sort(got)
			n := len(got)
			t.Logf("reconnects at the other instance after Shutdown began (window %v, hint %v): min %v, p25 %v, p50 %v, p75 %v, max %v",
				window, hint, got[0].Round(time.Millisecond), got[n/4].Round(time.Millisecond), got[n/2].Round(time.Millisecond),
				got[3*n/4].Round(time.Millisecond), got[n-1].Round(time.Millisecond))
			if got[0] < hint {
				t.Errorf("a client reconnected %v after Shutdown began, before the retry hint of %v", got[0], hint)
			}
			if window > 0 && got[n-1]-got[0] < window/4 {
				t.Errorf("reconnects spread over %v, want most of the %v window", got[n-1]-got[0], window)
			}
			if n := calls.lost.Load(); n != 0 {
				t.Errorf("%d idempotent calls lost (first: %v)", n, calls.first())
			}
		})
	}
}

// loopbackServer is a server.Server serving on a loopback port of its own.
type loopbackServer struct {
	srv *server.Server
	url string
}

func newLoopbackServer(t *testing.T, h handler.Handler, opts ...server.Option) *loopbackServer {
	t.Helper()
	srv, err := server.New(h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve = %v", err)
		}
	})
	return &loopbackServer{srv: srv, url: "ws://" + ln.Addr().String() + "/rpc"}
}

var healthLine = regexp.MustCompile(`health checks on (http://[0-9.]+:[0-9]+)/readyz`)

// TestServeSIGTERMFollowsReadiness: the real `wsrpc serve` binary with the
// deployment flags, sent SIGTERM: its readiness goes off on the health
// listener while the main listener still accepts handshakes (the ready
// delay), a client's idempotent calls keep working across the drain and the
// successor on the same port, the process exits 0, and the health listener
// answers until then.
func TestServeSIGTERMFollowsReadiness(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the wsrpc binary; skipped with -short")
	}
	bin, err := buildCLI()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--health-addr", "127.0.0.1:0",
		"--ready-delay", "2s", "--goodbye-window", "300ms", "--drain-timeout", "10s",
		"--handshake-rate", "1000", "--log-level", "warn")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 2)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if l := sc.Text(); listening.MatchString(l) || healthLine.MatchString(l) {
				lines <- l
			}
		}
		io.Copy(io.Discard, stderr)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
		}
	})
	var addr, health string
	for addr == "" || health == "" {
		select {
		case l := <-lines:
			if m := listening.FindStringSubmatch(l); m != nil {
				addr = m[1]
			} else {
				health = healthLine.FindStringSubmatch(l)[1]
			}
		case err := <-exited:
			t.Fatalf("wsrpc serve exited before listening: %v", err)
		case <-time.After(20 * time.Second):
			t.Fatal("no listening and health lines")
		}
	}
	url := "ws://" + addr + "/rpc"
	probe := func(path string) int {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get(health + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if probe("/readyz") != http.StatusOK || probe("/livez") != http.StatusOK {
		t.Fatal("the health checks do not answer 200 before the signal")
	}
	c, err := client.Dial(context.Background(), url, client.WithBackoff(5*time.Millisecond, 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	calls := newCallLoops()
	calls.start(4, func(ctx context.Context, _ int) error {
		return c.Call(ctx, "sleep", map[string]int{"ms": 2}, nil, client.Idempotent())
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for probe("/readyz") != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("/readyz never answered 503 after SIGTERM")
		}
		time.Sleep(5 * time.Millisecond) // polling pace, as a load balancer's
	}
	// Not ready, and still accepting: the ready delay.
	tc, err := transport.Dial(context.Background(), url, &transport.DialOptions{Subprotocols: rpc.Subprotocols()})
	if err != nil {
		t.Fatalf("handshake during the ready delay: %v", err)
	}
	tc.CloseNow()
	if code := probe("/livez"); code != http.StatusOK {
		t.Fatalf("/livez while draining = %d, want 200", code)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("wsrpc serve exited with %v after SIGTERM, want 0", err)
		}
		exited <- err // for the cleanup
	case <-time.After(30 * time.Second):
		t.Fatal("wsrpc serve did not exit after SIGTERM")
	}
	if code := probe("/readyz"); code != 0 {
		t.Fatalf("the health listener answered %d after the exit", code)
	}
	// The successor on the same port: the client's calls go on there.
	before := calls.ok.Load()
	startServe(t, bin, addr)
	for calls.ok.Load() < before+50 {
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatalf("calls stalled at %d after the restart", calls.ok.Load())
		}
		time.Sleep(5 * time.Millisecond) // polling pace
	}
	calls.stop()
	if n := calls.lost.Load(); n != 0 {
		t.Fatalf("%d idempotent calls lost across the drain and restart (%d succeeded; first: %v)", n, calls.ok.Load(), calls.first())
	}
	t.Logf("%d calls across SIGTERM with a 2s ready delay and a 300ms goodbye window, none lost", calls.ok.Load())
}

// TestDeploymentDocCloseCodes: every close code of docs/PROTOCOL.md's
// section 9 has a row in docs/DEPLOYMENT.md's "What each close code means
// to a client", and that table names no code the protocol does not.
func TestDeploymentDocCloseCodes(t *testing.T) {
	codes := func(file, heading string) map[string]bool {
		t.Helper()
		doc, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		_, section, ok := strings.Cut(string(doc), heading)
		if !ok {
			t.Fatalf("%s has no section %q", file, heading)
		}
		section, _, _ = strings.Cut(section, "\n## ")
		out := map[string]bool{}
		for _, line := range strings.Split(section, "\n") {
			if !strings.HasPrefix(line, "| ") {
				continue
			}
			first, _, _ := strings.Cut(line[2:], "|")
			for _, c := range regexp.MustCompile(`\b[1-4][0-9]{3}\b`).FindAllString(first, -1) {
				out[c] = true
			}
		}
		if len(out) == 0 {
			t.Fatalf("%s: no close codes in %q", file, heading)
		}
		return out
	}
	protocol := codes("../docs/PROTOCOL.md", "\n## 9. Close codes\n")
	deployment := codes("../docs/DEPLOYMENT.md", "\n## 8. What each close code means to a client\n")
	for c := range protocol {
		if !deployment[c] {
			t.Errorf("close code %s of PROTOCOL.md section 9 has no row in DEPLOYMENT.md", c)
		}
	}
	for c := range deployment {
		if !protocol[c] {
			t.Errorf("DEPLOYMENT.md explains close code %s, which PROTOCOL.md section 9 does not list", c)
		}
	}
}

// callLoops runs calls in loops until stopped, counting those that
// succeed and those that fail.
type callLoops struct {
	ok, lost atomic.Int64
	done     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	err      error // the first failure
}

func newCallLoops() *callLoops { return &callLoops{done: make(chan struct{})} }

// start runs n loops of call, each with its own count from 0 and a 30 s
// bound per call.
func (l *callLoops) start(n int, call func(ctx context.Context, i int) error) {
	for range n {
		l.wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-l.done:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				err := call(ctx, i)
				cancel()
				if err == nil {
					l.ok.Add(1)
					continue
				}
				l.lost.Add(1)
				l.mu.Lock()
				if l.err == nil {
					l.err = err
				}
				l.mu.Unlock()
			}
		})
	}
}

// stop ends the loops and waits for them.
func (l *callLoops) stop() {
	close(l.done)
	l.wg.Wait()
}

func (l *callLoops) first() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}
