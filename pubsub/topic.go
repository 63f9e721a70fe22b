package pubsub

import (
	"strings"

	"github.com/wsrpc/wsrpc/internal/topic"
)

// Topics are NATS subjects: dot-separated tokens ("orders.eu.created"). A
// pattern may use "*" as a token for exactly one token and ">" as its last
// token for one or more ("orders.*.created", "orders.>"). Tokens are
// non-empty UTF-8 without spaces or control characters; a topic is at most
// Limits.MaxTopicLen bytes and Limits.MaxTopicTokens tokens.

// ValidTopic reports why t is not a concrete topic under the default
// limits, or nil.
func ValidTopic(t string) error {
	return topic.Limits{MaxLen: DefaultMaxTopicLen, MaxTokens: DefaultMaxTopicTokens}.Topic(t)
}

// ValidPattern reports why p is not a topic or pattern under the default
// limits, or nil.
func ValidPattern(p string) error {
	return topic.Limits{MaxLen: DefaultMaxTopicLen, MaxTokens: DefaultMaxTopicTokens}.Pattern(p)
}

// IsPattern reports whether p has a wildcard token.
func IsPattern(p string) bool { return topic.IsPattern(p) }

// Match reports whether the concrete topic t matches pattern.
func Match(pattern, t string) bool { return topic.Match(pattern, t) }

// overlaps reports whether some topic matches both patterns.
func overlaps(a, b string) bool {
	for {
		ta, resta, moreA := strings.Cut(a, ".")
		tb, restb, moreB := strings.Cut(b, ".")
		if ta == ">" || tb == ">" {
			return true // the other has a token here, and ">" takes it and the rest
		}
		if ta != "*" && tb != "*" && ta != tb {
			return false
		}
		if !moreA || !moreB {
			return moreA == moreB
		}
		a, b = resta, restb
	}
}
