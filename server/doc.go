// Package server serves wsrpc over HTTP: a [Server] is an http.Handler that
// upgrades requests to WebSocket connections, runs an [rpc.Peer] on each with
// the application's handler, keeps a registry of the connections (to call,
// notify or broadcast to them), and shuts down gracefully.
//
// # Shutdown
//
// [Server.Shutdown] refuses new handshakes (the listeners of Serve and
// ListenAndServe are closed at once, so a new process can bind the port; a
// Server mounted on another mux answers 503), sends every connection the
// in-band shutdown notice (so clients stop sending new calls and reconnect
// elsewhere), waits through an errgroup for every call in flight in both
// directions, then closes every connection concurrently with 1012 (service
// restart). If its ctx ends first, it cancels the handlers still running,
// drops what is left and returns a *[ShutdownError] counting what was cut
// short. [Server.Close] is the immediate form.
//
// # Goroutines and ownership
//
// ServeHTTP returns as soon as a connection is upgraded and registered; from
// then on the connection is served by the goroutines of its rpc.Peer and
// transport.Conn (three per idle connection). When it ends, the peer's reader
// removes it from the registry, waits for its handlers and runs the
// disconnect hook. A connection that must authenticate in-band has one timer.
// Shutdown and Close wait for all of them.
//
// A handler may close its own connection (server.ConnFrom(ctx).Peer().Close
// does not wait for handlers).
//
// # Concurrency
//
// Every method of Server and Conn is safe for concurrent use.
package server
