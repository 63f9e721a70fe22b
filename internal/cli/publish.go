package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/pubsub"
)

var publishHelp = help{
	usage: "publish [flags] URL TOPIC [DATA]",
	about: `
Publishes DATA on TOPIC (an exact topic: no * or >) through the wsrpc server
at URL and prints its position, OFFSET:EPOCH: what subscribe prints, and what
its --since takes. The server decides who may publish where: 'wsrpc serve'
lets clients publish on chat.> only.

DATA is JSON, sent as one value: a string must be quoted ('"hello"'), and
anything else that is not valid JSON is refused (exit status 2) before
anything is dialed; put -- before DATA that starts with '-'. Without DATA, or
with -, the JSON values on stdin (one, or a stream of them: one a line, say)
are published one after the other as each is read, one position a line.

A publication that a hook of the server dropped prints "dropped". A publish the
server refuses prints "error CODE: MESSAGE" on stderr and exits with the
status of the error's class, as call does (9 for a permission refused, 6 for
invalid data; 'wsrpc call --help' has the table).`,
	examples: `
wsrpc publish ws://127.0.0.1:8080/rpc chat.room '{"text":"hello"}'
wsrpc publish ws://127.0.0.1:8080/rpc chat.room '"just a string"'
echo '{"n":1} {"n":2}' | wsrpc publish ws://127.0.0.1:8080/rpc chat.room
tail -f events.jsonl | wsrpc publish ws://127.0.0.1:8080/rpc chat.events`,
}

func runPublish(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("publish")
	var (
		d       dialFlags
		codec   codecFlag
		timeout time.Duration
	)
	d.register(fs)
	codec.register(fs)
	fs.DurationVar(&timeout, "timeout", 10*time.Second, "give up on dialing, and on each publication, after this `duration` (0: never)")
	pos, err := parseArgs(fs, args, e, &publishHelp)
	if err != nil {
		return err
	}
	if err := codec.check(); err != nil {
		return err
	}
	switch {
	case len(pos) < 2:
		return usagef("want URL TOPIC [DATA], got %d argument(s)", len(pos))
	case len(pos) > 3:
		return usagef("unexpected argument %q (quote DATA as one argument)", pos[3])
	}
	u, topic := pos[0], pos[1]
	if err := checkURL(u); err != nil {
		return err
	}
	if err := pubsub.ValidTopic(topic); err != nil {
		return usagef("bad TOPIC: %s", strings.TrimPrefix(err.Error(), "wsrpc: "))
	}

	// values hands over what to publish: DATA, or each value on stdin.
	var values chan dataValue
	if len(pos) == 2 || pos[2] == "-" {
		values = make(chan dataValue)
		quit := make(chan struct{})
		var reader sync.WaitGroup
		reader.Add(1)
		go readValues(&reader, e.stdin, values, quit) // owned: stopped on return
		defer func() {
			close(quit)
			stopReader(e.stdin, &reader)
		}()
	} else {
		data, err := compactJSON([]byte(pos[2]))
		if err != nil {
			return usagef("DATA is not valid JSON: %v (a string must be quoted: '\"%s\"')", err, pos[2])
		}
		values = make(chan dataValue, 1)
		values <- dataValue{data: data, n: 1}
		close(values)
	}

	// The first value is read before anything is dialed, so that a mistake
	// is a usage error.
	first, ok, err := nextValue(ctx, values)
	switch {
	case err != nil:
		return usagef("%v", err)
	case !ok && ctx.Err() != nil:
		return errors.New("interrupted")
	case !ok:
		return usagef("no DATA: give it as an argument or on stdin")
	}

	opts, err := d.clientOptions(e, "publish")
	if err != nil {
		return err
	}
	opts = append(opts, codec.options()...)
	dctx, cancel := withTimeout(ctx, timeout)
	c, err := dialClient(dctx, u, append(opts, client.WithReconnect(false))...)
	cancel()
	if err != nil {
		return dialFailure(ctx, err, timeout)
	}
	defer c.Close()
	for v := first; ; {
		pctx, cancel := withTimeout(ctx, timeout)
		p, err := c.Publish(pctx, topic, json.RawMessage(v.data))
		cancel()
		if err != nil {
			return rpcFailure(ctx, e, err, timeout)
		}
		if p == (pubsub.Position{}) {
			fmt.Fprintln(e.stdout, "dropped")
		} else {
			fmt.Fprintln(e.stdout, formatPosition(p))
		}
		v, ok, err = nextValue(ctx, values)
		switch {
		case err != nil:
			return fmt.Errorf("%v; %d published before it", err, v.n-1)
		case !ok && ctx.Err() != nil:
			return errors.New("interrupted")
		case !ok:
			return nil
		}
	}
}

// dataValue is the nth value to publish, or why it could not be read.
type dataValue struct {
	data []byte
	n    int
	err  error
}

// nextValue returns the next value on values: ok false at the end (or when
// ctx ends), an error for a value that is not JSON.
func nextValue(ctx context.Context, values <-chan dataValue) (dataValue, bool, error) {
	select {
	case v, ok := <-values:
		if !ok {
			return v, false, nil
		}
		return v, true, v.err
	case <-ctx.Done():
		return dataValue{}, false, nil
	}
}

// readValues sends each JSON value read from r on values, compact, and
// closes it at the end of r or after a value that is not JSON.
func readValues(wg *sync.WaitGroup, r io.Reader, values chan<- dataValue, quit <-chan struct{}) {
	defer wg.Done()
	defer close(values)
	dec := json.NewDecoder(r)
	for n := 1; ; n++ {
		var raw json.RawMessage
		v := dataValue{n: n}
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return
		}
		if err == nil {
			v.data, err = compactJSON(raw)
		}
		if err != nil {
			v.err = fmt.Errorf("value %d on stdin is not valid JSON: %v", n, err)
		}
		select {
		case values <- v:
		case <-quit:
			return
		}
		if err != nil {
			return
		}
	}
}

// compactJSON returns b compacted, or why it is not one JSON value.
func compactJSON(b []byte) ([]byte, error) {
	var v json.RawMessage
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
