package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"
)

// The keepalive attack: TCP connections, all open at once, each send one
// plain HTTP GET /rpc (no upgrade), read the answer, and then say nothing.
// Before the fix net/http kept each for another request until its idle
// timeout; the server now answers 426 with "Connection: close" and closes
// the connection at once. Each connection waits 5 s for the server to close
// it.

const (
	keepaliveLimit = time.Second // the target: closed within this after the answer
	keepaliveWait  = 5 * time.Second
)

type keepaliveOutcome struct {
	status    int
	connClose bool          // the answer carried Connection: close
	lingered  time.Duration // from the end of the answer to the server's close
	total     time.Duration // from the request to the server's close
	closed    bool
	err       error
}

func (a *attackRun) keepalive(ctx context.Context) attackResult {
	n := a.cfg.size.keepalive
	res := attackResult{target: fmt.Sprintf("all answered 426 + Connection: close, closed within %s", keepaliveLimit)}
	outs := make([]keepaliveOutcome, n)
	begin := make(chan struct{})
	var dialed, done sync.WaitGroup
	dialed.Add(n)
	for i := range n {
		o := &outs[i]
		done.Go(func() {
			var d net.Dialer
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			nc, err := d.DialContext(dctx, "tcp", a.addr)
			cancel()
			dialed.Done()
			if err != nil {
				o.err = err
				return
			}
			defer nc.Close()
			select {
			case <-begin:
			case <-ctx.Done():
				o.err = ctx.Err()
				return
			}
			o.err = a.plainRequest(nc, o)
		})
	}
	dialed.Wait()
	fdsOpen, _ := countFDs()
	close(begin)
	done.Wait()

	var status426, connClose, closed, failed int
	var lingered, total []time.Duration
	errs := tally{}
	for _, o := range outs {
		if o.err != nil {
			failed++
			errs[o.err.Error()]++
			continue
		}
		if o.status == http.StatusUpgradeRequired {
			status426++
		}
		if o.connClose {
			connClose++
		}
		if o.closed {
			closed++
			lingered = append(lingered, o.lingered)
			total = append(total, o.total)
		}
	}
	res.figures = append(res.figures,
		fmt.Sprintf("%d TCP connections, all open at once (fds %d), each sent GET /rpc without an upgrade and then nothing", n, fdsOpen),
		fmt.Sprintf("answered %d× 426, %d with Connection: close; closed by the server: %d of %d", status426, connClose, closed, n))
	if closed > 0 {
		slices.Sort(lingered)
		slices.Sort(total)
		q := func(ds []time.Duration, f float64) time.Duration { return ds[min(int(f*float64(len(ds))), len(ds)-1)] }
		res.figures = append(res.figures,
			fmt.Sprintf("closed after the answer: p50 %s, p99 %s, max %s; after the request: p50 %s, max %s",
				fmtSpan(q(lingered, 0.5)), fmtSpan(q(lingered, 0.99)), fmtSpan(lingered[len(lingered)-1]),
				fmtSpan(q(total, 0.5)), fmtSpan(total[len(total)-1])))
	}
	if failed > 0 {
		res.figures = append(res.figures, fmt.Sprintf("%d failed: %s", failed, errs))
	}
	res.ok = n > 0 && status426 == n && connClose == n && closed == n &&
		lingered[len(lingered)-1] <= keepaliveLimit
	return res
}

// plainRequest sends one HTTP/1.1 request that is no upgrade on nc, reads
// the answer, and waits for the server to close the connection.
func (a *attackRun) plainRequest(nc net.Conn, o *keepaliveOutcome) error {
	nc.SetDeadline(time.Now().Add(keepaliveWait))
	t := time.Now()
	if _, err := fmt.Fprintf(nc, "GET /rpc HTTP/1.1\r\nHost: %s\r\nUser-Agent: wsrpc-bench\r\n\r\n", a.addr); err != nil {
		return err
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return fmt.Errorf("read the answer: %w", err)
	}
	o.status, o.connClose = resp.StatusCode, resp.Close
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("read the answer: %w", err)
	}
	answered := time.Now()
	_, err = br.ReadByte() // silence: the next thing is the server's close
	now := time.Now()
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil // not closed within keepaliveWait
	case err == nil:
		return errors.New("the server sent more after its answer")
	}
	// io.EOF, or a reset: closed either way.
	o.closed, o.lingered, o.total = true, now.Sub(answered), now.Sub(t)
	return nil
}
