// Package pubsub is wsrpc's publish/subscribe: topics with NATS subject
// syntax and patterns (* and >), per-topic rules for who may subscribe and
// publish, a publish hook that may transform or drop a client's
// publication, publisher exclusion, server-side subscriptions, and a
// bounded history per topic with offset/epoch positions, so that a client
// that reconnects recovers what it missed. docs/PROTOCOL.md, section 13,
// specifies the wire protocol: ordinary calls to $/subscribe,
// $/unsubscribe and $/publish, and $/publication notifications, over both
// codecs.
//
// A [Hub] is mounted on a server with server.WithHub; Go code publishes
// with [Hub.Publish] (or server.Server.Publish, which a handler reaches with
// server.FromContext). The Go client subscribes with client.Client.Subscribe and
// receives publications on a channel. A [Broker] carries publications
// between processes and keeps history: [NewMemoryBroker] is the in-process
// default; github.com/wsrpc/wsrpc/natsbroker (a module of its own) shares
// topics between processes through NATS, with history in JetStream.
//
// # Delivery
//
// Live delivery is at most once, in offset order per topic. With history,
// every publication inside the retention window reaches a reconnecting
// subscriber once, in offset order, or the subscriber is told that its
// recovery was incomplete. A publication is encoded once per subscription
// pattern and wire codec and that one buffer is queued on every
// subscribed connection; several queued together leave in one WebSocket
// message. A publisher never waits for a subscriber: a connection whose
// queue would pass Limits.MaxQueuedPublicationBytes is closed with
// [CloseSlowSubscriber] (4008), which tells the client to reconnect and
// recover.
//
// # Goroutines and concurrency
//
// A Hub starts no goroutine: publishing fans out on the publisher's
// goroutine (or the broker's), and the reserved methods run on the
// connections' handler goroutines. Every method of Hub and MemoryBroker is
// safe for concurrent use; Rule funcs may be called concurrently.
package pubsub
