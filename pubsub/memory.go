package pubsub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsrpc/wsrpc/internal/topic"
)

// DefaultMaxTopics bounds the topics a [MemoryBroker] keeps a stream for.
const DefaultMaxTopics = 100_000

// streamIdle is how long a MemoryBroker keeps the stream of a topic that
// has no history and no subscriber, so that its offsets continue across
// publications that come close together.
const streamIdle = time.Minute

// ErrBrokerClosed is returned by a Broker used after Close.
var ErrBrokerClosed = errors.New("wsrpc: pubsub broker closed")

// ErrTooManyTopics is wrapped by the error of a Broker that refuses a new
// topic because it keeps as many as it may; the Hub answers CodeBusy.
var ErrTooManyTopics = errors.New("wsrpc: pubsub: too many topics")

// MemoryBroker is the in-process [Broker]: publications go to this
// process's Hub only, and history lives in memory, lost (a new epoch) when
// the process ends. It is what a Hub uses unless given another.
//
// It keeps one stream per topic while the topic has history, a subscriber,
// or had a publication in the last minute, at most maxTopics (0:
// [DefaultMaxTopics]) of them; a publication on a new topic beyond that is
// refused. A topic's history is bounded by the HistorySize and HistoryTTL
// of each publication (see [PublishOptions]).
type MemoryBroker struct {
	maxTopics int

	deliver atomic.Pointer[func(Publication)]

	mu        sync.Mutex
	streams   map[string]*stream
	subs      map[string]int // exact topics the node is subscribed to, with a count
	closed    bool
	isClosed  atomic.Bool // closed, readable without mu
	lastSweep time.Time
}

// stream is one topic's: its position and history. Publishing appends and
// delivers under mu, which makes "append and fan out" atomic per topic.
type stream struct {
	mu      sync.Mutex
	epoch   string
	offset  uint64
	hist    []kept // oldest first
	removed bool   // swept out of the broker: look the topic up again
	touched time.Time
}

type kept struct {
	pub     Publication
	expires time.Time // zero: never
}

// NewMemoryBroker returns an in-process broker keeping at most maxTopics
// topic streams (0: [DefaultMaxTopics]).
func NewMemoryBroker(maxTopics int) *MemoryBroker {
	if maxTopics <= 0 {
		maxTopics = DefaultMaxTopics
	}
	return &MemoryBroker{maxTopics: maxTopics, streams: make(map[string]*stream), subs: make(map[string]int)}
}

// Open implements [Broker].
func (b *MemoryBroker) Open(deliver func(Publication)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrBrokerClosed
	}
	if !b.deliver.CompareAndSwap(nil, &deliver) {
		return errors.New("wsrpc: pubsub: MemoryBroker opened twice (one Hub per broker)")
	}
	return nil
}

// Subscribe implements [Broker]. Every publication is handed to the Hub in
// any case; subscribing to an exact topic keeps its stream.
func (b *MemoryBroker) Subscribe(_ context.Context, pattern string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrBrokerClosed
	}
	if !topic.IsPattern(pattern) {
		b.subs[pattern]++
	}
	return nil
}

// Unsubscribe implements [Broker].
func (b *MemoryBroker) Unsubscribe(_ context.Context, pattern string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if topic.IsPattern(pattern) {
		return nil
	}
	if n := b.subs[pattern]; n > 1 {
		b.subs[pattern] = n - 1
	} else {
		delete(b.subs, pattern)
	}
	return nil
}

// stream returns topic's stream, making it if create; nil if there is none
// (or no room for one, err says).
func (b *MemoryBroker) stream(t string, create bool, now time.Time) (*stream, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrBrokerClosed
	}
	s := b.streams[t]
	if s != nil || !create {
		return s, nil
	}
	if len(b.streams) >= b.maxTopics || now.Sub(b.lastSweep) > streamIdle {
		b.sweepLocked(now)
	}
	if len(b.streams) >= b.maxTopics {
		return nil, fmt.Errorf("%w (limit %d)", ErrTooManyTopics, b.maxTopics)
	}
	s = &stream{epoch: newEpoch(), touched: now}
	b.streams[t] = s
	return s, nil
}

// sweepLocked drops the streams that hold nothing worth keeping: no
// history left, no subscriber, idle for streamIdle.
func (b *MemoryBroker) sweepLocked(now time.Time) {
	b.lastSweep = now
	for t, s := range b.streams {
		if b.subs[t] > 0 || !s.mu.TryLock() {
			continue // in use: keep it
		}
		s.expireLocked(now)
		if len(s.hist) == 0 && now.Sub(s.touched) > streamIdle {
			s.removed = true
			delete(b.streams, t)
		}
		s.mu.Unlock()
	}
}

// expireLocked drops the history entries whose time is up.
func (s *stream) expireLocked(now time.Time) {
	i := 0
	for i < len(s.hist) && !s.hist[i].expires.IsZero() && now.After(s.hist[i].expires) {
		i++
	}
	if i > 0 {
		clear(s.hist[:i])
		s.hist = s.hist[i:]
		if len(s.hist) == 0 {
			s.hist = nil
		}
	}
}

// Publish implements [Broker].
func (b *MemoryBroker) Publish(_ context.Context, t string, data []byte, opts PublishOptions) (Position, error) {
	now := time.Now()
	for {
		s, err := b.stream(t, true, now)
		if err != nil {
			return Position{}, err
		}
		s.mu.Lock()
		if s.removed {
			s.mu.Unlock()
			continue
		}
		s.offset++
		s.touched = now
		pub := Publication{Topic: t, Offset: s.offset, Epoch: s.epoch, Data: data, Publisher: opts.Publisher}
		if opts.HistorySize > 0 {
			k := kept{pub: pub}
			if opts.HistoryTTL > 0 {
				k.expires = now.Add(opts.HistoryTTL)
			}
			s.hist = append(s.hist, k)
			if over := len(s.hist) - opts.HistorySize; over > 0 {
				clear(s.hist[:over])
				s.hist = s.hist[over:]
			}
			s.expireLocked(now)
		} else if len(s.hist) > 0 {
			s.hist = nil // the topic keeps no history any more
		}
		if deliver := b.deliver.Load(); deliver != nil && !b.closedNow() {
			(*deliver)(pub)
		}
		s.mu.Unlock()
		return pub.Position(), nil
	}
}

// History implements [Broker].
func (b *MemoryBroker) History(_ context.Context, t string, req HistoryRequest) (History, error) {
	now := time.Now()
	for {
		// A stream is made for a topic asked about, so that the position
		// returned stays valid for the subscriber that asked.
		s, err := b.stream(t, true, now)
		if err != nil {
			return History{}, err
		}
		s.mu.Lock()
		if s.removed {
			s.mu.Unlock()
			continue
		}
		s.touched = now
		s.expireLocked(now)
		h := History{Top: Position{Offset: s.offset, Epoch: s.epoch}}
		if req.Since != nil && req.Since.Epoch == s.epoch && req.Limit > 0 {
			first := len(s.hist)
			for first > 0 && s.hist[first-1].pub.Offset > req.Since.Offset {
				first--
			}
			first = max(first, len(s.hist)-req.Limit)
			h.Publications = make([]Publication, 0, len(s.hist)-first)
			for _, k := range s.hist[first:] {
				h.Publications = append(h.Publications, k.pub)
			}
		}
		s.mu.Unlock()
		return h, nil
	}
}

// Close implements [Broker].
func (b *MemoryBroker) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.isClosed.Store(true)
	return nil
}

func (b *MemoryBroker) closedNow() bool { return b.isClosed.Load() }

// newEpoch returns a fresh epoch: 8 random hex digits.
func newEpoch() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
