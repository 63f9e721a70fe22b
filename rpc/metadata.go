package rpc

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"unicode/utf8"
)

// Metadata is the per-call key/value pairs a request or notification may
// carry beside its params: a trace context, a request id, a token. Keys and
// values are UTF-8 strings; a key is not empty. Both wire codecs carry it
// (docs/PROTOCOL.md, metadata), bounded on receipt by [WithMaxMetadata].
//
// A handler reads the incoming call's metadata from [Request.Metadata]. A
// caller sets it for the calls it makes with a ctx from
// [ContextWithMetadata] (client.WithMetadata does it for one call), and an
// outgoing middleware may add to [Request.Metadata]. Metadata is not passed
// on by itself: a handler's outgoing calls carry only what their own ctx
// says.
type Metadata map[string]string

// Clone returns a copy of md (nil for nil).
func (md Metadata) Clone() Metadata { return maps.Clone(md) }

type metadataKey struct{}

// ContextWithMetadata returns a copy of ctx whose outgoing calls carry md,
// over the metadata ctx already carried for them (entries of md win). md is
// copied.
func ContextWithMetadata(ctx context.Context, md Metadata) context.Context {
	if len(md) == 0 {
		return ctx
	}
	merged := OutgoingMetadata(ctx).Clone()
	if merged == nil {
		merged = make(Metadata, len(md))
	}
	maps.Copy(merged, md)
	return context.WithValue(ctx, metadataKey{}, merged)
}

// OutgoingMetadata returns the metadata that calls made with ctx carry (set
// with [ContextWithMetadata]), or nil. Do not modify it.
func OutgoingMetadata(ctx context.Context) Metadata {
	md, _ := ctx.Value(metadataKey{}).(Metadata)
	return md
}

// checkMetadata holds outgoing metadata to the rules and bounds a receiver
// applies, so that a call that would be refused fails here, unsent.
func (c *Config) checkMetadata(md Metadata) error {
	if len(md) > c.maxMeta {
		return &Error{Code: CodeInvalidRequest, Message: fmt.Sprintf("metadata has %d entries (limit %d); the request was not sent", len(md), c.maxMeta)}
	}
	n := 0
	for k, v := range md {
		if k == "" {
			return &Error{Code: CodeInvalidRequest, Message: "metadata key is empty; the request was not sent"}
		}
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return &Error{Code: CodeInvalidRequest, Message: "metadata is not UTF-8; the request was not sent"}
		}
		n += len(k) + len(v)
	}
	if n > c.maxMetaBytes {
		return &Error{Code: CodeInvalidRequest, Message: fmt.Sprintf("metadata has %d bytes (limit %d); the request was not sent", n, c.maxMetaBytes)}
	}
	return nil
}

// sortedKeys returns md's keys in order, so that encodings are stable.
func sortedKeys(md Metadata) []string {
	return slices.Sorted(maps.Keys(md))
}

// metaLimits bounds the metadata a decoder accepts.
type metaLimits struct{ entries, bytes int }

// metaBuilder gathers the metadata entries of one message as it is
// decoded, within limits; over returns why it was refused.
type metaBuilder struct {
	lim    metaLimits
	md     Metadata
	n      int
	over   string
	credit uint64 // a request's stream credit, met in the same extension block (binary codec)
}

func (b *metaBuilder) add(k, v []byte) {
	if b.over != "" {
		return
	}
	if len(k) == 0 {
		b.over = "metadata key is empty"
		return
	}
	if _, dup := b.md[string(k)]; !dup && len(b.md) >= b.lim.entries {
		b.over = fmt.Sprintf("metadata has more than %d entries", b.lim.entries)
		return
	}
	b.n += len(k) + len(v)
	if b.n > b.lim.bytes {
		b.over = fmt.Sprintf("metadata has more than %d bytes", b.lim.bytes)
		return
	}
	if b.md == nil {
		b.md = make(Metadata, 2)
	}
	b.md[string(k)] = string(v)
}
