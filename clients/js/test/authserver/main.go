// Command authserver is the server of the JavaScript client's in-band
// authentication test (clients/js/test/auth.test.js): a wsrpc server whose
// connections must first call auth.login with {"token": "good-..."}
// (server.WithInBandAuth), and that answers whoami with the connection's
// principal. It listens on -addr (port 0: a free one), prints
// "listening on ws://HOST:PORT/rpc" on stderr, and shuts down on SIGTERM.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stderr))
}

// run serves until ctx ends, then shuts down; it returns the exit status.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("authserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "`host:port` to listen on")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	srv, err := newServer()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stderr, "listening on ws://%s/rpc\n", ln.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-served:
		fmt.Fprintln(stderr, err)
		return 1
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	<-served
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// newServer is the server: in-band authentication by auth.login, then whoami.
func newServer() (*server.Server, error) {
	mux := handler.NewMux()
	if err := mux.Handle("whoami", handler.NoParams(func(ctx context.Context) (any, error) {
		return rpc.RequestFromContext(ctx).Peer().Session().Principal(), nil
	})); err != nil {
		return nil, err
	}
	return server.New(mux, server.WithInBandAuth("auth.login", 5*time.Second, login))
}

// login accepts {"token": "good-..."}; the token is the principal.
func login(_ context.Context, params []byte) (any, error) {
	var p struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, rpc.Errorf(rpc.CodeInvalidParams, `auth.login wants {"token": string}: %v`, err)
	}
	if !strings.HasPrefix(p.Token, "good-") {
		return nil, rpc.Errorf(rpc.CodeUnauthenticated, "bad token %q", p.Token)
	}
	return p.Token, nil
}
