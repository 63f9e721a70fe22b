package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	wsclient "github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/transport"
)

// The slow attack: raw connections (JSON-RPC, a 4 KiB SO_RCVBUF, see
// wsraw.go) each send at once calls to "big" asking for more than the
// kernel's largest send buffer plus the server's send-queue bound plus
// 4 MiB (24 calls of 512 KiB with the default 4 MiB tcp_wmem), then never
// read, not even a ping. Meanwhile client.Dial callers (reconnect off, so a
// dropped connection shows as errors) call echo back to back. The server
// must drop the slow readers (1008 once a reply would take a send queue
// past its bound, or the write timeout) with its memory bounded, while the
// callers see no error.

const (
	slowAttackBeyond = 4 << 20          // asked for beyond the kernel's buffer and the queue bound
	slowAttackLimit  = 15 * time.Second // the longest the attack waits for the server to drop them
	attackCallLimit  = 5 * time.Second  // each caller's call
)

// slowAttackCalls is how many calls of attackReply bytes each slow reader
// sends unless -attack-slow-calls says otherwise.
func slowAttackCalls() int {
	return (tcpWmemMax() + int(transport.DefaultMaxQueuedBytes) + slowAttackBeyond + attackReply - 1) / attackReply
}

func (a *attackRun) slow(ctx context.Context) attackResult {
	size := a.cfg.size
	res := attackResult{target: fmt.Sprintf("peak < %g MiB; callers 0 errors", a.cfg.rssLimit), rssLimit: a.cfg.rssLimit}
	callers, err := a.startCallers(ctx, size.callers)
	if err != nil {
		res.err = err
		return res
	}
	calls := a.cfg.slowCalls
	if calls <= 0 {
		calls = slowAttackCalls()
	}
	var frames []byte
	for i := range calls {
		frames = appendFrame(frames, true, opText, fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"big"}`, i+1))
	}
	start := time.Now()
	conns := make([]*rawWS, size.slowReaders)
	ses := make([]*serverEnd, size.slowReaders)
	defer a.release(conns)
	d := rcvBufDialer(slowRcvBuf)
	for i := range conns {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		c, err := dialWS(dctx, d, a.addr)
		cancel()
		if err != nil {
			callers.stop()
			res.err = fmt.Errorf("slow reader %d: %w", i+1, err)
			return res
		}
		conns[i], ses[i] = c, a.ends.watch(c.localAddr())
		if err := c.write(frames); err != nil {
			callers.stop()
			res.err = fmt.Errorf("slow reader %d: send: %w", i+1, err)
			return res
		}
	}
	waitEnded(ctx, ses, start.Add(slowAttackLimit))
	wait(ctx, time.Until(start.Add(size.slowHold)))
	cs := callers.stop()
	reasons := tally{}
	closed := 0
	var first, last time.Duration
	for _, se := range ses {
		if !se.ended() {
			continue
		}
		at := se.at.Sub(start)
		if closed == 0 || at < first {
			first = at
		}
		last = max(last, at)
		closed++
		reasons[endReason(se.err)]++
	}
	res.figures = append(res.figures,
		fmt.Sprintf("%d slow readers (raw JSON-RPC, %s SO_RCVBUF, never read) sent %d calls for %s replies each: %s asked in all",
			size.slowReaders, fmtSize(slowRcvBuf), calls, fmtSize(attackReply), fmtMiB(int64(size.slowReaders*calls*attackReply))))
	closedBy := fmt.Sprintf("closed by the server: %d of %d", closed, size.slowReaders)
	if closed > 0 {
		closedBy += fmt.Sprintf(", ended %s after they connected (a peer closed for misbehaving has 1s to take the close frame): %s",
			durRange(first, last), reasons)
	}
	if closed < size.slowReaders {
		closedBy += fmt.Sprintf("; the rest were still open after %s", slowAttackLimit)
	}
	res.figures = append(res.figures, closedBy, cs.String())
	res.ok = cs.errs == 0 && cs.ok > 0
	return res
}

// wait sleeps for d, or until ctx is done.
func wait(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// attackCallers are client.Dial connections calling echo back to back
// while an attack runs.
type attackCallers struct {
	clients []*wsclient.Client
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	start   time.Time
	stats   []callerStats // one per caller, written by its goroutine until wg is done
}

type callerStats struct {
	n       int
	ok      int64
	errs    int64
	h       hist
	first   error
	elapsed time.Duration
}

// startCallers dials n callers (reconnect off, a call timeout of 5 s) and
// starts them calling.
func (a *attackRun) startCallers(ctx context.Context, n int) (*attackCallers, error) {
	cs := &attackCallers{stats: make([]callerStats, n)}
	for range n {
		c, err := wsclient.Dial(ctx, a.ls.url, wsclient.WithReconnect(false), wsclient.WithCallTimeout(attackCallLimit))
		if err != nil {
			for _, c := range cs.clients {
				c.Close()
			}
			return nil, fmt.Errorf("caller: %w", err)
		}
		cs.clients = append(cs.clients, c)
	}
	cctx, cancel := context.WithCancel(ctx)
	cs.cancel, cs.start = cancel, time.Now()
	for i, c := range cs.clients {
		st := &cs.stats[i]
		cs.wg.Go(func() {
			var out string
			for cctx.Err() == nil {
				t := time.Now()
				err := c.Call(cctx, "echo", attackCallParams, &out)
				switch {
				case err == nil && out == attackCallParams:
					st.ok++
					st.h.add(time.Since(t))
				case cctx.Err() != nil: // stopping
				case err == nil:
					st.errs++
					st.first = errShortReply
				default:
					st.errs++
					if st.first == nil {
						st.first = err
					}
				}
			}
		})
	}
	return cs, nil
}

// stop stops and closes the callers and returns their figures together.
func (cs *attackCallers) stop() callerStats {
	cs.cancel()
	cs.wg.Wait()
	var all callerStats
	all.n, all.elapsed = len(cs.clients), time.Since(cs.start)
	for i, c := range cs.clients {
		c.Close()
		st := &cs.stats[i]
		all.ok += st.ok
		all.errs += st.errs
		all.h.merge(&st.h)
		if all.first == nil {
			all.first = st.first
		}
	}
	return all
}

func (s *callerStats) String() string {
	out := fmt.Sprintf("%d callers (client.Dial, reconnect off) during the attack: %.0f calls/s over %s, p50 %s, p99 %s, %d errors",
		s.n, float64(s.ok)/s.elapsed.Seconds(), fmtSpan(s.elapsed), fmtDur(s.h.quantile(0.5)), fmtDur(s.h.quantile(0.99)), s.errs)
	if s.first != nil {
		out += fmt.Sprintf(" (first: %v)", s.first)
	}
	return out
}
