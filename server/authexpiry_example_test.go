package server_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

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
// left to expire: the server closes it with 4401. (client.WithCredentials
// does the refreshing for a Go client.)
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
	conn, err := transport.Dial(ctx, "ws://"+ln.Addr().String()+"/rpc", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	announced := make(chan string, 1)
	p, _ := rpc.New(conn, rpc.WithInline(rpc.MethodAuthExpiry, func(req *rpc.Request) { announced <- "expiry announced" }))
	fmt.Println(<-announced)
	var lifetime map[string]int
	err = p.Call(ctx, rpc.MethodAuthRefresh, rpc.Raw(`{"token":"a new token"}`), &lifetime)
	fmt.Println("refreshed:", err == nil && lifetime["expiresIn"] > 0)
	<-p.Done()
	fmt.Println("closed:", int(transport.CloseStatus(p.Err())))
	// Output:
	// expiry announced
	// refreshed: true
	// closed: 4401
}
