package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wsrpc/wsrpc/rpc"
)

// The fanout attack: raw listener connections (half binary, half JSON-RPC,
// a 4 KiB SO_RCVBUF) connect and never read; then server.Broadcast sends
// notifications of 512 KiB params to all of them, one after another. Before
// the fan-out encoded once and bounded each connection's queue in bytes,
// 100 listeners and 20 broadcasts took the server to 792 MiB. A listener
// whose queue would pass its bound is closed (1008); a broadcast must not
// wait for one.

const (
	fanoutLimit  = 15 * time.Second // all the broadcasts together
	fanoutSettle = 3 * time.Second  // after the last, for the server to finish closing listeners
	fanoutBefore = 792              // MiB, the figure before the fix
)

func (a *attackRun) fanout(ctx context.Context) attackResult {
	size := a.cfg.size
	res := attackResult{target: fmt.Sprintf("peak < %g MiB; every broadcast done within %s", a.cfg.rssLimit, fanoutLimit),
		rssLimit: a.cfg.rssLimit}
	conns := make([]*rawWS, size.listeners)
	ses := make([]*serverEnd, size.listeners)
	defer a.release(conns)
	d := rcvBufDialer(slowRcvBuf)
	binary := 0
	for i := range conns {
		var protos []string
		if i%2 == 0 {
			protos = []string{rpc.SubprotocolBinary}
		}
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		c, err := dialWS(dctx, d, a.addr, protos...)
		cancel()
		if err != nil {
			res.err = fmt.Errorf("listener %d: %w", i+1, err)
			return res
		}
		conns[i], ses[i] = c, a.ends.watch(c.localAddr())
		if c.proto == rpc.SubprotocolBinary {
			binary++
		}
	}
	// The server answers the handshake before it registers the connection.
	if err := waitConns(ctx, a, size.listeners, 5*time.Second); err != nil {
		res.err = err
		return res
	}

	params := rpc.Raw(`["` + strings.Repeat("b", attackReply-4) + `"]`)
	bctx, cancel := context.WithTimeout(ctx, fanoutLimit)
	defer cancel()
	start := time.Now()
	var took []time.Duration
	queued := 0
	for i := range size.broadcasts {
		t := time.Now()
		n, err := a.ls.srv.Broadcast(bctx, "attack.tick", params, nil)
		took = append(took, time.Since(t))
		queued += n
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				res.err = fmt.Errorf("broadcast %d: %w", i+1, err)
				return res
			}
			break
		}
	}
	total := time.Since(start)
	waitEnded(ctx, ses, time.Now().Add(fanoutSettle))

	reasons := tally{}
	closed := 0
	for _, se := range ses {
		if se.ended() {
			closed++
			reasons[endReason(se.err)]++
		}
	}
	sorted := slices.Clone(took)
	slices.Sort(sorted)
	offered := size.broadcasts * len(params)
	res.figures = append(res.figures,
		fmt.Sprintf("%d listeners (%d binary, %d JSON-RPC; %s SO_RCVBUF, never read), %d broadcasts of %s params: %.1f MB offered to each, %s in all (before the fix: peak %d MiB)",
			size.listeners, binary, size.listeners-binary, fmtSize(slowRcvBuf), size.broadcasts, fmtSize(len(params)),
			float64(offered)/1e6, fmtMiB(int64(offered)*int64(size.listeners)), fanoutBefore),
		fmt.Sprintf("broadcasts: %d of %d ran in %s, each %s (p50 %s); queued on %d connections in all",
			len(took), size.broadcasts, fmtSpan(total), durRange(sorted[0], sorted[len(sorted)-1]),
			fmtSpan(sorted[len(sorted)/2]), queued))
	line := fmt.Sprintf("listeners closed by the server: %d of %d", closed, size.listeners)
	if closed > 0 {
		line += ": " + reasons.String()
	}
	if closed < size.listeners {
		line += fmt.Sprintf("; %d still open (their kernel buffers took what they were sent)", size.listeners-closed)
	}
	res.figures = append(res.figures, line)
	res.ok = len(took) == size.broadcasts
	return res
}

// waitConns waits until the server has at least n connections, at most d.
func waitConns(ctx context.Context, a *attackRun, n int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for len(a.ls.srv.Conns()) < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("the server has %d connections after %s, want %d", len(a.ls.srv.Conns()), d, n)
		}
		wait(ctx, time.Millisecond)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// fmtMiB prints a byte count in MiB.
func fmtMiB(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }
