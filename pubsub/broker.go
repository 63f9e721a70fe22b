package pubsub

import (
	"context"
	"errors"
	"time"
)

// Broker is where publications go between the processes of a deployment
// and where a topic's history is kept. The [Hub] of each process talks to
// one Broker: it subscribes the process, not each connection, so a node
// subscribes to a topic or pattern once however many of its connections
// are subscribed, and fans every publication the broker hands it out to
// its own subscribers. [NewMemoryBroker] is the in-process default;
// github.com/wsrpc/wsrpc/natsbroker connects several processes through NATS
// (in a module of its own, so that the core does not depend on nats.go).
//
// The contract every implementation keeps:
//
//   - Appending a publication to its topic's history and handing it to the
//     subscribed nodes is atomic per topic: publications of one topic reach
//     every node in offset order, each exactly once while the node stays
//     subscribed, and a History read sees a publication if and only if it
//     was appended before the read. Without this, recovery could lose or
//     duplicate publications.
//   - The offset of a topic grows by one per publication, starting at 1 in
//     each epoch; the epoch changes whenever the broker can no longer
//     continue the topic's stream (its history was lost or dropped).
//   - The one exception to both: a topic for which the broker keeps no
//     stream at all (natsbroker without JetStream, or a topic configured
//     without history), which History answers with Live set. Its
//     publications are delivered at most once, in the order the broker
//     got them, with offset 0 and no epoch, and History returns none of
//     them; the Hub then tells subscribers that recovery is not possible.
//   - Publish returns once the publication is appended (and handed on); it
//     does not wait for any subscriber. An error means it was not
//     published (wrap [ErrTooManyTopics] for a refusal of a new topic),
//     except one wrapping [ErrPublishUnknown]: the broker sent it but could
//     not learn whether it was appended (a broker across a network).
//   - The deliver func given to Open is called for one topic at a time, in
//     offset order; it never blocks for long (the Hub only queues).
//   - Subscribe and Unsubscribe are counted per pattern: the node stays
//     subscribed while it has made more Subscribes than Unsubscribes (the
//     Hub may subscribe again before an earlier Unsubscribe has run).
//
// All methods are safe for concurrent use.
type Broker interface {
	// Open starts the broker. deliver receives every publication on a topic
	// that matches a pattern the node has subscribed to (the broker may hand
	// over others; the Hub filters).
	Open(deliver func(Publication)) error
	// Subscribe makes the node receive the publications of pattern (a topic
	// or a pattern with * and >). It returns once publications published
	// after it returns are sure to be delivered.
	Subscribe(ctx context.Context, pattern string) error
	// Unsubscribe undoes Subscribe.
	Unsubscribe(ctx context.Context, pattern string) error
	// Publish appends data to topic's stream (and its history, as opts
	// say) and hands it to the subscribed nodes, returning its position.
	Publish(ctx context.Context, topic string, data []byte, opts PublishOptions) (Position, error)
	// History returns topic's stream position and, when req.Since is set,
	// the publications after it that the history still holds: at most
	// req.Limit, the most recent ones, oldest first. A Since of another
	// epoch returns no publications, only the current position.
	History(ctx context.Context, topic string, req HistoryRequest) (History, error)
	// Close stops the broker; later calls fail.
	Close() error
}

// ErrPublishUnknown is wrapped by the error of a Broker's Publish that may
// have published: the Hub answers a client's $/publish with
// CodeInternalError rather than CodeUnavailable, which a client would
// retry, publishing twice.
var ErrPublishUnknown = errors.New("wsrpc: pubsub: the publication may have been published")

// PublishOptions say how a publication is kept.
type PublishOptions struct {
	// HistorySize is how many of the topic's most recent publications the
	// history keeps (0: none), and HistoryTTL how long (0: until pushed out
	// by newer ones).
	HistorySize int
	HistoryTTL  time.Duration
	// Publisher is the connection that published it (Publication.Publisher).
	Publisher string
}

// HistoryRequest asks [Broker.History] for the publications after Since.
type HistoryRequest struct {
	Since *Position // nil: only the current position
	Limit int       // at most this many publications (the most recent)
	// HistorySize is what the Hub's rules give the topic, as
	// PublishOptions.HistorySize does when it is published: 0 means the
	// topic keeps no history, which lets a broker that keeps no stream for
	// such topics answer Live without a look.
	HistorySize int
}

// History is a [Broker.History] answer.
type History struct {
	// Top is the position of the topic's latest publication (offset 0 when
	// it has none in the current epoch).
	Top Position
	// Publications are those after Since still held, oldest first.
	Publications []Publication
	// Live is set by a broker that keeps no stream for the topic (a NATS
	// broker without JetStream, or a topic without history): its
	// publications are delivered live, at most once, and carry no
	// position (offset 0, no epoch), so nothing can be recovered. Top is
	// then zero.
	Live bool
}
