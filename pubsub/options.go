package pubsub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/wsrpc/wsrpc/internal/topic"
	"github.com/wsrpc/wsrpc/rpc"
)

// Defaults of [Limits].
const (
	DefaultMaxSubscriptions          = 128       // per connection
	DefaultMaxTopicLen               = 256       // bytes
	DefaultMaxTopicTokens            = 16        // dot-separated tokens
	DefaultMaxReplay                 = 1000      // publications replayed by one subscribe
	DefaultMaxReplayBytes            = 512 << 10 // bytes replayed by one subscribe, entries whole: half the default read limit
	DefaultMaxPublicationSize        = 64 << 10  // bytes of data
	DefaultMaxQueuedPublicationBytes = 1 << 20   // bytes of publications waiting to be written, per connection
	DefaultMaxJoinBuffer             = 1024      // publications held for a subscriber whose subscribe is being answered
)

// Limits bound what one connection and one publication may take. A zero
// field means its default.
type Limits struct {
	// MaxSubscriptions per connection; a subscribe beyond it is refused
	// with CodeBusy.
	MaxSubscriptions int
	// MaxTopicLen and MaxTopicTokens bound a topic or pattern; beyond them
	// it is invalid (CodeInvalidParams).
	MaxTopicLen, MaxTopicTokens int
	// MaxReplay and MaxReplayBytes bound the publications one subscribe
	// replays, in count and in bytes (data and envelope; the reply must fit the
	// client's read limit, 1 MiB by default); a client that missed more
	// gets the most recent ones and is told its recovery was incomplete.
	MaxReplay      int
	MaxReplayBytes int
	// MaxPublicationSize bounds the encoded data of one publication.
	MaxPublicationSize int
	// MaxQueuedPublicationBytes bounds the publications waiting to be
	// written to one connection (counting what else is queued on it): a
	// subscriber that would pass it is closed with [CloseSlowSubscriber].
	// It is the hub's own bound, under the connection's send queue bound
	// (transport.ConnOptions.MaxQueuedBytes), which closes with 1008.
	MaxQueuedPublicationBytes int64
	// MaxJoinBuffer bounds the publications held for one subscriber while
	// its subscribe is answered; past it, it is closed as slow.
	MaxJoinBuffer int
}

func (l *Limits) fill() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxSubscriptions, DefaultMaxSubscriptions)
	def(&l.MaxTopicLen, DefaultMaxTopicLen)
	def(&l.MaxTopicTokens, DefaultMaxTopicTokens)
	def(&l.MaxReplay, DefaultMaxReplay)
	def(&l.MaxReplayBytes, DefaultMaxReplayBytes)
	def(&l.MaxPublicationSize, DefaultMaxPublicationSize)
	def(&l.MaxJoinBuffer, DefaultMaxJoinBuffer)
	if l.MaxQueuedPublicationBytes <= 0 {
		l.MaxQueuedPublicationBytes = DefaultMaxQueuedPublicationBytes
	}
}

func (l *Limits) topic() topic.Limits {
	return topic.Limits{MaxLen: l.MaxTopicLen, MaxTokens: l.MaxTopicTokens}
}

// Rule is what a Hub does for the topics matching one pattern: who may
// subscribe and publish, what happens to a client's publication, what runs
// after, and how much history is kept. Rules are given with [WithRule].
type Rule struct {
	// Subscribe decides whether the connection p may subscribe to pattern
	// (a topic, or a pattern with * and >); a non-nil error refuses it (an
	// *rpc.Error is sent as it is, any other error as CodePermissionDenied
	// with its text). nil allows every subscription. A subscription is
	// allowed only if the Subscribe of every rule whose pattern overlaps it
	// allows it: a rule guarding chat.secret.> is asked about chat.>.
	Subscribe func(ctx context.Context, p *rpc.Peer, pattern string) error
	// Publish decides whether the connection p may publish m, and may
	// change m.Data (transform) before it is fanned out; returning
	// [ErrDrop] drops it (the client's call succeeds, nothing is
	// published). Clients may publish on a topic only if the first rule
	// matching it has a Publish func: with none, client publish is off.
	// Hub.Publish (Go code) does not go through it.
	Publish func(ctx context.Context, p *rpc.Peer, m *Message) error
	// AfterSubscribe, AfterUnsubscribe and AfterPublish run once the
	// subscription is made (its reply queued), ended (by the client or the
	// connection's end; p's connection may be closed), or the publication
	// made, on the goroutine that did it. They must not block.
	AfterSubscribe   func(p *rpc.Peer, pattern string)
	AfterUnsubscribe func(p *rpc.Peer, pattern string)
	AfterPublish     func(p *rpc.Peer, topic string, pos Position)
	// HistorySize and HistoryTTL keep the last HistorySize publications of
	// each matching topic for HistoryTTL (0: until pushed out), so that a
	// subscriber that reconnects recovers what it missed. The first rule
	// matching a topic with a HistorySize decides. 0 keeps none.
	HistorySize int
	HistoryTTL  time.Duration
}

// Message is a client's publication as a [Rule]'s Publish func sees it.
type Message struct {
	Topic string
	Data  rpc.Raw // JSON; a Publish func may replace it (with valid JSON)
}

// ErrDrop, returned by a Rule's Publish func, drops the publication.
var ErrDrop = errors.New("wsrpc: pubsub: publication dropped")

// Option configures [New].
type Option func(*config) error

type config struct {
	broker    Broker
	rules     []rule
	limits    Limits
	onConnect func(*rpc.Peer) []string
	logger    *slog.Logger
}

type rule struct {
	pattern string
	Rule
}

// WithBroker sets the broker (default: a [NewMemoryBroker] of its own). The
// Hub opens it and closes it with [Hub.Close].
func WithBroker(b Broker) Option {
	return func(c *config) error {
		if b == nil {
			return errors.New("WithBroker: nil broker")
		}
		c.broker = b
		return nil
	}
}

// WithRule adds a rule for the topics matching pattern. Rules are consulted
// in the order given (see [Rule] for how each field is decided).
func WithRule(pattern string, r Rule) Option {
	return func(c *config) error {
		c.rules = append(c.rules, rule{pattern: pattern, Rule: r})
		return nil
	}
}

// WithLimits sets the limits (zero fields keep their defaults).
func WithLimits(l Limits) Option {
	return func(c *config) error {
		if l.MaxSubscriptions < 0 || l.MaxTopicLen < 0 || l.MaxTopicTokens < 0 || l.MaxReplay < 0 || l.MaxReplayBytes < 0 ||
			l.MaxPublicationSize < 0 || l.MaxQueuedPublicationBytes < 0 || l.MaxJoinBuffer < 0 {
			return fmt.Errorf("WithLimits: negative limit in %+v", l)
		}
		c.limits = l
		return nil
	}
}

// WithConnectSubscriptions subscribes every new connection to the topics or
// patterns fn returns for it (a topic per user, say), server-side: the
// client did not ask, receives their publications as $/publication
// notifications with the subscription ids the Hub chose, and cannot
// unsubscribe them. They receive live publications only (no recovery) and
// end with the connection. fn runs when the connection is attached.
func WithConnectSubscriptions(fn func(p *rpc.Peer) []string) Option {
	return func(c *config) error {
		c.onConnect = fn
		return nil
	}
}

// WithLogger logs what the Hub drops or refuses at Warn level, and slow
// subscribers it closes.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		c.logger = l
		return nil
	}
}
