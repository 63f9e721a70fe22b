package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wsrpc/wsrpc/transport"
)

// The unfinished attack: raw connections (JSON-RPC) each send a text
// message in 64 KiB fragments (the first frame without fin, then
// continuation frames without fin), just under the 1 MiB read limit in all,
// and never send its last frame; they read on, answer pings and wait. The
// server holds what it has read of each message until MessageTimeout after
// the first frame, then closes the connection with 1008. The attack waits
// for that at most MessageTimeout + 5 s, then closes what is left.

const (
	unfinishedFragment = 64 << 10
	unfinishedGrace    = 5 * time.Second
)

type unfinishedOutcome struct {
	first   time.Time // the first frame was sent
	sendErr error
	end     error // what ended the read: a *closeFrame from the server, or an I/O error
	at      time.Time
}

func (a *attackRun) unfinished(ctx context.Context) attackResult {
	size := a.cfg.size
	mt := a.cfg.messageTimeout
	if mt <= 0 {
		mt = transport.DefaultMessageTimeout
	}
	res := attackResult{target: fmt.Sprintf("all closed with 1008 after the message timeout (%s)", mt)}
	conns := make([]*rawWS, size.unfinished)
	ses := make([]*serverEnd, size.unfinished)
	defer a.release(conns)
	d := rcvBufDialer(0)
	for i := range conns {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		c, err := dialWS(dctx, d, a.addr)
		cancel()
		if err != nil {
			res.err = fmt.Errorf("connection %d: %w", i+1, err)
			return res
		}
		conns[i], ses[i] = c, a.ends.watch(c.localAddr())
	}

	fragment := bytes.Repeat([]byte("u"), unfinishedFragment) // shared by every connection
	outs := make([]unfinishedOutcome, len(conns))
	var sent, ended sync.WaitGroup
	sent.Add(len(conns))
	start := time.Now()
	for i, c := range conns {
		o := &outs[i]
		ended.Go(func() {
			o.first = time.Now()
			op := opText
			for n := 0; n < size.unfinishedBytes; {
				chunk := fragment[:min(len(fragment), size.unfinishedBytes-n)]
				if o.sendErr = c.writeShared(false, op, chunk); o.sendErr != nil {
					break
				}
				op, n = opContinuation, n+len(chunk)
			}
			sent.Done()
			o.end = c.waitClose()
			o.at = time.Now()
		})
	}
	sent.Wait()
	allSent := time.Since(start)
	// Halfway to the timeout every message is held.
	wait(ctx, time.Until(start.Add(mt/2)))
	held, err := vmRSS()
	if err != nil {
		res.err = err
	}
	done := make(chan struct{})
	go func() { ended.Wait(); close(done) }() // owned: waited for below
	cutoff := start.Add(mt + unfinishedGrace)
	t := time.NewTimer(time.Until(cutoff))
	select {
	case <-done:
	case <-t.C:
	case <-ctx.Done():
	}
	t.Stop()
	closeAllWS(conns) // the readers still waiting end here
	<-done
	// A client returns once it has answered the close frame; the server's
	// disconnect hook runs a moment later.
	waitEnded(ctx, ses, time.Now().Add(2*time.Second))

	clientRead, timeouts, otherEnds := tally{}, 0, tally{}
	closed1008, timed := 0, 0
	var first, last time.Duration
	for i, o := range outs {
		var cf *closeFrame
		switch {
		case errors.As(o.end, &cf):
			clientRead[fmt.Sprintf("%d %q", cf.code, cf.reason)]++
			if cf.code == int(transport.StatusPolicyViolation) {
				closed1008++
			}
		case !o.at.Before(cutoff):
			clientRead["still open at the cutoff"]++
			continue
		default:
			clientRead["no close frame: "+o.end.Error()]++
		}
		after := o.at.Sub(o.first)
		if timed == 0 || after < first {
			first = after
		}
		timed++
		last = max(last, after)
		switch {
		case !ses[i].ended():
			otherEnds["not ended"]++
		case errors.Is(ses[i].err, transport.ErrMessageTimeout):
			timeouts++
		default:
			otherEnds[endReason(ses[i].err)]++
		}
	}
	sendErrs := 0
	for _, o := range outs {
		if o.sendErr != nil {
			sendErrs++
		}
	}
	total := int64(size.unfinished) * int64(size.unfinishedBytes)
	res.figures = append(res.figures,
		fmt.Sprintf("%d connections (raw JSON-RPC) each sent %s of one text message in %s fragments, fin never set, pings answered: %s held open in all, sent in %s",
			size.unfinished, fmtSize(size.unfinishedBytes), fmtSize(unfinishedFragment), fmtMiB(total), fmtSpan(allSent)),
		fmt.Sprintf("RSS while held (%s after the first frame): %.1f MiB; server MessageTimeout %s", fmtSpan(mt/2), mib(held), mt),
		fmt.Sprintf("closed %s after their first frame; the clients read: %s; server: %d of %d ended with ErrMessageTimeout",
			durRange(first, last), clientRead, timeouts, size.unfinished))
	if len(otherEnds) > 0 {
		res.figures = append(res.figures, "the server ended the others otherwise: "+otherEnds.String())
	}
	if sendErrs > 0 {
		res.figures = append(res.figures, fmt.Sprintf("%d connections could not send their whole message", sendErrs))
	}
	res.ok = closed1008 == size.unfinished && timeouts == size.unfinished && first >= mt
	return res
}
