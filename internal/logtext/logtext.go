// Package logtext keeps what a peer sends from growing the logs: it cuts
// peer-supplied strings to a bounded length and limits how often one
// connection's warnings are logged. A Limiter is safe for concurrent use.
package logtext

import (
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// MaxField is the most bytes of a peer-supplied string (a method name, an
// id, an error that quotes them, a header) that a log record repeats.
const MaxField = 256

// Clip returns s cut to at most MaxField bytes, at a character boundary,
// with a note of its full length when it was cut.
func Clip(s string) string { return ClipTo(s, MaxField) }

// ClipTo is Clip with a bound of n bytes.
func ClipTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}

// Limits of a connection's warnings: a burst of Burst records, then one per
// Interval.
const (
	Burst    = 10
	Interval = time.Second
)

// Limiter limits the log records about one connection. The zero value is
// ready to use.
type Limiter struct {
	mu         sync.Mutex
	tokens     int
	last       time.Time
	started    bool
	suppressed int
}

// Allow reports whether a record may be logged now, and how many were
// suppressed since the last one allowed (to be logged with it).
func (l *Limiter) Allow(now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.started {
		l.started, l.tokens, l.last = true, Burst, now
	}
	if refill := int(now.Sub(l.last) / Interval); refill > 0 {
		l.tokens = min(Burst, l.tokens+refill)
		l.last = l.last.Add(time.Duration(refill) * Interval)
	}
	if l.tokens == 0 {
		l.suppressed++
		return false, 0
	}
	l.tokens--
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}
