// Package topic validates and matches pub/sub topics and patterns, and
// indexes subscriptions by pattern.
//
// Topics follow the syntax of NATS subjects: tokens separated by '.'
// ("orders.eu.created"). A token is non-empty, valid UTF-8, and has no
// '.', no space or control character (no byte <= 0x20, no 0x7f). A
// concrete topic, the name a publication is sent to, has no wildcard. A
// pattern may also use two wildcards, each as a whole token: "*" matches
// exactly one token, and ">", only as the last token, matches one or more
// tokens ("orders.*.created", "orders.>"). A concrete topic is a pattern
// that matches only itself. '*' and '>' anywhere else ("a*", "a.>.b") are
// invalid.
//
// [Limits.Topic] and [Limits.Pattern] validate a string from the network
// and say what is wrong with it and where. [Match] and [Covers] compare
// patterns and topics without allocating. [Index] finds the subscriptions
// whose pattern matches a publication's topic.
//
// # Concurrency
//
// The functions and [Limits] are safe for concurrent use. An [Index] is
// not: it starts no goroutine and holds no lock, and its owner must
// serialize calls to it (several concurrent [Index.Match] calls with no
// [Index.Add] or [Index.Remove] running are safe).
package topic
