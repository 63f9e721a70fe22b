package natsbroker

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

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
	queueLen    = 1 << 16 // messages between NATS and the delivery loop
	maxAttempts = 1000    // publishes of one publication that lost a race (within Timeout)
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
	created time.Time        // the stream's creation: its identity
	sPrefix string           // "<prefix>.s."
	pPrefix string           // "<prefix>.p."

	deliver func(pubsub.Publication)
	msgs    chan *nats.Msg
	kick    chan struct{} // the connection came back: catch up
	stop    chan struct{}
	wg      sync.WaitGroup

	mu     sync.Mutex
	subs   map[string]*natsSub
	opened bool
	closed atomic.Bool

	pubMu sync.Mutex
	pubs  map[string]*pubState

	seenMu sync.Mutex
	seen   map[string]*seenState // owned by the delivery loop, seeded by Subscribe

	lastSeq   atomic.Uint64 // the highest stream sequence the loop has seen
	outageSeq atomic.Uint64 // where the next catch-up of patterns starts (0: none)

	stats struct{ filled, fillFailed, dups atomic.Uint64 }
}

type natsSub struct {
	count int
	sub   *nats.Subscription
}

// pubState is what a publishing process knows of a topic's last stored
// message; its mutex serialises the process's publications on the topic.
type pubState struct {
	mu     sync.Mutex
	known  bool
	seq    uint64 // stream sequence of the topic's last message (0: none)
	offset uint64
	epoch  string
}

// seenState is the last position the delivery loop handed to the Hub for a
// topic.
type seenState struct {
	offset uint64
	epoch  string
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
		opts:    opts,
		nc:      nc,
		sPrefix: opts.Prefix + ".s.",
		pPrefix: opts.Prefix + ".p.",
		msgs:    make(chan *nats.Msg, queueLen),
		kick:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		subs:    make(map[string]*natsSub),
		pubs:    make(map[string]*pubState),
		seen:    make(map[string]*seenState),
	}
	if !opts.LiveOnly {
		if err := b.openStream(); err != nil {
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
		select {
		case b.kick <- struct{}{}:
		default:
		}
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
			return nil // live only
		}
		return fmt.Errorf("wsrpc: natsbroker: JetStream: %w", err)
	}
	storage := jetstream.FileStorage
	if b.opts.Memory {
		storage = jetstream.MemoryStorage
	}
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              b.opts.Stream,
		Description:       "wsrpc pub/sub history (natsbroker)",
		Subjects:          []string{b.sPrefix + ">"},
		MaxMsgsPerSubject: int64(b.opts.MaxHistory),
		MaxBytes:          b.opts.MaxBytes,
		Discard:           jetstream.DiscardOld,
		Storage:           storage,
		Replicas:          b.opts.Replicas,
		Duplicates:        2 * time.Minute,
		AllowDirect:       true,
		RePublish:         &jetstream.RePublish{Source: b.sPrefix + ">", Destination: b.pPrefix + ">"},
	})
	if err != nil {
		return fmt.Errorf("wsrpc: natsbroker: stream %s: %w", b.opts.Stream, err)
	}
	b.js, b.stream, b.created = js, st, st.CachedInfo().Created
	b.lastSeq.Store(st.CachedInfo().State.LastSeq)
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
	b.mu.Unlock()
	close(b.stop)
	b.wg.Wait()
	if b.own {
		b.nc.Close()
	}
	return nil
}

// Stats are counters of what the broker did on its own.
type Stats struct {
	Filled     uint64 // publications fetched from JetStream to fill a gap
	FillFailed uint64 // gaps it could not fill (the clients recover them)
	Duplicates uint64 // publications received twice (overlapping patterns) and dropped
}

// Stats returns the broker's counters.
func (b *Broker) Stats() Stats {
	return Stats{Filled: b.stats.filled.Load(), FillFailed: b.stats.fillFailed.Load(), Duplicates: b.stats.dups.Load()}
}

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
		// Seed what the loop has delivered with the stream's top, now that
		// anything newer reaches it live: after a lost connection it can
		// then fill what it missed even if nothing new arrives.
		if m, err := b.last(ctx, pattern); err == nil && m != nil {
			b.seenMu.Lock()
			if b.seen[pattern] == nil {
				b.track(pattern, &seenState{offset: m.offset, epoch: m.epoch})
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
	if !pubsub.IsPattern(pattern) {
		b.seenMu.Lock()
		delete(b.seen, pattern)
		b.seenMu.Unlock()
	}
	if err := s.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("wsrpc: natsbroker: unsubscribe %q: %w", pattern, err)
	}
	return nil
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

// Publish implements [pubsub.Broker]. A topic with history goes through
// JetStream (one publish and its acknowledgement, more only when another
// process published on the topic meanwhile); one without, or every topic
// without JetStream, is published on core NATS, live only, and gets the
// zero Position.
func (b *Broker) Publish(ctx context.Context, topic string, data []byte, opts pubsub.PublishOptions) (pubsub.Position, error) {
	if err := b.usable(); err != nil {
		return pubsub.Position{}, err
	}
	if b.stream == nil || opts.HistorySize <= 0 {
		m := &nats.Msg{Subject: b.pPrefix + topic, Data: data}
		if opts.Publisher != "" {
			m.Header = nats.Header{hdrPublisher: {opts.Publisher}}
		}
		if err := b.nc.PublishMsg(m); err != nil {
			return pubsub.Position{}, fmt.Errorf("%w: publish: %v", ErrUnavailable, err)
		}
		return pubsub.Position{}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, b.opts.Timeout)
	defer cancel()
	ps := b.pubState(topic)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	// One message id for every attempt: JetStream drops a resend of a
	// message it already stored (its duplicate window), so a publish whose
	// acknowledgement was lost is resent without being stored twice.
	id := nuid.Next()
	sent := false
	for attempt := 0; ; attempt++ {
		if !ps.known {
			if err := b.load(ctx, topic, ps); err != nil {
				return pubsub.Position{}, b.failed(err, sent)
			}
		}
		h := nats.Header{
			hdrMsgID:     {id},
			hdrExpectSeq: {strconv.FormatUint(ps.seq, 10)},
			hdrOffset:    {strconv.FormatUint(ps.offset+1, 10)},
			hdrEpoch:     {ps.epoch},
			hdrHistory:   {strconv.Itoa(opts.HistorySize)},
		}
		if opts.Publisher != "" {
			h[hdrPublisher] = []string{opts.Publisher}
		}
		if opts.HistoryTTL > 0 {
			h[hdrTTL] = []string{strconv.FormatInt(opts.HistoryTTL.Milliseconds(), 10)}
		}
		sent = true
		// An attempt waits for its acknowledgement a fifth of the Timeout
		// at most: one lost with the connection is not waited for long
		// before the resend.
		actx, acancel := context.WithTimeout(ctx, b.opts.Timeout/5)
		ack, err := b.js.PublishMsg(actx, &nats.Msg{Subject: b.sPrefix + topic, Data: data, Header: h})
		acancel()
		if err == nil {
			if ack.Duplicate {
				// An earlier attempt was stored, at the sequence the
				// acknowledgement gives: its position is in its headers.
				ps.known = false
				raw, err := b.stream.GetMsg(ctx, ack.Sequence)
				if err != nil {
					return pubsub.Position{}, b.failed(err, sent)
				}
				m, err := decodeStored(topic, raw.Sequence, raw.Time, raw.Header, raw.Data)
				if err != nil {
					return pubsub.Position{}, err
				}
				return pubsub.Position{Offset: m.offset, Epoch: m.epoch}, nil
			}
			ps.seq, ps.offset = ack.Sequence, ps.offset+1
			return pubsub.Position{Offset: ps.offset, Epoch: ps.epoch}, nil
		}
		ps.known = false
		if attempt+1 >= maxAttempts || ctx.Err() != nil {
			return pubsub.Position{}, b.failed(err, sent)
		}
		if wrongLast(err) {
			// Another process published on the topic first. Back off a
			// random while, growing, so that contenders spread out.
			d := time.Duration(rand.Int64N(int64(min(attempt+1, 50)) * int64(100*time.Microsecond)))
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return pubsub.Position{}, b.failed(ctx.Err(), sent)
			}
			continue
		}
		// Lost on the way (the connection dropped): wait for it and resend,
		// under the same id.
		if err := b.awaitConnected(ctx); err != nil {
			return pubsub.Position{}, b.failed(err, sent)
		}
	}
}

// failed is Publish's error: unavailable when nothing may have been stored,
// else one saying the outcome is unknown.
func (b *Broker) failed(err error, sent bool) error {
	if errors.Is(err, pubsub.ErrBrokerClosed) || errors.Is(err, ErrUnavailable) && !sent {
		return err
	}
	if !sent {
		return fmt.Errorf("%w: publish: %v", ErrUnavailable, err)
	}
	return fmt.Errorf("%w: natsbroker: %w", pubsub.ErrPublishUnknown, err)
}

// awaitConnected waits until the connection to NATS is up again.
func (b *Broker) awaitConnected(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !b.nc.IsConnected() {
		if b.closed.Load() || b.nc.IsClosed() {
			return pubsub.ErrBrokerClosed
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

func wrongLast(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// pubState returns topic's publishing state, making it if needed.
func (b *Broker) pubState(topic string) *pubState {
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	ps := b.pubs[topic]
	if ps == nil {
		if len(b.pubs) >= maxPubCache {
			for t := range b.pubs {
				delete(b.pubs, t) // a holder keeps its pointer; the next one loads again
				break
			}
		}
		ps = &pubState{}
		b.pubs[topic] = ps
	}
	return ps
}

// load reads topic's last stored message into ps. A topic with none starts
// a new run of offsets, with an epoch of its own.
func (b *Broker) load(ctx context.Context, topic string, ps *pubState) error {
	m, err := b.last(ctx, topic)
	if err != nil {
		return err
	}
	if m != nil {
		ps.seq, ps.offset, ps.epoch = m.seq, m.offset, m.epoch
		ps.known = true
		return nil
	}
	// The epoch of a run is the stream's identity and where the stream was
	// when the run started: a recreated stream, or a topic that starts
	// again after all its messages were dropped, gets a new one. Two
	// processes that start the same run race on the expected sequence 0;
	// the loser loads the winner's epoch.
	info, err := b.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("wsrpc: natsbroker: stream info: %w", err)
	}
	ps.seq, ps.offset, ps.epoch = 0, 0, runEpoch(b.created, info.State.LastSeq)
	ps.known = true
	return nil
}

func runEpoch(created time.Time, lastSeq uint64) string {
	var buf [16]byte
	binary.BigEndian.PutUint64(buf[:8], uint64(created.UnixNano()))
	binary.BigEndian.PutUint64(buf[8:], lastSeq)
	sum := sha256.Sum256(buf[:])
	return hex.EncodeToString(sum[:4])
}

// stored is a message of the stream, decoded.
type stored struct {
	seq     uint64
	offset  uint64
	epoch   string
	history int
	ttl     time.Duration
	time    time.Time
	pub     pubsub.Publication
}

// last returns topic's last stored message, nil when it has none.
func (b *Broker) last(ctx context.Context, topic string) (*stored, error) {
	if b.stream == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, b.opts.Timeout)
	defer cancel()
	raw, err := b.stream.GetLastMsgForSubject(ctx, b.sPrefix+topic)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		if !b.nc.IsConnected() {
			return nil, fmt.Errorf("%w: reading %q: %v", ErrUnavailable, topic, err)
		}
		return nil, fmt.Errorf("wsrpc: natsbroker: reading %q: %w", topic, err)
	}
	m, err := decodeStored(topic, raw.Sequence, raw.Time, raw.Header, raw.Data)
	if err != nil {
		return nil, err
	}
	return m, nil
}

func decodeStored(topic string, seq uint64, at time.Time, h nats.Header, data []byte) (*stored, error) {
	off, err := strconv.ParseUint(h.Get(hdrOffset), 10, 64)
	if err != nil || off == 0 {
		return nil, fmt.Errorf("wsrpc: natsbroker: message %d of %q has no valid %s header (not written by this broker?)", seq, topic, hdrOffset)
	}
	m := &stored{seq: seq, offset: off, epoch: h.Get(hdrEpoch), time: at}
	m.history, _ = strconv.Atoi(h.Get(hdrHistory))
	if ms, err := strconv.ParseInt(h.Get(hdrTTL), 10, 64); err == nil && ms > 0 {
		m.ttl = time.Duration(min(ms, int64(1<<63-1)/int64(time.Millisecond))) * time.Millisecond
	}
	m.pub = pubsub.Publication{Topic: topic, Offset: off, Epoch: m.epoch, Data: data, Publisher: h.Get(hdrPublisher)}
	return m, nil
}

// History implements [pubsub.Broker]. A topic without history (or every
// topic without JetStream) answers Live. Otherwise the top is the topic's
// last stored message, and the publications after req.Since are read from
// the stream, at most req.Limit and what the topic's history keeps
// (HistorySize, HistoryTTL of its publications).
func (b *Broker) History(ctx context.Context, topic string, req pubsub.HistoryRequest) (pubsub.History, error) {
	if b.closed.Load() {
		return pubsub.History{}, pubsub.ErrBrokerClosed
	}
	if b.stream == nil || req.HistorySize <= 0 {
		return pubsub.History{Live: true}, nil
	}
	if err := b.usable(); err != nil {
		return pubsub.History{}, err
	}
	top, err := b.last(ctx, topic)
	if err != nil {
		return pubsub.History{}, err
	}
	if top == nil {
		return pubsub.History{}, nil // no publication yet (offset 0, epoch to come)
	}
	h := pubsub.History{Top: pubsub.Position{Offset: top.offset, Epoch: top.epoch}}
	since := req.Since
	if since == nil || since.Epoch != top.epoch || since.Offset >= top.offset {
		return h, nil
	}
	want := top.offset - since.Offset
	limit := req.Limit
	if limit <= 0 {
		limit = b.opts.MaxHistory
	}
	keep := uint64(min(limit, top.history, b.opts.MaxHistory))
	if keep == 0 {
		return h, nil
	}
	want = min(want, keep)
	from := top.offset - want + 1 // the first offset to return
	pubs, err := b.read(ctx, topic, from, top)
	if err != nil {
		return pubsub.History{}, err
	}
	h.Publications = pubs
	return h, nil
}

// read returns topic's stored publications from offset from up to top (the
// topic's last message, already read), leaving out those older than their
// HistoryTTL. It reads the topic's messages in the stream with an ordered
// consumer, oldest first, skipping those before from: at most MaxHistory.
func (b *Broker) read(ctx context.Context, topic string, from uint64, top *stored) ([]pubsub.Publication, error) {
	if from > top.offset {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, b.opts.Timeout)
	defer cancel()
	cons, err := b.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{b.sPrefix + topic},
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: b.opts.Timeout,
	})
	if err != nil {
		return nil, fmt.Errorf("wsrpc: natsbroker: reading the history of %q: %w", topic, err)
	}
	now := time.Now()
	var pubs []pubsub.Publication
	for {
		batch, err := cons.Fetch(b.opts.MaxHistory, jetstream.FetchContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("wsrpc: natsbroker: reading the history of %q: %w", topic, err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			md, err := msg.Metadata()
			if err != nil {
				continue
			}
			m, err := decodeStored(topic, md.Sequence.Stream, md.Timestamp, msg.Headers(), msg.Data())
			if err != nil || m.epoch != top.epoch || m.offset < from {
				continue
			}
			if m.ttl > 0 && now.Sub(m.time) > m.ttl {
				continue
			}
			pubs = append(pubs, m.pub)
			if m.seq >= top.seq {
				return pubs, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, fmt.Errorf("wsrpc: natsbroker: reading the history of %q: %w", topic, err)
		}
		if n == 0 {
			return pubs, nil // the top is gone (pushed out meanwhile)
		}
	}
}

// loop hands what NATS delivers to the Hub, one publication at a time, in
// the order the process receives them, and catches up after a lost
// connection.
func (b *Broker) loop() {
	for {
		select {
		case m := <-b.msgs:
			b.handle(m)
		case <-b.kick:
			b.catchUp()
		case <-b.stop:
			return
		}
	}
}

// handle delivers one message from NATS. A publication with a position is
// dropped if it was delivered already (two overlapping patterns both
// received it), and a gap before it (the connection was lost, or NATS
// dropped messages for a slow process) is filled from JetStream first.
func (b *Broker) handle(m *nats.Msg) {
	topic, ok := strings.CutPrefix(m.Subject, b.pPrefix)
	if !ok {
		return
	}
	if m.Header.Get(hdrOffset) == "" { // live only
		b.deliver(pubsub.Publication{Topic: topic, Data: m.Data, Publisher: m.Header.Get(hdrPublisher)})
		return
	}
	seq, _ := strconv.ParseUint(m.Header.Get(hdrSequence), 10, 64)
	s, err := decodeStored(topic, seq, time.Time{}, m.Header, m.Data)
	if err != nil {
		return
	}
	if seq > b.lastSeq.Load() {
		b.lastSeq.Store(seq) // only the loop stores
	}
	if !b.deliverStored(s) {
		b.stats.dups.Add(1)
	}
}

// deliverStored delivers s in order: after what is missing before it, and
// not twice. It reports false if s was delivered already.
func (b *Broker) deliverStored(s *stored) bool {
	b.seenMu.Lock()
	st := b.seen[s.pub.Topic]
	b.seenMu.Unlock()
	if st != nil && st.epoch == s.epoch {
		if s.offset <= st.offset {
			return false
		}
		if s.offset > st.offset+1 {
			b.fill(s.pub.Topic, st.offset+1, s)
		}
	}
	b.seenMu.Lock()
	if st = b.seen[s.pub.Topic]; st == nil {
		st = &seenState{}
		b.track(s.pub.Topic, st)
	}
	st.offset, st.epoch = s.offset, s.epoch
	b.seenMu.Unlock()
	b.deliver(s.pub)
	return true
}

// fill delivers topic's publications from offset from up to (not
// including) next, read from JetStream. What it cannot read the clients
// recover themselves (they see the gap in offsets).
func (b *Broker) fill(topic string, from uint64, next *stored) {
	ctx, cancel := context.WithTimeout(context.Background(), b.opts.Timeout)
	defer cancel()
	bound := &stored{seq: next.seq - 1, offset: next.offset - 1, epoch: next.epoch}
	if next.seq == 0 {
		bound.seq = ^uint64(0)
	}
	pubs, err := b.read(ctx, topic, from, bound)
	if err != nil {
		b.stats.fillFailed.Add(1)
		b.opts.Logger.Warn("wsrpc: natsbroker: filling a gap failed; subscribers will recover it", "topic", topic, "from", from, "to", next.offset-1, "err", err)
		return
	}
	for _, p := range pubs {
		if p.Offset >= next.offset {
			break
		}
		b.stats.filled.Add(1)
		b.deliver(p)
	}
}

// maxCatchUp bounds the messages one pattern's catch-up reads.
const maxCatchUp = 10_000

// catchUp runs after the connection to NATS came back: every exact topic
// the process is subscribed to is compared with the stream's top, and
// every pattern's messages since the connection was lost are read from the
// stream; what was published meanwhile is delivered, in order, once.
func (b *Broker) catchUp() {
	if b.stream == nil {
		return
	}
	from := b.outageSeq.Swap(0)
	b.mu.Lock()
	var topics, patterns []string
	for p := range b.subs {
		if pubsub.IsPattern(p) {
			patterns = append(patterns, p)
		} else {
			topics = append(topics, p)
		}
	}
	b.mu.Unlock()
	if from > 0 {
		for _, p := range patterns {
			if err := b.scan(p, from); err != nil {
				b.stats.fillFailed.Add(1)
				b.opts.Logger.Warn("wsrpc: natsbroker: catching up a pattern failed; its subscribers may have missed publications", "pattern", p, "err", err)
			}
		}
	}
	for _, t := range topics {
		select {
		case <-b.stop:
			return
		default:
		}
		b.seenMu.Lock()
		st := b.seen[t]
		var have seenState
		if st != nil {
			have = *st
		}
		b.seenMu.Unlock()
		if st == nil {
			continue
		}
		top, err := b.last(context.Background(), t)
		if err != nil || top == nil || top.epoch != have.epoch || top.offset <= have.offset {
			continue
		}
		if b.deliverStored(top) { // fills from have.offset+1 first
			b.stats.filled.Add(1)
		}
	}
}

// scan delivers the stream's messages matching pattern from sequence from
// on (at most maxCatchUp), through deliverStored, which drops what was
// delivered already.
func (b *Broker) scan(pattern string, from uint64) error {
	ctx, cancel := context.WithTimeout(context.Background(), b.opts.Timeout)
	defer cancel()
	cons, err := b.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{b.sPrefix + pattern},
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       from,
		InactiveThreshold: b.opts.Timeout,
	})
	if err != nil {
		return err
	}
	read := 0
	for read < maxCatchUp {
		batch, err := cons.FetchNoWait(min(1000, maxCatchUp-read))
		if err != nil {
			return err
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			md, err := msg.Metadata()
			if err != nil {
				continue
			}
			topic := strings.TrimPrefix(msg.Subject(), b.sPrefix)
			s, err := decodeStored(topic, md.Sequence.Stream, md.Timestamp, msg.Headers(), msg.Data())
			if err != nil {
				continue
			}
			if b.deliverStored(s) {
				b.stats.filled.Add(1)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return err
		}
		if n == 0 {
			return nil
		}
		read += n
	}
	return fmt.Errorf("more than %d messages to catch up on", maxCatchUp)
}
