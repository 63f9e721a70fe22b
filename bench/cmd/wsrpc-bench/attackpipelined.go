package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/wsrpc/wsrpc/rpc"
)

// The pipelined attack (a plain JSON-RPC client, not an attacker): a raw
// connection without a subprotocol writes a burst of echo calls in one go,
// each its own message, before reading any reply, then reads every reply.
// Before the backlog, the calls beyond MaxInFlight were refused with busy
// (-32003); now they wait in the connection's backlog and every one is
// answered. It runs several times, a new connection each.

const pipelinedLimit = 10 * time.Second // each run

type pipelinedRun struct {
	ok, busy, otherErrs, wrong int
	took                       time.Duration
	err                        error
}

func (a *attackRun) pipelined(ctx context.Context) attackResult {
	size := a.cfg.size
	res := attackResult{target: fmt.Sprintf("0 refused with %d in every run, all answered", int(rpc.CodeBusy))}
	runs := make([]pipelinedRun, size.pipelinedRuns)
	for i := range runs {
		runs[i] = a.pipelineOnce(ctx, size.pipelinedCalls)
	}
	var busy, ok, took []string
	res.ok = true
	for i, r := range runs {
		busy = append(busy, fmt.Sprint(r.busy))
		ok = append(ok, fmt.Sprint(r.ok))
		took = append(took, fmtSpan(r.took))
		if r.err != nil {
			res.figures = append(res.figures, fmt.Sprintf("run %d: %v", i+1, r.err))
		}
		if r.otherErrs > 0 || r.wrong > 0 {
			res.figures = append(res.figures, fmt.Sprintf("run %d: %d other errors, %d wrong results", i+1, r.otherErrs, r.wrong))
		}
		res.ok = res.ok && r.err == nil && r.busy == 0 && r.ok == size.pipelinedCalls
	}
	res.figures = append([]string{
		fmt.Sprintf("%d runs, each a new raw JSON-RPC connection (no subprotocol) writing %d echo calls in one go, then reading the replies",
			size.pipelinedRuns, size.pipelinedCalls),
		fmt.Sprintf("refused with %d (busy) per run: %s; answered ok: %s; each run took %s",
			int(rpc.CodeBusy), strings.Join(busy, ", "), strings.Join(ok, ", "), strings.Join(took, ", ")),
	}, res.figures...)
	return res
}

// pipelineOnce makes one run of n calls.
func (a *attackRun) pipelineOnce(ctx context.Context, n int) (r pipelinedRun) {
	ctx, cancel := context.WithTimeout(ctx, pipelinedLimit)
	defer cancel()
	c, err := dialWS(ctx, rcvBufDialer(0), a.addr)
	if err != nil {
		r.err = err
		return r
	}
	defer c.close()
	params := func(id int) string { return fmt.Sprintf(`["pipelined call %06d"]`, id) }
	var frames []byte
	for id := 1; id <= n; id++ {
		frames = appendFrame(frames, true, opText,
			fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"echo","params":%s}`, id, params(id)))
	}
	dl, _ := ctx.Deadline()
	c.nc.SetDeadline(dl)
	start := time.Now()
	if err := c.write(frames); err != nil {
		r.err = fmt.Errorf("send: %w", err)
		return r
	}
	seen := make([]bool, n+1)
	for range n {
		op, data, err := c.readMessage()
		if err != nil {
			r.err = fmt.Errorf("after %d replies: %w", r.ok+r.busy+r.otherErrs+r.wrong, err)
			break
		}
		var reply struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Code int `json:"code"`
			} `json:"error"`
		}
		if op != opText || json.Unmarshal(data, &reply) != nil || reply.ID < 1 || reply.ID > n || seen[reply.ID] {
			r.wrong++
			continue
		}
		seen[reply.ID] = true
		switch {
		case reply.Error != nil && reply.Error.Code == int(rpc.CodeBusy):
			r.busy++
		case reply.Error != nil:
			r.otherErrs++
		case bytes.Equal(reply.Result, []byte(params(reply.ID))):
			r.ok++
		default:
			r.wrong++
		}
	}
	r.took = time.Since(start)
	c.writeFrame(true, opClose, []byte{0x03, 0xe8}) // 1000
	return r
}
