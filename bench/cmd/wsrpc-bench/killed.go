package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsrpc/wsrpc/rpc"
)

// Killed clients are a child process (this binary with -killed-clients N
// -killed-url URL) that opens N connections to the server, makes one call on
// each, prints "READY N" and waits. The parent then kills it with SIGKILL:
// the kernel closes its sockets, so the server sees N connections end at
// once with no close frame, as when a client machine's process crashes.

// killedReadyTimeout bounds the child's dialing.
const killedReadyTimeout = 60 * time.Second

// serveKilledClients is the child.
func serveKilledClients(ctx context.Context, url string, n int, stdin io.Reader, stdout, stderr io.Writer) int {
	if _, err := raiseNoFile(); err != nil {
		fmt.Fprintf(stderr, "wsrpc-bench killed clients: raise RLIMIT_NOFILE: %v\n", err)
	}
	conns := make([]*tcpConn, n)
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	params := make(rpc.Raw, 16)
	for range min(8, n) {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n) && failed.Load() == nil; i = next.Add(1) - 1 {
				c, err := dialTCP(ctx, url)
				if err == nil {
					conns[i] = c
					err = c.echo(ctx, params)
				}
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.drop(dropFIN)
			}
		}
	}()
	if err := failed.Load(); err != nil {
		fmt.Fprintf(stderr, "wsrpc-bench killed clients: %v\n", *err)
		return 1
	}
	fmt.Fprintf(stdout, "READY %d\n", n)
	// Killed before this returns; the end of stdin (the parent gone) or of
	// ctx is the way out otherwise.
	eof := make(chan struct{})
	go func() { io.Copy(io.Discard, stdin); close(eof) }() // ends with the process if stdin never closes
	select {
	case <-eof:
	case <-ctx.Done():
	}
	return 0
}

// killClients starts the child with n connections to url, waits until it
// says they are ready and kills it with SIGKILL. It returns when the child
// has exited, with the time the signal was sent.
func killClients(ctx context.Context, url string, n int, progress io.Writer) (time.Time, error) {
	childCtx, stop := context.WithCancel(context.Background())
	defer stop()
	cmd, err := selfChild(childCtx, "-killed-clients", strconv.Itoa(n), "-killed-url", url)
	if err != nil {
		return time.Time{}, err
	}
	var errOut strings.Builder
	cmd.Stderr = &errOut // read after Wait, which waits for the copy
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return time.Time{}, err
	}
	defer stdin.Close()
	out, err := cmd.StdoutPipe()
	if err != nil {
		return time.Time{}, err
	}
	if err := cmd.Start(); err != nil {
		return time.Time{}, fmt.Errorf("start the client process: %w", err)
	}
	ready := make(chan string, 1)
	read := make(chan struct{})
	go func() { // owned: waited for below, before Wait
		defer close(read)
		lines := bufio.NewScanner(out)
		if lines.Scan() {
			ready <- lines.Text()
		}
		close(ready)
		io.Copy(io.Discard, out)
	}()
	timeout := time.NewTimer(killedReadyTimeout)
	defer timeout.Stop()
	var line string
	var ok bool
	select {
	case line, ok = <-ready:
	case <-timeout.C:
		err = fmt.Errorf("the client process was not ready within %s", killedReadyTimeout)
	case <-ctx.Done():
		err = ctx.Err()
	}
	killedAt := time.Now()
	cmd.Process.Kill() // SIGKILL, to our own child, by the handle we started it with
	<-read
	werr := cmd.Wait()
	if err != nil {
		return killedAt, err
	}
	if !ok || line != "READY "+strconv.Itoa(n) {
		return killedAt, fmt.Errorf("the client process said %q (%v): %s", line, werr, strings.TrimSpace(errOut.String()))
	}
	if st := cmd.ProcessState; st == nil || st.ExitCode() != -1 {
		return killedAt, errors.New("the client process exited before it was killed")
	}
	if errOut.Len() > 0 {
		fmt.Fprint(progress, errOut.String())
	}
	return killedAt, nil
}
