package cli

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// openPTY opens a pseudo-terminal pair: what a program writes to tty
// (a terminal to isTerminal) is read from pty.
func openPTY(t *testing.T) (pty, tty *os.File) {
	t.Helper()
	pty, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	unlock := int32(0)
	if err := ioctl(pty.Fd(), syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)); err != nil {
		pty.Close()
		t.Fatalf("unlockpt: %v", err)
	}
	var n uint32
	if err := ioctl(pty.Fd(), syscall.TIOCGPTN, unsafe.Pointer(&n)); err != nil {
		pty.Close()
		t.Fatalf("ptsname: %v", err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		pty.Close()
		t.Fatalf("open the terminal: %v", err)
	}
	t.Cleanup(func() { tty.Close(); pty.Close() })
	return pty, tty
}

// TestSubscribeAutoFormatOnATerminal: with the default --format auto,
// subscribe prints text on a terminal (and JSON lines elsewhere, which
// TestSubscribeSinceRecovers checks).
func TestSubscribeAutoFormatOnATerminal(t *testing.T) {
	pty, tty := openPTY(t)
	if !isTerminal(tty) {
		t.Fatal("the pseudo-terminal is not taken for a terminal")
	}
	ps := newPubsubServer(t)
	var want []string
	var epoch string
	for i := 1; i <= 3; i++ {
		p := ps.publish(t, "log", i)
		epoch = p.Epoch
		if i > 1 {
			want = append(want, fmt.Sprintf("log %d:%s %d", p.Offset, p.Epoch, i))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var stderr syncBuffer
	code := run(ctx, []string{"subscribe", "--since", "1:" + epoch, "--count", "2", ps.url, "log"}, strings.NewReader(""), tty, &stderr)
	if code != exitOK {
		t.Fatalf("code %d; stderr:\n%s", code, stderr.String())
	}
	_ = pty.SetReadDeadline(time.Now().Add(testTimeout)) // a test that fails does not hang on the read
	lines := bufio.NewScanner(pty)
	for _, w := range want {
		if !lines.Scan() {
			t.Fatalf("the terminal got no more lines, want %q: %v", w, lines.Err())
		}
		if got := strings.TrimRight(lines.Text(), "\r"); got != w {
			t.Fatalf("the terminal got %q, want %q", got, w)
		}
	}
}
