package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/wsrpc/wsrpc/rpc"
)

var notifyHelp = help{
	usage: "notify [flags] URL METHOD [PARAMS]",
	about: `
Sends a notification (a call that wants no reply) to the wsrpc server at URL,
then closes the connection cleanly (1000). Prints nothing on success.
PARAMS is JSON (an array or an object for --codec json), or - to read it from
stdin; put -- before PARAMS that start with '-'. A failure exits with the
status of its class, as call does ('wsrpc call --help' has the table): 3 when
no connection could be made, say.`,
	examples: `
wsrpc notify ws://127.0.0.1:8080/rpc broadcast '{"text":"hello, everyone"}'   # wsrpc serve --demo-broadcast
echo '[1,2]' | wsrpc notify --codec json ws://127.0.0.1:8080/rpc add -`,
}

func runNotify(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("notify")
	var f rpcFlags
	f.register(fs)
	pos, err := parseArgs(fs, args, e, &notifyHelp)
	if err != nil {
		return err
	}
	t, err := parseTarget(e, pos, &f.codec)
	if err != nil {
		return err
	}
	opts, err := f.options(e, "notify", rpc.WithHandler(answerHandler(nil)))
	if err != nil {
		return err
	}
	nctx, cancel := withTimeout(ctx, f.timeout)
	defer cancel()
	c, err := dialClient(nctx, t.url, opts...)
	if err != nil {
		return dialFailure(ctx, err, f.timeout)
	}
	// The client's one connection (it does not reconnect): how it ends says
	// whether the notification got out.
	p := c.Peer()
	if err := c.Notify(nctx, t.method, t.params); err != nil {
		c.Close()
		return rpcFailure(ctx, e, err, f.timeout)
	}
	// Close writes what is queued, the notification included, before the
	// close frame.
	c.Close()
	if p == nil {
		return errors.New("the connection ended before the notification was sent")
	}
	if err := p.Err(); abnormal(err) {
		return fmt.Errorf("the connection ended abnormally (%s); the notification may not have arrived", closeText(err))
	}
	return nil
}
