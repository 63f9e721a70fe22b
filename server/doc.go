// Package server serves wsrpc over HTTP: a [Server] is an http.Handler that
// upgrades requests to WebSocket connections, runs an [rpc.Peer] on each with
// the application's handler, keeps a registry of the connections (to call,
// notify or broadcast to them), and shuts down gracefully.
//
// # Options
//
// [New] takes the handler and [Option] values of two kinds: the options of
// package rpc for everything a server shares with its connections and with
// clients ([rpc.WithSubprotocols], [rpc.WithTransport], [rpc.WithHeartbeat],
// [rpc.WithMaxInFlight], [rpc.WithBacklog], [rpc.WithMaxBatch],
// [rpc.WithLogger], [rpc.WithValueCodec], [rpc.WithOwnedParams], ...), and
// this package's With functions for what only a server has. They apply whatever their order;
// every invalid option or combination is reported in New's error.
//
// # Connections
//
// A connection is its [rpc.Peer]: [Server.Conns] and [Server.Conn] return
// peers, the hooks of [WithOnConnect] and [WithOnDisconnect] get them, and a
// handler has its own as req.Peer() (or [rpc.RequestFromContext](ctx).Peer()).
// The peer carries the connection's identity: ID (the registry's key),
// RemoteAddr (the client's, through [WithTrustedProxies]), Header,
// Subprotocol, ConnectedAt, and its Session with the principal that
// [WithAuth] or [WithInBandAuth] established. A handler reaches its Server,
// to broadcast say, with [FromContext].
//
// # Authentication lifetime
//
// A principal that implements [AuthExpirer] gives its connection an
// expiry, which the server tells the client ($/auth.expiry). Before it the
// client may present a new credential ($/auth.refresh), which the hook of
// [WithAuthRefresh] validates, giving the next principal and expiry; a
// connection that reaches its expiry is closed with [rpc.CloseAuthExpired]
// (4401). docs/PROTOCOL.md, section 15, has the exchange.
//
// # Shutdown
//
// [Server.Shutdown] refuses new handshakes (the listeners of Serve and
// ListenAndServe are closed at once, so a new process can bind the port; a
// Server mounted on another mux answers 503), and shuts every connection
// down concurrently with [rpc.Peer.Shutdown]: the in-band shutdown notice
// (so clients stop sending new calls and reconnect elsewhere), every call in
// flight in both directions finished, then the close with 1012 (service
// restart). If its ctx ends first, the handlers still running are cancelled,
// what is left is dropped, and it returns a *[ShutdownError] counting what
// was cut short. [Server.Close] is the immediate form.
//
// Behind a load balancer: [Server.ReadyHandler] and [Server.LiveHandler]
// report the [State] for probes; [WithReadyDelay] keeps accepting
// handshakes for a while after readiness goes off, before refusing;
// [WithGoodbyeWindow] spreads the notices over a window, so that the
// clients do not all reconnect at once; [WithHandshakeRate] limits the
// handshakes per second with a Retry-After that spreads the refused.
//
// # Goroutines and ownership
//
// ServeHTTP returns as soon as a connection is upgraded and registered; from
// then on the connection is served by the goroutines of its rpc.Peer and
// transport.Conn (three per idle connection). When it ends, the peer's own
// goroutine removes it from the registry, waits for its handlers and runs
// the disconnect hook. A connection that must authenticate in-band has one
// timer, and one with an authentication expiry another, which closes it;
// the connection's end stops both and waits for a func already running.
// One whose handshake ended after Shutdown began refusing has a goroutine
// draining it. Shutdown and Close wait for all of them.
//
// A handler may close its own connection (req.Peer().Close does not wait
// for handlers), but must not call Shutdown, which waits for it.
//
// # Concurrency
//
// Every method of Server is safe for concurrent use. The peers it hands out
// are rpc.Peers, safe for concurrent use as package rpc says.
package server
