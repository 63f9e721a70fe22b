// Package client is the wsrpc client: a [Client] holds one connection to a
// server and keeps it, reconnecting when it is lost, so that an application
// makes calls without caring whether the connection it started with is still
// the one in use.
//
// [Dial] makes the first connection (it fails if that fails) and returns the
// Client. [Client.Call] is a blocking call, [Client.Go] the asynchronous form
// that delivers the one *[rpc.Response] on a channel, and [Client.Notify]
// sends a notification. Every attempt of each goes through the peer of the
// current connection ([rpc.Peer.Call], [rpc.Peer.Go], [rpc.Peer.Notify]): the one call path,
// with its deadline and metadata ([WithMetadata], [rpc.ContextWithMetadata]),
// its outgoing middleware and its buffer recycling.
//
// A method declared with [rpc.NewMethod] is called with [CallMethod], which
// takes and returns the declared types ([NotifyMethod] for a declared
// notification; a declared stream's Stream method takes the Client as it
// is). [Discover] asks the server for its OpenRPC document.
//
// # Options
//
// Dial takes the options of package rpc, which configure the peer of every
// connection the client makes, beside its own. What both ends of a
// connection share is set with rpc's option, the one server.New takes too:
// the handler for the calls the server makes to the client
// ([rpc.WithHandler]), the wire codecs offered ([rpc.WithSubprotocols]:
// binary first and JSON-RPC second by default; rpc.SubprotocolJSON alone
// for readable traffic), the value codec, heartbeat, transport limits,
// logger, metadata bounds and outgoing middleware
// ([rpc.WithOutgoingMiddleware], which then sees every attempt of every
// call). Dial validates them once, with [rpc.NewConfig], and reports every
// invalid option, rpc's and its own, in one error.
//
// # Waiting for the server
//
// By default Dial fails as soon as the first connection fails: a server
// that is not listening yet refuses it within milliseconds. With
// [WithWaitForServer] (gRPC's blocking dial with WaitForReady, in effect),
// Dial instead retries the first connection with the reconnect backoff
// below, over every endpoint, until it is made or Dial's ctx ends. It
// retries what a server still starting up explains: connection refused or
// reset, a name that does not resolve yet, a handshake timeout, and HTTP
// 503, 502, 504 or 429, honouring Retry-After (capped at [MaxRetryHint]).
// A permanent refusal ends the wait at once (after each endpoint has had
// its first try, as without the option) and is returned: any other HTTP
// status such as 400, 401 or 403, a bad URL, a TLS failure, or a
// subprotocol the client did not offer. When ctx ends first, the error
// wraps both ctx.Err() and the last attempt's error, so that
// errors.Is(err, context.DeadlineExceeded) holds and the message says why
// the server was not reached. Calls cannot be made before Dial returns: the
// Client exists only once connected.
//
// # Reconnecting
//
// When the connection ends, or the server sends its shutdown notice, the
// Client makes a new connection, sleeping before each attempt for a random
// duration in [0, min(max, base·2ⁿ)] ("full jitter", see [WithBackoff]),
// the sequence starting again after every successful connection. After a
// shutdown notice the first attempt waits for the server's hint
// ([rpc.Peer.RetryAfter], capped at [MaxRetryHint]; 0 means at once); an
// attempt refused with 503, 502, 504 or 429 and a Retry-After header (a
// server draining, or limiting its handshake rate) is followed by a wait of
// that long instead of the backoff, capped the same way. Either wait is
// drawn at random from [hint, hint + hint/4], so that the clients one server
// sent away do not come back in one instant. After a notice the old connection is
// drained rather than dropped: its calls in flight complete, then it is
// closed with 1000, while new calls go to the new connection. While no
// connection is up, calls wait for one, bounded by their ctx and by
// [WithQueueSize]. [WithStatusHook] reports each change of [Status].
//
// # Retries
//
// A call's outcome decides whether it is sent again on the next connection:
//
//	outcome                                   plain call       Idempotent()
//	----------------------------------------  ---------------  ---------------
//	result, or an error from the handler      returned         returned
//	rpc.CodeUnavailable: never started (the   retried          retried
//	  server refused it while shutting down,
//	  or it was not sent: connection gone)
//	rpc.CodeConnectionLost: sent, then the    returned:        retried
//	  connection dropped; outcome unknown     outcome unknown  (may run twice)
//	any other error (busy, deadline, …)       returned         returned
//
// A call is sent at most [MaxAttempts] times, and never after its ctx has
// ended or the Client has closed (the error then matches [ErrClientClosed]). A
// retry waits for a new connection when the old one is gone or going away;
// when the server refused the call with CodeUnavailable on a connection it
// keeps open, the retry goes to the same connection after a backoff pause.
// With [WithReconnect](false) there is no next connection: such calls return
// their error.
//
// # Subscriptions
//
// [Client.Subscribe] subscribes to a topic or pattern of the server's
// pub/sub hub (docs/PROTOCOL.md, section 13); publications arrive on the
// [Subscription]'s channel. A subscription outlives its connection: on each
// new one the client subscribes again, from the last position delivered for
// exact topics, and the hub replays what was missed from the topic's
// history. When it cannot replay everything, the next publication
// delivered has Gap set. [Client.Publish] publishes where the server allows
// clients to.
//
// # Authentication lifetime
//
// With [WithCredentials] the Client gets its credentials from a callback:
// before Dial's handshake, ahead of the expiry the server announces for a
// connection (docs/PROTOCOL.md, section 15), to refresh it in-band without
// reconnecting, and before reconnecting once the server closed the
// connection with [rpc.CloseAuthExpired] (4401) or refused the handshake.
// [WithInBandAuth] authenticates each new connection with a call first, for
// servers that authenticate in-band. Failures back off and go to
// [WithAuthErrorHook]; [Client.AuthExpiry] says when the current
// connection's authentication ends.
//
// # Streams
//
// [Client.Stream] calls a method as a stream ([rpc.Peer.Stream]): many
// results, read in order under credit-based flow control. It waits for a
// connection and is sent again if it could not be sent, as Call is; once
// sent, a lost connection ends it (the caller decides whether to call
// again).
//
// # Goroutines and ownership
//
// The Client owns, and [Client.Close] waits for:
//
//   - the manager, which watches the current connection and makes the next
//     one; it alone changes the connection and the Status, and calls the
//     status hook;
//   - one goroutine per connection being retired, which shuts it down
//     ([rpc.Peer.Shutdown], after a shutdown notice) or waits for its
//     goroutines (after it ended), then closes it;
//   - one goroutine per call accepted by [Client.Go], which makes its
//     attempts until its Response is delivered;
//   - with [WithCredentials], the refresher, which refreshes the current
//     connection's authentication ahead of its expiry (it calls the
//     credentials callback and $/auth.refresh);
//   - for subscriptions: one goroutine per new connection that subscribes
//     every [Subscription] again, one per recovery of a live gap (a
//     subscribe again from the last position), and one per
//     subscribe reply with recovered publications, which hands them to the
//     subscription's channel before the connection's next ones.
//
// Publications are delivered on the connection's reader goroutine
// (rpc.WithInline), in order; while a Subscription's channel is full, that
// reader waits (and so do the replies behind it), until the channel is read,
// the connection ends, the subscription ends or the Client closes.
//
// Each connection's [rpc.Peer] owns its goroutines, among them the handlers
// serving the server's calls; the Client closes every Peer it made, and
// waits for it. Call and Notify run on the caller's goroutine, and so does
// the outgoing middleware for their attempts (for Go's, the call's own
// goroutine). No goroutine outlives Close.
//
// # Concurrency
//
// Every method of Client is safe for concurrent use. The handler given with
// rpc.WithHandler and the outgoing middleware run concurrently and must be
// safe for it; the status hook is called from one goroutine at a time, in
// order, and must not call Close.
package client
