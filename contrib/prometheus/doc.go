// Package wsrpcprom exports the figures of a wsrpc server, its calls and
// its pub/sub hub as Prometheus metrics, with
// github.com/prometheus/client_golang. Import it as
//
//	import wsrpcprom "github.com/wsrpc/wsrpc/contrib/prometheus"
//
// It is a module of its own, so that the wsrpc core keeps its three
// dependencies.
//
// Three collectors, each registered like any other
// (prometheus.MustRegister, or a Registry of your own):
//
//   - [NewCalls] counts calls by direction and method, with their outcome
//     codes, durations and the calls in flight. Its [Calls.Middleware] goes
//     into the handler chain (the calls a peer serves) and into
//     rpc.WithOutgoingMiddleware (the calls it makes), on a server or a
//     client.
//   - [NewServerCollector] reads server.Server.Stats at each scrape:
//     connections, handshakes refused by reason, messages and bytes.
//   - [NewHubCollector] reads pubsub.Hub.Stats at each scrape:
//     subscriptions, publications, deliveries, slow subscribers,
//     recoveries and the broker's publish round trip.
//
// The metric names, help texts and labels are those `wsrpc serve
// --metrics-addr` exposes (docs/OBSERVABILITY.md lists them). The collectors read
// counters the core keeps anyway, so they cost nothing between scrapes;
// Calls costs two map lookups and a few atomic adds per call.
//
// Every type here is safe for concurrent use.
package wsrpcprom
