package integration

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/client"
)

// buildCLI builds cmd/wsrpc once per test binary.
var buildCLI = sync.OnceValues(func() (string, error) {
	dir, err := tempDirOutsideTest()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "wsrpc")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/wsrpc").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// serveProc is a running `wsrpc serve`.
type serveProc struct {
	cmd  *exec.Cmd
	addr string
	done chan error
}

var listening = regexp.MustCompile(`listening on ws://([0-9.]+:[0-9]+)/rpc`)

func startServe(t *testing.T, bin, addr string) *serveProc {
	t.Helper()
	var lastErr error
	for range 50 { // a port just released may take a moment to be free
		p, err := tryServe(bin, addr)
		if err == nil {
			t.Cleanup(func() {
				p.cmd.Process.Kill()
				<-p.done
			})
			return p
		}
		lastErr = err
		time.Sleep(20 * time.Millisecond) // retry pacing, not synchronisation
	}
	t.Fatalf("wsrpc serve --addr %s: %v", addr, lastErr)
	return nil
}

func tryServe(bin, addr string) (*serveProc, error) {
	cmd := exec.Command(bin, "serve", "--addr", addr, "--drain-timeout", "10s", "--log-level", "error")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &serveProc{cmd: cmd, done: make(chan error, 1)}
	lines := bufio.NewScanner(stderr)
	found := make(chan string, 1)
	go func() {
		var last string
		for lines.Scan() {
			last = lines.Text()
			if m := listening.FindStringSubmatch(last); m != nil {
				found <- m[1]
				break
			}
		}
		close(found)
		io.Copy(io.Discard, stderr) // keep draining until the process exits
		p.done <- cmd.Wait()
	}()
	select {
	case a, ok := <-found:
		if !ok {
			return nil, fmt.Errorf("exited without listening: %v", <-p.done)
		}
		p.addr = a
		return p, nil
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		return nil, errors.New("no listening line")
	}
}

// TestGracefulRestartOfTheRealBinary: `wsrpc serve` under load from
// reconnecting clients gets SIGTERM; it drains and exits 0; a new process
// takes the same port; no idempotent call is lost.
func TestGracefulRestartOfTheRealBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the wsrpc binary; skipped with -short")
	}
	bin, err := buildCLI()
	if err != nil {
		t.Fatal(err)
	}
	old := startServe(t, bin, "127.0.0.1:0")
	url := "ws://" + old.addr + "/rpc"

	var (
		ok, lost atomic.Int64
		progress = make(chan struct{}, 1)
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
	)
	for range 3 {
		c, err := client.Dial(context.Background(), url, client.WithBackoff(5*time.Millisecond, 100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for range 8 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					var out map[string]int
					err := c.Call(ctx, "sleep", map[string]int{"ms": 2}, &out, client.Idempotent())
					cancel()
					if err != nil {
						lost.Add(1)
						errMu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						errMu.Unlock()
					} else {
						ok.Add(1)
					}
					select {
					case progress <- struct{}{}:
					default:
					}
				}
			})
		}
	}
	waitCalls := func(n int64) {
		target := ok.Load() + n
		deadline := time.After(60 * time.Second)
		for ok.Load() < target {
			select {
			case <-progress:
			case <-deadline:
				t.Fatalf("calls stalled at %d (want %d)", ok.Load(), target)
			}
		}
	}
	waitCalls(200)
	for round := range 2 {
		if err := old.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-old.done:
			if err != nil {
				t.Fatalf("round %d: the draining server exited with %v, want 0", round, err)
			}
			old.done <- err // for the cleanup
		case <-time.After(30 * time.Second):
			t.Fatal("the server did not exit after SIGTERM")
		}
		old = startServe(t, bin, old.addr)
		waitCalls(200)
	}
	close(stop)
	wg.Wait()
	if lost.Load() != 0 {
		t.Fatalf("%d idempotent calls lost (first: %v); %d succeeded", lost.Load(), firstErr, ok.Load())
	}
	t.Logf("%d calls across two SIGTERM restarts, none lost", ok.Load())
}
