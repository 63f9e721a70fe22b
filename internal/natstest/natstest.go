// Package natstest runs a real nats-server (Debian's package nats-server)
// for tests and benchmarks: on a random loopback port, with JetStream's
// store in a temporary directory, started and stopped by the caller.
//
// It only runs the binary, so the core module stays free of NATS's Go
// packages; the NATS broker's module and bench/ use it.
package natstest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Install says how to get the binary.
const Install = "install Debian's nats-server package (apt-get install nats-server)"

// Binary returns the path of nats-server, looked up in PATH and then in
// /usr/sbin and /usr/bin (where Debian puts it, outside a user's PATH).
func Binary() (string, error) {
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/nats-server", "/usr/bin/nats-server"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("nats-server not found: " + Install)
}

// Server is a running nats-server.
type Server struct {
	URL       string // nats://127.0.0.1:PORT
	Port      int
	Dir       string // JetStream's store
	JetStream bool

	bin    string
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan error // the result of cmd.Wait, from the goroutine that waits
	logs   *readyWriter
}

// Start starts nats-server (with JetStream when js is set) and stops it
// when tb ends. Without the binary it skips tb, or fails it when CI is set.
func Start(tb testing.TB, js bool) *Server {
	tb.Helper()
	if _, err := Binary(); err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("%v (CI is set: the binary is required)", err)
		}
		tb.Skipf("skipped: %v", err)
	}
	s, err := Launch(js, tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Stop)
	return s
}

// Launch starts nats-server on a free loopback port, with its JetStream
// store (when js is set) in dir. The caller stops it.
func Launch(js bool, dir string) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, JetStream: js, Dir: dir}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.Port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	s.URL = "nats://127.0.0.1:" + strconv.Itoa(s.Port)
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) start() error {
	args := []string{"-a", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-n", "natstest"}
	if s.JetStream {
		args = append(args, "-js", "-sd", s.Dir)
	}
	var err error
	for try := 0; try < 50; try++ { // the port may still be held for a moment after a stop
		w := &readyWriter{ready: make(chan struct{})}
		cmd := exec.Command(s.bin, args...)
		cmd.Stdout, cmd.Stderr = w, w
		if err = cmd.Start(); err != nil {
			return fmt.Errorf("natstest: start %s: %w", s.bin, err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case <-w.ready:
			s.mu.Lock()
			s.cmd, s.exited, s.logs = cmd, exited, w
			s.mu.Unlock()
			return nil
		case err = <-exited:
			err = fmt.Errorf("natstest: nats-server exited (%v): %s", err, w.String())
			time.Sleep(100 * time.Millisecond)
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("natstest: nats-server not ready after 15s: %s", w.String())
		}
	}
	return err
}

// Stop stops the server (SIGTERM, then SIGKILL after 5 s) and waits for it.
// Stopping a stopped server does nothing.
func (s *Server) Stop() { s.stop(syscall.SIGTERM) }

// Kill kills the server at once, as a crash would.
func (s *Server) Kill() { s.stop(syscall.SIGKILL) }

func (s *Server) stop(sig syscall.Signal) {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd, s.exited = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Restart stops the server and starts it again on the same port with the
// same store.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		tb.Fatal(err)
	}
}

// StartAgain starts a server stopped with Stop or Kill.
func (s *Server) StartAgain(tb testing.TB) {
	tb.Helper()
	if err := s.start(); err != nil {
		tb.Fatal(err)
	}
}

// Logs returns what the running server has printed.
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logs == nil {
		return ""
	}
	return s.logs.String()
}

// readyWriter keeps the server's output (up to 1 MiB) and is closed when
// it prints that it is ready.
type readyWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	ready chan struct{}
	seen  bool
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() < 1<<20 {
		w.buf.Write(p)
	}
	if !w.seen && bytes.Contains(w.buf.Bytes(), []byte("Server is ready")) {
		w.seen = true
		close(w.ready)
	}
	return len(p), nil
}

func (w *readyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
