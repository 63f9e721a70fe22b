package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsrpc/wsrpc/pubsub"
)

// Publish's errors say whether the publication may have been stored: a
// client retries an unavailable one, never an unknown one.
func TestPublishErrors(t *testing.T) {
	b := &Broker{}
	wrong := fmt.Errorf("publish: %w", &jetstream.APIError{ErrorCode: jetstream.JSErrCodeStreamWrongLastSequence, Code: 400})
	for _, tc := range []struct {
		err       error
		maybe     bool
		unknown   bool
		closed    bool
		notStored bool
	}{
		{err: pubsub.ErrBrokerClosed, maybe: true, unknown: true}, // closed after an attempt whose ack was lost
		{err: pubsub.ErrBrokerClosed, closed: true},
		{err: context.DeadlineExceeded, maybe: true, unknown: true},
		{err: context.DeadlineExceeded},
		{err: wrong, notStored: true},
		{err: nats.ErrMaxPayload, notStored: true},
		{err: jetstream.ErrNoStreamResponse, notStored: true},
	} {
		got := b.failed(tc.err, tc.maybe)
		if errors.Is(got, pubsub.ErrPublishUnknown) != tc.unknown {
			t.Errorf("failed(%v, %v) = %v: unknown %v, want %v", tc.err, tc.maybe, got, !tc.unknown, tc.unknown)
		}
		if !tc.unknown && !tc.closed && !errors.Is(got, ErrUnavailable) {
			t.Errorf("failed(%v, %v) = %v, want ErrUnavailable", tc.err, tc.maybe, got)
		}
		if tc.closed && !errors.Is(got, pubsub.ErrBrokerClosed) {
			t.Errorf("failed(%v) = %v, want ErrBrokerClosed", tc.err, got)
		}
		if notStored(tc.err) != tc.notStored && (tc.notStored || tc.err == context.DeadlineExceeded) {
			t.Errorf("notStored(%v) = %v", tc.err, !tc.notStored)
		}
	}
}

// A message of a later format is refused, not misread.
func TestLaterFormatRefused(t *testing.T) {
	h := nats.Header{hdrOffset: {"3"}, hdrEpoch: {"e"}, hdrFormat: {"2"}}
	if m, err := decodeStored("t", 1, time.Time{}, h, []byte("1")); err == nil {
		t.Fatalf("decoded %+v from a message of format 2", m)
	}
}
