// Command authserver is the server of the JavaScript client's
// authentication tests (clients/js/test/auth.test.js): a wsrpc server whose
// connections must first call auth.login with {"token": "good-NAME"} or
// {"token": "good-NAME@MS"}, which expires after MS milliseconds
// (server.WithInBandAuth, server.AuthExpirer), that refreshes a token for
// the same NAME ($/auth.refresh, server.WithAuthRefresh; -refresh=false:
// none), and answers whoami with the principal {"name", "token"} and sleep
// {"ms"}. It listens on -addr (port 0: a free one), prints "listening on
// ws://HOST:PORT/rpc" on stderr, and shuts down on SIGTERM.
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
	"strconv"
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
	refresh := fs.Bool("refresh", true, "serve $/auth.refresh (false: the method is not found)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	srv, err := newServer(*refresh)
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

// newServer is the server: in-band authentication by auth.login, whoami
// and sleep; with refresh, $/auth.refresh for the same user.
func newServer(refresh bool) (*server.Server, error) {
	mux := handler.NewMux()
	mux.Handle("whoami", handler.NoParams(func(ctx context.Context) (any, error) {
		return rpc.RequestFromContext(ctx).Peer().Session().Principal(), nil
	}))
	mux.Handle("sleep", handler.Func(func(ctx context.Context, p struct {
		MS int `json:"ms"`
	}) (int, error) {
		t := time.NewTimer(time.Duration(min(max(p.MS, 0), 60_000)) * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
			return p.MS, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}))
	opts := []server.Option{server.WithInBandAuth("auth.login", 5*time.Second, login)}
	if refresh {
		opts = append(opts, server.WithAuthRefresh(func(ctx context.Context, current any, params []byte) (any, error) {
			u, err := login(ctx, params)
			if err != nil {
				return nil, err
			}
			if cur, ok := current.(*user); ok && cur.Name != u.(*user).Name {
				return nil, fmt.Errorf("%w: the credential is %s's, the connection %s's", server.ErrForbidden, u.(*user).Name, cur.Name)
			}
			return u, nil
		}))
	}
	return server.New(mux, opts...)
}

// user is a principal: a name and the token it logged in with, which
// may expire (server.AuthExpirer).
type user struct {
	Name  string `json:"name"`
	Token string `json:"token"`
	exp   time.Time
}

// AuthExpiry is when the authentication ends (zero: never).
func (u *user) AuthExpiry() time.Time { return u.exp }

// login accepts {"token": "good-NAME"} or {"token": "good-NAME@MS"}, which
// expires MS milliseconds from now (a negative MS: already expired).
func login(_ context.Context, params []byte) (any, error) {
	var p struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, rpc.Errorf(rpc.CodeInvalidParams, `auth.login wants {"token": string}: %v`, err)
	}
	rest, ok := strings.CutPrefix(p.Token, "good-")
	if !ok || rest == "" {
		return nil, rpc.Errorf(rpc.CodeUnauthenticated, "bad token %q", p.Token)
	}
	u := &user{Name: rest, Token: p.Token}
	if i := strings.LastIndexByte(rest, '@'); i > 0 {
		if ms, err := strconv.Atoi(rest[i+1:]); err == nil {
			u.Name = rest[:i]
			u.exp = time.Now().Add(time.Duration(ms) * time.Millisecond)
		}
	}
	return u, nil
}
