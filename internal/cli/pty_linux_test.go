//go:build linux

package cli

import (
	"context"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/wsrpc/wsrpc/transport"
)

// pty is a pseudo-terminal: the test types on master and reads what the
// command draws; the command gets tty, the terminal's side.
type pty struct {
	master, tty *os.File
	screen      *syncBuffer // everything the command wrote on the terminal
	done        chan struct{}
}

// newPTY opens a pseudo-terminal (/dev/ptmx, no library). The cleanup
// closes both sides and waits for the reader of master.
func newPTY(t *testing.T) *pty {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no pseudo-terminal: %v", err)
		}
		t.Skipf("no pseudo-terminal (/dev/ptmx, devpts): %v", err)
	}
	var unlock int32
	var n uint32
	if err := ioctl(master.Fd(), syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)); err != nil {
		master.Close()
		t.Fatalf("unlockpt: %v", err)
	}
	if err := ioctl(master.Fd(), syscall.TIOCGPTN, unsafe.Pointer(&n)); err != nil {
		master.Close()
		t.Fatalf("ptsname: %v", err)
	}
	tty, err := os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		t.Fatal(err)
	}
	p := &pty{master: master, tty: tty, screen: &syncBuffer{}, done: make(chan struct{})}
	go func() { // owned: the cleanup closes master and waits
		defer close(p.done)
		io.Copy(p.screen, master)
	}()
	t.Cleanup(func() {
		tty.Close()
		master.Close()
		<-p.done
	})
	return p
}

func (p *pty) typeKeys(t *testing.T, keys string) {
	t.Helper()
	if _, err := io.WriteString(p.master, keys); err != nil {
		t.Fatalf("typing %q: %v", keys, err)
	}
}

// startOn runs the command with the terminal as its stdin and stdout, and
// stderr a buffer.
func startOn(t *testing.T, p *pty, args ...string) *bg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	b := &bg{cancel: cancel, stdout: p.screen, stderr: &syncBuffer{}, ended: make(chan struct{})}
	go func() {
		defer close(b.ended)
		b.code = run(ctx, args, p.tty, p.tty, b.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		<-b.ended
	})
	return b
}

func termios(t *testing.T, f *os.File) syscall.Termios {
	t.Helper()
	var tio syscall.Termios
	if err := ioctl(f.Fd(), syscall.TCGETS, unsafe.Pointer(&tio)); err != nil {
		t.Fatal(err)
	}
	return tio
}

func termFlags(t *testing.T, f *os.File) uint32 { return termios(t, f).Lflag }

func termCC(t *testing.T, f *os.File, i int) uint8 { return termios(t, f).Cc[i] }

// TestConnectPromptIsNotOverwritten: on a terminal, a message arriving
// while a line is half typed is printed above the prompt, and the line is
// drawn again below it, as it was; typing goes on where it was.
func TestConnectPromptIsNotOverwritten(t *testing.T) {
	p := newPTY(t)
	before := termios(t, p.tty)
	push := make(chan string)
	got := make(chan string, 4)
	url := newWSServer(t, nil, func(c *transport.Conn) {
		for {
			select {
			case s := <-push:
				c.Send(context.Background(), transport.Message{Type: transport.Text, Data: []byte(s)})
			case m, ok := <-c.Recv():
				if !ok {
					return
				}
				got <- string(m.Data)
			}
		}
	})
	b := startOn(t, p, "connect", "--no-time", "--linger", "0", url)
	p.screen.waitFor(t, regexp.MustCompile(`\r> \x1b\[K$`), b.ended)
	if termFlags(t, p.tty)&(syscall.ICANON|syscall.ECHO) != 0 {
		t.Error("the terminal is still in line mode")
	}
	if termCC(t, p.tty, syscall.VSUSP) != 0 {
		t.Error("Ctrl-Z still suspends")
	}
	p.typeKeys(t, "hel")
	p.screen.waitFor(t, regexp.MustCompile(`\r> hel\x1b\[K$`), b.ended)
	push <- `{"n":1}`
	// Cleared, printed above, the prompt and "hel" drawn again.
	p.screen.waitFor(t, regexp.MustCompile(`\r\x1b\[K< text: \{"n":1\}\r\r?\n\r> hel\x1b\[K$`), b.ended)
	p.typeKeys(t, "lo\x1b[D\x1b[DXY\r") // two left arrows: "helXYlo"
	if s := <-got; s != "helXYlo" {
		t.Errorf("the server got %q, want the line as typed around the message", s)
	}
	p.typeKeys(t, "\x1b[A\r") // up: the last line again
	if s := <-got; s != "helXYlo" {
		t.Errorf("the history gave %q", s)
	}
	p.typeKeys(t, "\x04") // Ctrl-D on an empty line: the end of input
	if code := b.wait(t); code != exitOK {
		t.Errorf("code = %d, stderr %q", code, b.stderr.String())
	}
	if !strings.Contains(p.screen.String(), "closed: 1000 normal closure") {
		t.Errorf("the screen lacks the close:\n%q", p.screen.String())
	}
	if after := termios(t, p.tty); after != before {
		t.Errorf("the terminal's settings are %+v after connect, were %+v", after, before)
	}
}

// TestConnectPromptJSONRPC: --jsonrpc at the prompt, with the reply
// pretty-printed above it.
func TestConnectPromptJSONRPC(t *testing.T) {
	p := newPTY(t)
	ts := newTestServer(t)
	b := startOn(t, p, "connect", "--no-time", "--jsonrpc", "--linger", "0", ts.url)
	p.screen.waitFor(t, regexp.MustCompile(`\r> \x1b\[K$`), b.ended)
	p.typeKeys(t, "add [1,2]\r")
	p.screen.waitFor(t, regexp.MustCompile(`< text: \{\r*\n  "jsonrpc": "2.0",\r*\n  "id": 1,\r*\n  "result": 3\r*\n\}`), b.ended)
	p.typeKeys(t, "\x04")
	if code := b.wait(t); code != exitOK {
		t.Errorf("code = %d, stderr %q", code, b.stderr.String())
	}
}

// TestBenchProgressOnTerminal: the progress line, with the rate, is drawn
// on stderr when it is a terminal, and erased before the summary.
func TestBenchProgressOnTerminal(t *testing.T) {
	p := newPTY(t)
	ts := newTestServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var stdout syncBuffer
	code := run(ctx, []string{"bench", "-d", "700ms", "-r", "200", "-c", "2", ts.url, "echo", `["x"]`}, strings.NewReader(""), &stdout, p.tty)
	if code != exitOK {
		t.Fatalf("code %d", code)
	}
	p.screen.waitFor(t, regexp.MustCompile(`\r\x1b\[K\d+ calls, 0 errors, [\d.]+m?s, \d+ calls/s, \d+ late(.|\n)*\r\x1b\[K$`), nil)
	if !strings.HasPrefix(stdout.String(), "Summary:\n") {
		t.Errorf("stdout = %q", stdout.String())
	}
}

func TestIsTerminal(t *testing.T) {
	p := newPTY(t)
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for _, tt := range []struct {
		name string
		give any
		want bool
	}{{"pty", p.tty, true}, {"/dev/null", null, false}, {"pipe", w, false}, {"buffer", &syncBuffer{}, false}} {
		if got := isTerminal(tt.give); got != tt.want {
			t.Errorf("isTerminal(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestNotifyContext: Main's context ends with the signal as its cause, and
// the exit status is 128 + its number. The signal is SIGUSR1, sent once to
// this process while notifyContext has it (so it kills nothing).
func TestNotifyContext(t *testing.T) {
	ctx, stop := notifyContext(context.Background(), syscall.SIGUSR1)
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(testTimeout):
		t.Fatal("the signal did not end the context")
	}
	if got := interruptedStatus(ctx); got != 128+int(syscall.SIGUSR1) {
		t.Errorf("status = %d, want %d", got, 128+int(syscall.SIGUSR1))
	}
	if got := context.Cause(ctx).Error(); got != "user defined signal 1 signal received" {
		t.Errorf("cause = %q", got)
	}
	plain, cancel := context.WithCancel(context.Background())
	cancel()
	if got := interruptedStatus(plain); got != exitInterrupted {
		t.Errorf("status of a plain cancel = %d, want 130", got)
	}
	term, cancelTerm := context.WithCancelCause(context.Background())
	cancelTerm(signalCause{syscall.SIGTERM})
	if got := interruptedStatus(term); got != 143 {
		t.Errorf("status after SIGTERM = %d, want 143", got)
	}
}
