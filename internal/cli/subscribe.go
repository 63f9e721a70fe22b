package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
)

var subscribeHelp = help{
	usage: "subscribe [flags] URL TOPIC...",
	about: `
Subscribes to each TOPIC on the wsrpc server at URL and prints every
publication on stdout, until SIGINT or --count publications (exit status 0).
A TOPIC is an exact topic (chat.room) or a pattern: * matches one token
(chat.*), > the rest (chat.>); quote patterns in the shell.

On a terminal (or with --format text), one line a publication: the topic, its
position OFFSET:EPOCH and the data (JSON):
  chat.room 3:5f2a9c1e {"text":"hello"}
Otherwise (or with --format json), one JSON object a line:
  {"topic":"chat.room","offset":3,"epoch":"5f2a9c1e","data":{"text":"hello"}}
The first publication after others were lost carries "gap":true (on a
terminal, "(gap: ...)"): the topic's history did not reach back far enough,
or its stream started again (a new epoch).

When the connection drops, subscribe reconnects, subscribes again and, for
exact topics that keep history, recovers what was published meanwhile, each
publication once and in order; it says so on stderr. --since recovers from an
earlier run: give it the position of the last publication seen (one exact
TOPIC only). A subscribe the server refuses (permission denied, an invalid
topic, no pub/sub) prints one line on stderr and exits with 1.`,
	examples: `
wsrpc subscribe ws://127.0.0.1:8080/rpc time
wsrpc subscribe ws://127.0.0.1:8080/rpc 'chat.>' time
wsrpc subscribe --since 42:5f2a9c1e ws://127.0.0.1:8080/rpc chat.room
wsrpc subscribe --count 1 ws://127.0.0.1:8080/rpc time | jq -r .data`,
}

// subscribeBuffer is the channel buffer of each subscription: room for the
// publications a subscribe recovers (the server replays at most
// pubsub.DefaultMaxReplay by default) and then some. The client delivers a
// recovery into the channel before Subscribe returns, so a smaller buffer
// could not take a long recovery.
const subscribeBuffer = pubsub.DefaultMaxReplay + client.DefaultSubscriptionBuffer

func runSubscribe(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("subscribe")
	var (
		d       dialFlags
		codec   codecFlag
		since   string
		count   int
		echo    bool
		format  string
		timeout time.Duration
	)
	d.register(fs)
	codec.register(fs)
	fs.StringVar(&since, "since", "", "`OFFSET:EPOCH` recover the publications after this position (one exact TOPIC), as far as the topic's history holds them")
	fs.IntVar(&count, "count", 0, "exit after `n` publications (0: run until SIGINT)")
	fs.BoolVar(&echo, "echo", false, `ask for this connection's own publications too ("echo":true; subscribe itself publishes none)`)
	fs.StringVar(&format, "format", "auto", "`auto|json|text` output: text on a terminal and JSON lines otherwise, or the one named")
	fs.DurationVar(&timeout, "timeout", 10*time.Second, "give up dialing and subscribing after this `duration` (0: never); it does not bound the wait for publications")
	pos, err := parseArgs(fs, args, e, &subscribeHelp)
	if err != nil {
		return err
	}
	if err := codec.check(); err != nil {
		return err
	}
	if err := oneOf("format", format, "auto", "json", "text"); err != nil {
		return err
	}
	if count < 0 {
		return usagef("--count must not be negative")
	}
	if len(pos) < 2 {
		return usagef("want URL TOPIC..., got %d argument(s)", len(pos))
	}
	u, topics := pos[0], pos[1:]
	if err := checkURL(u); err != nil {
		return err
	}
	seen := make(map[string]bool, len(topics))
	for _, t := range topics {
		if err := pubsub.ValidPattern(t); err != nil {
			return usagef("bad TOPIC: %s", strings.TrimPrefix(err.Error(), "wsrpc: "))
		}
		if seen[t] {
			return usagef("TOPIC %q given twice", t)
		}
		seen[t] = true
	}
	var subOpts []client.SubscribeOption
	if since != "" {
		p, err := parsePosition(since)
		if err != nil {
			return usagef("--since: %v", err)
		}
		if len(topics) > 1 || pubsub.IsPattern(topics[0]) {
			return usagef("--since needs exactly one TOPIC, an exact one (no * or >)")
		}
		subOpts = append(subOpts, client.Since(p))
	}
	if echo {
		subOpts = append(subOpts, client.Echo())
	}
	subOpts = append(subOpts, client.Buffer(subscribeBuffer))
	text := format == "text" || format == "auto" && e.stdoutTTY

	var reconnected atomic.Bool
	status := func(s client.Status) {
		switch s {
		case client.Reconnecting:
			reconnected.Store(true)
			fmt.Fprintln(e.stderr, "wsrpc subscribe: disconnected; reconnecting")
		case client.Connected:
			if reconnected.Load() { // not the first connection
				fmt.Fprintln(e.stderr, "wsrpc subscribe: reconnected; subscribed again, recovering what was missed where the topics keep history")
			}
		}
	}
	opts, err := d.clientOptions(e, "subscribe")
	if err != nil {
		return err
	}
	opts = append(opts, codec.options()...)
	opts = append(opts, client.WithStatusHook(status))

	sctx, cancel := withTimeout(ctx, timeout)
	defer cancel()
	c, err := dialClient(sctx, u, opts...)
	if err != nil {
		return timeoutError(ctx, err, timeout)
	}
	s := &subscriber{e: e, c: c, text: text, count: count, timeout: timeout}
	return s.run(ctx, sctx, cancel, topics, subOpts)
}

// subscriber prints the publications of a client's subscriptions. Its run
// goroutine prints; one goroutine of its own subscribes.
type subscriber struct {
	e     *env
	c     *client.Client
	text  bool
	count int // 0: no limit
	// timeout bounds the subscribes, for their error.
	timeout time.Duration
}

// subscribed is one subscribe's outcome.
type subscribed struct {
	topic string
	sub   *client.Subscription
	err   error
}

// run subscribes to topics, one after the other with sctx (whose cancel
// ends it once all are made), and prints the publications of those already
// made while the others are made, so that no subscription's channel fills
// while it waits. It closes the client before returning.
func (s *subscriber) run(ctx, sctx context.Context, cancel context.CancelFunc, topics []string, opts []client.SubscribeOption) error {
	made := make(chan subscribed)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var subs []*client.Subscription
	wg.Go(func() { // owned: waited for below
		for _, t := range topics {
			sub, err := s.c.Subscribe(sctx, t, opts...)
			select {
			case made <- subscribed{topic: t, sub: sub, err: err}:
			case <-stop:
				if sub != nil {
					drainAll(sub.C()) // as below
				}
				return
			}
			if err != nil {
				return
			}
		}
	})
	defer func() {
		close(stop)
		// The client's Close waits for the connection's reader, which waits
		// while a subscription's channel is full: the channels are drained
		// until Close closes them.
		var drains sync.WaitGroup
		for _, sub := range subs {
			drains.Go(func() { drainAll(sub.C()) })
		}
		s.c.Close() // ends a subscribe in flight, and every subscription
		drains.Wait()
		wg.Wait()
	}()

	// cases: ctx, then made (until every subscribe is made), then the
	// channel of each subscription in subs.
	cases := []reflect.SelectCase{
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(made)},
	}
	printed := 0
	for {
		i, v, ok := reflect.Select(cases)
		switch {
		case i == 0:
			return nil // SIGINT: the normal end
		case i == 1:
			m := v.Interface().(subscribed)
			if m.err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return subscribeError(ctx, m.topic, m.err, s.timeout)
			}
			subs = append(subs, m.sub)
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(m.sub.C())})
			if len(subs) == len(topics) {
				cases[1].Chan = reflect.Value{} // a zero Chan: the case is ignored
				cancel()                        // the subscriptions outlive it
			}
			if s.e.stderrTTY {
				fmt.Fprintf(s.e.stderr, "wsrpc subscribe: subscribed to %s\n", m.topic)
			}
		default:
			sub := subs[i-2]
			if !ok {
				return fmt.Errorf("the subscription to %s ended: %v", sub.Topic(), sub.Err())
			}
			writePublication(s.e.stdout, v.Interface().(pubsub.Publication), s.text)
			if printed++; printed == s.count {
				return nil
			}
		}
	}
}

// subscribeError says why the subscribe to topic failed: "subscribe
// secret.x: error -32005: ..." for a refusal.
func subscribeError(parent context.Context, topic string, err error, timeout time.Duration) error {
	var re *rpc.Error
	if errors.As(err, &re) {
		line := errorLine(re)
		if re.Code == rpc.CodeMethodNotFound {
			line += " (the server has no pub/sub)"
		}
		return fmt.Errorf("subscribe %s: %s", topic, line)
	}
	return fmt.Errorf("subscribe %s: %w", topic, timeoutError(parent, err, timeout))
}

// publicationLine is a publication as subscribe prints it in JSON.
type publicationLine struct {
	Topic  string          `json:"topic"`
	Offset uint64          `json:"offset"`
	Epoch  string          `json:"epoch"`
	Data   json.RawMessage `json:"data"`
	Gap    bool            `json:"gap,omitempty"`
}

// writePublication prints pub on one line: as JSON, or as text for people
// ("chat.room 3:5f2a9c1e {"text":"hello"}").
func writePublication(w io.Writer, pub pubsub.Publication, text bool) {
	var data bytes.Buffer
	if err := json.Compact(&data, pub.Data); err != nil {
		// Not JSON, which a server should never send: shown as a string.
		b, _ := json.Marshal(string(pub.Data))
		data.Reset()
		data.Write(b)
	}
	var line bytes.Buffer
	if text {
		fmt.Fprintf(&line, "%s %s %s", pub.Topic, formatPosition(pub.Position()), data.Bytes())
		if pub.Gap {
			line.WriteString("  (gap: publications before this one were lost)")
		}
		line.WriteByte('\n')
	} else {
		enc := json.NewEncoder(&line)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(publicationLine{Topic: pub.Topic, Offset: pub.Offset, Epoch: pub.Epoch, Data: data.Bytes(), Gap: pub.Gap})
	}
	w.Write(line.Bytes())
}

// formatPosition writes a position as publish prints it and --since reads
// it: OFFSET:EPOCH.
func formatPosition(p pubsub.Position) string {
	return strconv.FormatUint(p.Offset, 10) + ":" + p.Epoch
}

// parsePosition reads OFFSET:EPOCH.
func parsePosition(s string) (pubsub.Position, error) {
	off, epoch, ok := strings.Cut(s, ":")
	n, err := strconv.ParseUint(off, 10, 64)
	if !ok || err != nil || epoch == "" {
		return pubsub.Position{}, fmt.Errorf("want OFFSET:EPOCH as subscribe and publish print it (42:5f2a9c1e), not %q", s)
	}
	return pubsub.Position{Offset: n, Epoch: epoch}, nil
}

// drainAll receives from ch until it is closed.
func drainAll[T any](ch <-chan T) {
	for range ch {
	}
}
