package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsrpc/wsrpc/pubsub"
)

// Defaults of [Options].
const (
	DefaultPrefix     = "wsrpc"
	DefaultMaxHistory = 1000
	DefaultMaxBytes   = 1 << 30
	DefaultTimeout    = 5 * time.Second
)

// Header keys of the messages the broker sends on NATS.
const (
	hdrOffset    = "Wsrpc-Offset"
	hdrEpoch     = "Wsrpc-Epoch"
	hdrPublisher = "Wsrpc-Publisher"
	hdrHistory   = "Wsrpc-History" // the topic's HistorySize when it was published
	hdrTTL       = "Wsrpc-Ttl"     // its HistoryTTL in milliseconds, absent for none
	hdrID        = "Wsrpc-Id"      // a live publication's id, to drop the copies of overlapping subscriptions
	hdrCount     = "Wsrpc-Count"   // publications in the message, when more than one
	// hdrFormat is absent in this format. A later version that changes it
	// incompatibly sets it, and this one refuses such messages rather than
	// misread them.
	hdrFormat = "Wsrpc-Format"

	hdrMsgID     = "Nats-Msg-Id"
	hdrExpectSeq = "Nats-Expected-Last-Subject-Sequence"
	hdrSequence  = "Nats-Sequence" // set by JetStream on a republished message
)

// ErrUnavailable is wrapped by the error of a Publish, Subscribe or History
// made while the connection to NATS is down: nothing was sent. The Hub
// answers it with CodeUnavailable, which a client retries.
var ErrUnavailable = errors.New("wsrpc: natsbroker: NATS is unavailable")

// maxTracked bounds the topics whose last delivered position the delivery
// loop keeps (to drop duplicates and fill gaps), and maxPubCache those whose
// last stored message a publishing process remembers.
const (
	maxTracked  = 1 << 16
	maxPubCache = 1 << 16
	maxAttempts = 1000 // publishes of one publication that lost a race (within Timeout)
	// QueueLen bounds the messages waiting between NATS and the delivery
	// loop; beyond, NATS drops this process's messages (a slow consumer),
	// and the gaps are filled from JetStream for topics with history.
	QueueLen = 8192
	// recentLen is how many messages back a copy of one is recognised: a
	// process subscribed to overlapping patterns gets one copy per
	// subscription, close together.
	recentLen = 1024
)

// Options configure a [Broker]. The zero value is usable.
type Options struct {
	// Prefix starts every subject the broker uses, so that several
	// applications share one NATS: publications are stored on
	// "<Prefix>.s.<topic>" and fanned out on "<Prefix>.p.<topic>". Default
	// [DefaultPrefix].
	Prefix string
	// Stream is the JetStream stream holding history. Default: the prefix
	// in upper case, with characters other than letters, digits, "-" and
	// "_" replaced by "_".
	Stream string
	// MaxHistory is how many publications of each topic the stream keeps
	// (its MaxMsgsPerSubject); a rule's HistorySize above it gets this
	// many. Default [DefaultMaxHistory].
	MaxHistory int
	// MaxBytes bounds the whole stream; the oldest publications go first.
	// Default [DefaultMaxBytes].
	MaxBytes int64
	// Replicas of the stream in a NATS cluster (default 1).
	Replicas int
	// Memory keeps the stream in memory rather than in files.
	Memory bool
	// LiveOnly never uses JetStream: every topic is live only, as on a
	// NATS without JetStream.
	LiveOnly bool
	// Timeout bounds every request to NATS a call makes. Default
	// [DefaultTimeout].
	Timeout time.Duration
	// Logger gets what the broker does on its own (gap fills, failures of
	// them). Default: slog.Default().
	Logger *slog.Logger
}

func (o *Options) fill() {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Stream == "" {
		o.Stream = strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z':
				return r - 'a' + 'A'
			case r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
				return r
			}
			return '_'
		}, o.Prefix)
	}
	if o.MaxHistory <= 0 {
		o.MaxHistory = DefaultMaxHistory
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Broker is a [pubsub.Broker] on NATS. See the package documentation for
// what it guarantees.
type Broker struct {
	opts    Options
	nc      *nats.Conn
	own     bool // nc was dialled by Connect: Close closes it
	js      jetstream.JetStream
	stream  jetstream.Stream // nil: live only
	sPrefix string           // "<prefix>.s."
	pPrefix string           // "<prefix>.p."
	ctx     context.Context  // cancelled by Close: ends what the loop waits for
	cancel  context.CancelFunc

	streamMu sync.Mutex // makes the stream again if it was deleted

	deliver func(pubsub.Publication)
	msgs    chan *nats.Msg
	kick    chan struct{} // the connection came back: catch up
	stop    chan struct{}
	wg      sync.WaitGroup
	retry   *time.Timer // a failed catch-up tries again; guarded by mu

	mu     sync.Mutex
	subs   map[string]*natsSub
	opened bool
	closed atomic.Bool

	pubMu sync.Mutex
	pubs  map[string]*pubState

	seenMu sync.Mutex
	seen   map[string]*seenState // what the loop delivered last, per topic
	floor  map[string]*seenState // an exact topic's top when the process subscribed: where a catch-up starts if nothing was delivered since

	recent    map[recentKey]struct{} // the last recentLen messages handled (owned by the loop)
	recentIdx []recentKey
	recentPos int

	lastSeq   atomic.Uint64 // the highest stream sequence the loop has seen
	outageSeq atomic.Uint64 // where the next catch-up of patterns starts (0: none)

	stats struct{ filled, fillFailed, dups atomic.Uint64 }
}

type natsSub struct {
	count int
	sub   *nats.Subscription
}

// pubState is what a publishing process knows of a topic's last stored
// message, and the publications waiting to be stored after it. Its mutex
// guards the queue; the position belongs to the one flusher running.
type pubState struct {
	mu      sync.Mutex
	queue   []*pendingPub
	running bool // a flusher is sending the queue

	known  bool
	seq    uint64 // stream sequence of the topic's last message (0: none)
	offset uint64 // offset of its last publication
	epoch  string
}

// seenState is the last position the delivery loop handed to the Hub for a
// topic.
type seenState struct {
	offset uint64
	epoch  string
}

// recentKey names one message: its subject and its stream sequence, or a
// live publication's id.
type recentKey struct {
	subject string
	seq     uint64
	id      string
}

// Connect dials NATS at url (a comma-separated list of servers) and
// returns a broker that owns the connection: Close closes it. natsOpts are
// added to the broker's own, which reconnect forever and buffer nothing
// while disconnected (a publication then fails at once rather than wait).
func Connect(url string, opts Options, natsOpts ...nats.Option) (*Broker, error) {
	base := []nats.Option{
		nats.Name("wsrpc"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.ReconnectBufSize(-1),
	}
	nc, err := nats.Connect(url, append(base, natsOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("wsrpc: natsbroker: connect %s: %w", url, err)
	}
	b, err := New(nc, opts)
	if err != nil {
		nc.Close()
		return nil, err
	}
	b.own = true
	return b, nil
}

// New returns a broker on the connection nc, which the caller keeps and
// closes after the broker. It makes the JetStream stream (or updates its
// configuration) unless opts.LiveOnly is set or the server has no
// JetStream; then the broker is live only.
func New(nc *nats.Conn, opts Options) (*Broker, error) {
	opts.fill()
	if err := pubsub.ValidTopic(opts.Prefix); err != nil {
		return nil, fmt.Errorf("wsrpc: natsbroker: prefix: %w", err)
	}
	b := &Broker{
		opts:      opts,
		nc:        nc,
		sPrefix:   opts.Prefix + ".s.",
		pPrefix:   opts.Prefix + ".p.",
		msgs:      make(chan *nats.Msg, QueueLen),
		kick:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
		subs:      make(map[string]*natsSub),
		pubs:      make(map[string]*pubState),
		seen:      make(map[string]*seenState),
		floor:     make(map[string]*seenState),
		recent:    make(map[recentKey]struct{}, recentLen),
		recentIdx: make([]recentKey, recentLen),
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	if !opts.LiveOnly {
		if err := b.openStream(); err != nil {
			b.cancel()
			return nil, err
		}
	}
	prevDown := nc.Opts.DisconnectedErrCB
	nc.SetDisconnectErrHandler(func(c *nats.Conn, err error) {
		if prevDown != nil {
			prevDown(c, err)
		}
		// Where the catch-up of patterns starts: the last message the
		// loop saw before the first of the disconnections it has not yet
		// caught up on (or earlier, which only means reading more).
		b.outageSeq.CompareAndSwap(0, b.lastSeq.Load()+1)
	})
	prev := nc.Opts.ReconnectedCB
	nc.SetReconnectHandler(func(c *nats.Conn) {
		if prev != nil {
			prev(c)
		}
		b.kickLoop()
	})
	return b, nil
}

// openStream makes or updates the stream, or leaves b live only when the
// server has no JetStream.
func (b *Broker) openStream() error {
	ctx, cancel := context.WithTimeout(context.Background(), b.opts.Timeout)
	defer cancel()
	js, err := jetstream.New(b.nc)
	if err != nil {
		return fmt.Errorf("wsrpc: natsbroker: %w", err)
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			b.opts.Logger.Warn("wsrpc: natsbroker: NATS has no JetStream: every topic is live only (no history, no recovery)", "url", b.nc.ConnectedUrlRedacted())
			return nil
		}
		return fmt.Errorf("wsrpc: natsbroker: JetStream: %w", err)
	}
	b.js = js
	st, err := js.CreateOrUpdateStream(ctx, b.streamConfig())
	if err != nil {
		return fmt.Errorf("wsrpc: natsbroker: stream %s: %w", b.opts.Stream, err)
	}
	b.stream = st
	b.lastSeq.Store(st.CachedInfo().State.LastSeq)
	return nil
}

func (b *Broker) streamConfig() jetstream.StreamConfig {
	storage := jetstream.FileStorage
	if b.opts.Memory {
		storage = jetstream.MemoryStorage
	}
	return jetstream.StreamConfig{
		Name:              b.opts.Stream,
		Description:       "wsrpc pub/sub history (natsbroker)",
		Subjects:          []string{b.sPrefix + ">"},
		MaxMsgsPerSubject: int64(b.opts.MaxHistory),
		MaxBytes:          b.opts.MaxBytes,
		Discard:           jetstream.DiscardOld,
		Storage:           storage,
		Replicas:          b.opts.Replicas,
		// A resend after a lost acknowledgement comes within the Timeout:
		// the window must outlast it for the resend to be recognised.
		Duplicates:  max(2*time.Minute, 2*b.opts.Timeout),
		AllowDirect: true,
		RePublish:   &jetstream.RePublish{Source: b.sPrefix + ">", Destination: b.pPrefix + ">"},
	}
}

// streamLost reports whether err says the stream is not there.
func streamLost(err error) bool {
	return errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders)
}

// remakeStream makes the stream again after it was deleted (by hand, or a
// memory stream lost with a nats-server restart). Its topics start again,
// each in a new epoch (the stream's creation time is part of it).
func (b *Broker) remakeStream(ctx context.Context) error {
	b.streamMu.Lock()
	defer b.streamMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, b.opts.Timeout)
	defer cancel()
	if _, err := b.js.CreateOrUpdateStream(ctx, b.streamConfig()); err != nil {
		return err
	}
	b.opts.Logger.Warn("wsrpc: natsbroker: the stream was gone and is made again: its topics start in new epochs", "stream", b.opts.Stream)
	b.pubMu.Lock()
	clear(b.pubs)
	b.pubMu.Unlock()
	return nil
}

// Connected reports whether the connection to NATS is up.
func (b *Broker) Connected() bool { return b.nc.IsConnected() }

// LiveOnly reports whether the broker keeps no history (no JetStream).
func (b *Broker) LiveOnly() bool { return b.stream == nil }

// Open implements [pubsub.Broker].
func (b *Broker) Open(deliver func(pubsub.Publication)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		return pubsub.ErrBrokerClosed
	}
	if b.opened {
		return errors.New("wsrpc: natsbroker: opened twice")
	}
	b.opened, b.deliver = true, deliver
	b.wg.Go(b.loop)
	return nil
}

// Close implements [pubsub.Broker]: it ends the broker's NATS
// subscriptions and its delivery loop, and closes the connection if
// Connect made it.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed.Swap(true) {
		b.mu.Unlock()
		return nil
	}
	for p, s := range b.subs {
		_ = s.sub.Unsubscribe()
		delete(b.subs, p)
	}
	if b.retry != nil {
		b.retry.Stop()
	}
	b.mu.Unlock()
	b.cancel()
	close(b.stop)
	b.wg.Wait()
	if b.own {
		b.nc.Close()
	}
	return nil
}

// Stats are counters of what the broker did on its own.
type Stats struct {
	Filled     uint64 // publications fetched from JetStream to fill a gap or catch up
	FillFailed uint64 // gaps and catch-ups that failed (clients recover exact topics themselves)
	Duplicates uint64 // copies received for overlapping subscriptions, dropped
}

// Stats returns the broker's counters.
func (b *Broker) Stats() Stats {
	return Stats{Filled: b.stats.filled.Load(), FillFailed: b.stats.fillFailed.Load(), Duplicates: b.stats.dups.Load()}
}

// BrokerEvents returns the counters of Stats under the names a metrics
// collector labels them with (filled, fill_failed, duplicates): a
// [pubsub.Hub] on this broker reports them in pubsub.Stats.BrokerEvents.
func (b *Broker) BrokerEvents() map[string]uint64 {
	s := b.Stats()
	return map[string]uint64{"filled": s.Filled, "fill_failed": s.FillFailed, "duplicates": s.Duplicates}
}

var _ pubsub.EventCounter = (*Broker)(nil)

func (b *Broker) usable() error {
	if b.closed.Load() {
		return pubsub.ErrBrokerClosed
	}
	if !b.nc.IsConnected() {
		return fmt.Errorf("%w (%s)", ErrUnavailable, b.nc.Status())
	}
	return nil
}

// Subscribe implements [pubsub.Broker]: the first Subscribe of a pattern
// subscribes the process on NATS, once, and returns when NATS has it.
func (b *Broker) Subscribe(ctx context.Context, pattern string) error {
	if err := b.usable(); err != nil {
		return err
	}
	b.mu.Lock()
	if b.closed.Load() {
		b.mu.Unlock()
		return pubsub.ErrBrokerClosed
	}
	s := b.subs[pattern]
	if s == nil {
		sub, err := b.nc.ChanSubscribe(b.pPrefix+pattern, b.msgs)
		if err != nil {
			b.mu.Unlock()
			return fmt.Errorf("wsrpc: natsbroker: subscribe %q: %w", pattern, err)
		}
		s = &natsSub{sub: sub}
		b.subs[pattern] = s
	}
	s.count++
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, b.opts.Timeout)
	defer cancel()
	if err := b.nc.FlushWithContext(ctx); err != nil {
		_ = b.Unsubscribe(context.Background(), pattern)
		return fmt.Errorf("%w: subscribe %q: %v", ErrUnavailable, pattern, err)
	}
	if b.stream != nil && !pubsub.IsPattern(pattern) {
		// Where a catch-up starts for this topic if nothing is delivered
		// on it before the connection is lost: what anything newer reaches
		// the process live from now on. (Not what was delivered: a copy of
		// that top may still be on its way to the loop, for a pattern.)
		if m, err := b.last(ctx, pattern); err == nil && m != nil {
			b.seenMu.Lock()
			if b.floor[pattern] == nil && len(b.floor) < maxTracked {
				b.floor[pattern] = &seenState{offset: m.offset, epoch: m.epoch}
			}
			b.seenMu.Unlock()
		}
	}
	return nil
}

// Unsubscribe implements [pubsub.Broker].
func (b *Broker) Unsubscribe(_ context.Context, pattern string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.subs[pattern]
	if s == nil {
		return nil
	}
	if s.count--; s.count > 0 {
		return nil
	}
	delete(b.subs, pattern)
	b.forget(pattern)
	if err := s.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("wsrpc: natsbroker: unsubscribe %q: %w", pattern, err)
	}
	return nil
}

// forget drops what the loop keeps of the topics pattern covered that no
// remaining subscription covers (b.mu is held): were they subscribed to
// again, the publications between would otherwise be filled in for the new
// subscribers.
func (b *Broker) forget(pattern string) {
	covered := func(t string) bool {
		for p := range b.subs {
			if pubsub.Match(p, t) {
				return true
			}
		}
		return false
	}
	b.seenMu.Lock()
	defer b.seenMu.Unlock()
	if !pubsub.IsPattern(pattern) {
		delete(b.floor, pattern)
		if !covered(pattern) {
			delete(b.seen, pattern)
		}
		return
	}
	for t := range b.seen {
		if pubsub.Match(pattern, t) && !covered(t) {
			delete(b.seen, t)
		}
	}
}

// track records st for topic; seenMu is held. It forgets an arbitrary
// topic when the map is full (that topic then loses only its duplicate and
// gap checks until its next publication).
func (b *Broker) track(topic string, st *seenState) {
	if len(b.seen) >= maxTracked {
		for t := range b.seen {
			delete(b.seen, t)
			break
		}
	}
	b.seen[topic] = st
}
