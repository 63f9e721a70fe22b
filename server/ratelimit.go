package server

import (
	"math"
	"sync"
	"time"
)

// MaxHandshakeRetryAfter bounds the Retry-After that [WithHandshakeRate]
// gives a refused handshake, whatever the queue of refused clients before
// it. It is the Go client's own cap on a server's hint.
const MaxHandshakeRetryAfter = time.Minute

// handshakeLimiter is the token bucket of [WithHandshakeRate]. Besides the
// bucket it keeps the moment it last told a refused handshake to come back
// at: the next refusal is told one token's time later (see step), so that a storm of
// refused clients comes back spread at the rate instead of all together
// when the first token is free. Those moments are advice, not reservations:
// the bucket serves whoever comes first. Safe for concurrent use.
type handshakeLimiter struct {
	rate  float64 // tokens per second, > 0
	burst float64 // ≥ 1

	mu       sync.Mutex
	tokens   float64
	last     time.Time // of the last refill
	promised time.Time // the latest moment a refusal named; zero: none
}

func newHandshakeLimiter(rate float64, burst int, now time.Time) *handshakeLimiter {
	b := float64(burst)
	if burst == 0 {
		b = max(1, math.Ceil(rate))
	}
	return &handshakeLimiter{rate: rate, burst: b, tokens: b, last: now}
}

// take takes a token at now, or reports how long the handshake should wait
// before it tries again (> 0, at most MaxHandshakeRetryAfter).
func (l *handshakeLimiter) take(now time.Time) (ok bool, wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.After(l.last) {
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
		l.last = now
	}
	if l.tokens >= 1 {
		l.tokens--
		return true, 0
	}
	// In seconds from now, as floats: a tiny rate must not overflow a
	// Duration.
	capSecs := MaxHandshakeRetryAfter.Seconds()
	next := (1 - l.tokens) / l.rate // until a token is free
	if !l.promised.IsZero() {
		next = max(next, l.promised.Sub(now).Seconds()+l.step())
	}
	next = min(next, capSecs)
	l.promised = now.Add(time.Duration(next * float64(time.Second)))
	return false, time.Duration(next * float64(time.Second))
}

// step is how far apart, in seconds, two refusals are told to come back:
// one token's time, or one burst-th of a second when the burst is below the
// rate. Retry-After counts whole seconds, so the clients told to come back
// within the same second arrive together, and the bucket lets at most burst
// of them in at once: more would be refused again, and pushed to the back.
func (l *handshakeLimiter) step() float64 {
	return 1 / min(l.rate, l.burst)
}

// retryAfterSeconds is a Retry-After header's delay-seconds for d: rounded
// up, at least 1.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}
