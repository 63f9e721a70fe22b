package server_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
	"github.com/wsrpc/wsrpc/transport"
)

// session is a principal whose authentication ends.
type session struct {
	user    string
	expires time.Time
}

func (s session) AuthExpiry() time.Time { return s.expires }

// A connection authenticated for 200 ms is refreshed once, in-band, then
// left to expire: the server closes it with 4401. Here the refresh is the
// protocol's own call, made by hand; client.WithCredentials makes it ahead
// of each expiry instead.
func ExampleWithAuthRefresh() {
	srv, err := server.New(handler.NewMux(),
		server.WithAuth(func(r *http.Request) (any, error) {
			return session{user: "alice", expires: time.Now().Add(200 * time.Millisecond)}, nil
		}),
		server.WithAuthRefresh(func(ctx context.Context, current any, params []byte) (any, error) {
			// A real hook verifies params, the new token, and its subject.
			return session{user: current.(session).user, expires: time.Now().Add(200 * time.Millisecond)}, nil
		}))
	if err != nil {
		fmt.Println(err)
		return
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()

	ctx := context.Background()
	c, err := client.Dial(ctx, "ws://"+ln.Addr().String()+"/rpc", client.WithReconnect(false))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	p := c.Peer() // the client's connection
	var lifetime map[string]int
	err = c.Call(ctx, rpc.MethodAuthRefresh, rpc.Raw(`{"token":"a new token"}`), &lifetime)
	fmt.Println("refreshed:", err == nil && lifetime["expiresIn"] > 0)
	<-p.Done()
	fmt.Println("closed:", int(transport.CloseStatus(p.Err())))
	// Output:
	// refreshed: true
	// closed: 4401
}
