// Package natsbroker is a [pubsub.Broker] on NATS: several wsrpc server
// processes share their topics through one NATS (a server or a cluster),
// with history and recovery across processes in JetStream. It is a module
// of its own, so that a user of the core library never downloads nats.go.
//
//	b, err := natsbroker.Connect("nats://127.0.0.1:4222", natsbroker.Options{})
//	hub, err := pubsub.New(pubsub.WithBroker(b), pubsub.WithRule("news.>", pubsub.Rule{HistorySize: 100}))
//	srv, err := server.New(h, server.WithHub(hub)) // hub.Close closes b
//
// The command built from ./cmd/wsrpc is wsrpc with `serve --nats URL`.
//
// # Subjects and the stream
//
// Topics are NATS subjects already (pubsub's topic syntax is theirs), so a
// topic maps onto a subject by a prefix ([Options.Prefix], default
// "wsrpc"), which keeps several applications apart on one NATS:
//
//   - "<prefix>.s.<topic>" is where a publication with history is stored:
//     the JetStream stream [Options.Stream] captures "<prefix>.s.>",
//     keeping [Options.MaxHistory] messages per topic (MaxMsgsPerSubject)
//     and [Options.MaxBytes] in all.
//   - "<prefix>.p.<topic>" is where publications are fanned out. The
//     stream republishes every message it stores there (JetStream's
//     RePublish), after storing it and in stream order; a publication
//     without history is published there directly, on core NATS.
//   - Each process subscribes on core NATS once per topic or pattern it
//     has local subscribers for, whatever their number ("*" and ">" are
//     NATS's own wildcards), and its Hub fans each publication out to them.
//
// A message's headers carry its position: Wsrpc-Offset and Wsrpc-Epoch,
// with Wsrpc-Publisher (for publisher exclusion), Wsrpc-History and
// Wsrpc-Ttl (the topic's history rule when it was published).
//
// While one publication of a topic is on its way to JetStream, the ones a
// process is asked for meanwhile queue, and go together in the next
// message: up to 512 publications, 512 KiB or NATS's max_payload (less
// 4 KiB for the headers), with consecutive offsets
// (Wsrpc-Offset is the first's, Wsrpc-Count says how many; the data holds
// each publication's publisher and data, each prefixed by its length as a
// uvarint). One publication alone is a message of its own with its data as
// it is. The delivery loop and history reads unpack them; MaxHistory counts
// messages, so the stream keeps at least that many publications per topic.
// A publication waits in the queue until its caller's deadline at most (or
// the Timeout); one that waited past it fails as not published. This is
// format 1: it has no Wsrpc-Format header, and a message that has one (a
// later, incompatible format) is refused rather than misread.
//
// # Offsets and epochs
//
// JetStream numbers a stream's messages, not a subject's, so a topic's
// offsets are kept in the messages: a publication's offset is the offset of
// the topic's last stored message plus one. A publish carries the stream
// sequence of the message it follows
// (Nats-Expected-Last-Subject-Sequence), so JetStream stores it only if no
// other process published on the topic meanwhile; one that did makes the
// publish read the topic's last message again and retry (with a growing,
// random back-off). Two processes can therefore never give one offset to
// two publications, and a process that published last publishes again
// without reading anything (it remembers the topic's last sequence).
//
// A topic's first publication (or its first after the stream dropped all
// of its messages) starts a run at offset 1 with an epoch derived from the
// stream's identity (its creation time) and the stream's last sequence when
// the run started: a recreated stream, or a topic that starts over, has a
// new epoch, so a client's position of the old one is never taken for one
// of the new. A topic with no publication yet has the position offset 0
// with no epoch.
//
// # What it guarantees
//
// For a topic with history (a rule with HistorySize, and a server with
// JetStream):
//
//   - Offsets grow by one per publication, across every process; the
//     position a Publish returns is the publication's.
//   - Each process receives a topic's publications in offset order, once:
//     overlapping subscriptions of a process (chat.> and chat.room1) get a
//     publication once (the copies NATS delivers, one per subscription, are
//     recognised by their stream sequence), and a hole in the offsets (the
//     process lost its connection, or NATS dropped messages of a slow
//     process) is filled from the stream before the next publication is
//     delivered.
//   - At most [QueueLen] messages wait between NATS and the Hub; beyond,
//     NATS drops the process's messages (a slow consumer) and the gaps are
//     filled as above.
//   - After the connection to NATS comes back, the process reads what was
//     published meanwhile from the stream, for each topic it is subscribed
//     to and each pattern (at most 10,000 messages per pattern), without
//     waiting for a new publication; a catch-up that fails (JetStream still
//     starting) is tried again a second later.
//   - A stream deleted while the processes run (by hand, or a memory
//     stream lost with a nats-server restart) is made again by the first
//     request that misses it; its topics start again in new epochs.
//   - History(since) reads the stream: a client that reconnects to another
//     process recovers there what it missed, as far as the topic's history
//     reaches (HistorySize and HistoryTTL, and MaxHistory); beyond that the
//     Hub answers recovered: false.
//   - A Publish that lost its connection before the acknowledgement
//     resends the same message after the reconnect, with the same
//     Nats-Msg-Id: JetStream's duplicate window (2 minutes) keeps it from
//     being stored twice. If that cannot be learned within the Timeout, the
//     error wraps [pubsub.ErrPublishUnknown] (the Hub answers -32603, which
//     clients do not retry), never CodeUnavailable.
//   - While NATS is down, Publish, Subscribe and History fail at once with
//     [ErrUnavailable] (the Hub answers -32000, which clients retry), and so
//     do publications queued behind one in flight when the connection
//     drops; nothing waits past its caller's deadline or the Timeout.
//
// Without JetStream (a plain NATS, or [Options.LiveOnly]), or for a topic
// without history, publications are live only: published on core NATS, at
// most once (each carries an id, Wsrpc-Id, so that overlapping
// subscriptions deliver it once), with no position (offset 0, no epoch). A
// subscriber asking to recover one is answered recovered: false (the Go
// client flags the next publication Gap, also after a reconnect), and
// publications made while a process was cut off from NATS are not delivered
// to its subscribers.
//
// # Reading history
//
// History reads the topic's last message (one direct get), then the
// messages after the client's position: up to 16 back by following each
// message's link to the one before it (its
// Nats-Expected-Last-Subject-Sequence), one direct get each; further back,
// it finds the first message it needs by a binary search over the stream's
// sequences (a direct get of the topic's next message per probe) and reads
// on from there with a consumer deleted after the read, at most MaxHistory
// messages.
//
// # Trust
//
// The broker trusts what it finds on its subjects: a client of NATS that
// may publish on "<prefix>.s.>" or "<prefix>.p.>" can inject publications
// (a message on the fan-out subjects that claims a position without having
// been republished by the stream is dropped, but a plain one is delivered
// as live). Give only the wsrpc servers those permissions.
//
// # Cost
//
// A publication with history costs one JetStream publish and its
// acknowledgement when it is alone: 83–106 µs one at a time on loopback
// here against 70–76 µs for a bare JetStream publish (BenchmarkPublish;
// the difference is nats-server checking the message id and the expected
// sequence, and the headers: 2.9 KB and 45 allocations against 1.2 KB and
// 19). With 64 callers on one topic, batching brings the cost to 3.4–3.7 µs
// and 4 allocations a publication (throughput: each caller still waits for
// its message's acknowledgement). A live one costs a core NATS publish with its
// id header: 0.4 µs and 4 allocations, against 0.1 µs for a bare publish.
// Contention between processes on one topic adds a read of the topic's last
// message and a retry for each publish that lost.
//
// Fanned out to 1,000 subscribers over three processes, one publisher on
// the first, this delivers 0.58–0.80× what nats.go subscribers on the same
// NATS receive at 64 B and 1.30–1.40× at 1 KiB, and 1.04–1.32× the memory
// broker's single process (bench/'s wsrpc-bench -nats; docs/BENCHMARKS.md).
//
// Every process must give a topic the same rules (history or not), as the
// Hub's rules decide what the broker is asked to keep.
package natsbroker
