package wsrpcprom_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/wsrpc/wsrpc/client"
	wsrpcprom "github.com/wsrpc/wsrpc/contrib/prometheus"
	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
)

// A server whose calls, connections and traffic are Prometheus metrics,
// served on /metrics beside the RPC endpoint.
func Example() {
	calls := wsrpcprom.NewCalls()
	mux := handler.NewMux()
	mux.Use(handler.Recover(nil), calls.Middleware()) // the calls served
	mux.Handle("add", handler.Func(func(_ context.Context, xs [2]float64) (float64, error) { return xs[0] + xs[1], nil }))
	srv, err := server.New(mux, rpc.WithOutgoingMiddleware(calls.Middleware())) // and the calls made
	if err != nil {
		panic(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(calls, wsrpcprom.NewServerCollector(srv))

	hm := http.NewServeMux()
	hm.Handle("/rpc", srv)
	hm.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.HTTPServer(hm).Serve(ln) }()
	defer func() {
		srv.Shutdown(context.Background()) // stops the http.Server too
		<-served
	}()

	ctx := context.Background()
	c, err := client.Dial(ctx, "ws://"+ln.Addr().String()+"/rpc")
	if err != nil {
		panic(err)
	}
	var sum float64
	for range 2 {
		if err := c.Call(ctx, "add", []float64{1, 2.5}, &sum); err != nil {
			panic(err)
		}
	}
	c.Call(ctx, "nope", nil, nil)
	c.Close()
	srv.Shutdown(ctx) // every connection has ended: the counts are final

	out, err := testutil.GatherAndFormat(reg, expfmt.TypeTextPlain, "wsrpc_calls_handled_total", "wsrpc_server_connections_accepted_total")
	if err != nil {
		panic(err)
	}
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		if !strings.HasPrefix(line, "#") {
			fmt.Println(line)
		}
	}
	// Output:
	// wsrpc_calls_handled_total{code="method_not_found",direction="incoming",method="nope"} 1
	// wsrpc_calls_handled_total{code="ok",direction="incoming",method="add"} 2
	// wsrpc_server_connections_accepted_total 1
}
