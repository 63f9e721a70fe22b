package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
)

// The code of docs/DEPLOYMENT.md's section "Auth lifetime", run by
// TestDeploymentDocAuthLifetime; TestDeploymentDocShowsAuthLifetime checks
// that the document shows it.

// A principal whose authentication ends: the token's expiry.
type User struct {
	Name    string
	Expires time.Time
}

func (u User) AuthExpiry() time.Time { return u.Expires }

// tokenIssuer is the example's identity provider: tokens valid for 500 ms.
type tokenIssuer struct {
	mu     sync.Mutex
	issued map[string]time.Time
}

var idp = &tokenIssuer{issued: map[string]time.Time{}}

func (p *tokenIssuer) Token(context.Context) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	tok := fmt.Sprintf("carol-%d", len(p.issued)+1)
	p.issued[tok] = time.Now().Add(500 * time.Millisecond)
	return tok, nil
}

func (p *tokenIssuer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.issued)
}

// verify checks a token of idp.
func verify(tok string) (User, error) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	exp, ok := idp.issued[tok]
	if !ok {
		return User{}, errors.New("unknown token")
	}
	name, _, _ := strings.Cut(tok, "-")
	return User{Name: name, Expires: exp}, nil
}

func TestDeploymentDocAuthLifetime(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	mux := handler.NewMux()
	mux.Handle("whoami", handler.NoParams(func(ctx context.Context) (string, error) {
		return rpc.RequestFromContext(ctx).Peer().Session().Principal().(User).Name, nil
	}))

	srv, err := server.New(mux,
		server.WithAuth(func(r *http.Request) (any, error) {
			return verify(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		}),
		server.WithAuthRefresh(func(ctx context.Context, current any, params []byte) (any, error) {
			var p struct{ Token string }
			if err := json.Unmarshal(params, &p); err != nil {
				return nil, err
			}
			u, err := verify(p.Token)
			if err != nil {
				return nil, err
			}
			if cur, _ := current.(User); u.Name != cur.Name {
				return nil, server.ErrForbidden // a refresh may not change the user
			}
			return u, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(hs.URL, "http")

	c, err := client.Dial(ctx, url, client.WithCredentials(func(ctx context.Context) (client.Credential, error) {
		tok, err := idp.Token(ctx) // your identity provider
		if err != nil {
			return client.Credential{}, err
		}
		return client.Credential{
			Header: http.Header{"Authorization": {"Bearer " + tok}},
			Params: map[string]string{"token": tok},
		}, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// Three lifetimes of a token on one connection.
	first := c.Peer()
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		var who string
		if err := c.Call(ctx, "whoami", nil, &who); err != nil || who != "carol" {
			t.Fatalf("whoami = %q, %v", who, err)
		}
	}
	if c.Peer() != first || len(srv.Conns()) != 1 {
		t.Fatal("the client reconnected: its refreshes did not keep the connection")
	}
	if n := idp.count(); n < 3 {
		t.Fatalf("%d tokens over three lifetimes, want at least 3", n)
	}
}

// TestDeploymentDocShowsAuthLifetime: every line of the Go block of
// DEPLOYMENT.md's "Auth lifetime" is a line of this file, in the same
// order.
func TestDeploymentDocShowsAuthLifetime(t *testing.T) {
	doc, err := os.ReadFile("../docs/DEPLOYMENT.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(doc), "## 9. Auth lifetime")
	if !ok {
		t.Fatal("DEPLOYMENT.md has no section 9. Auth lifetime")
	}
	_, block, ok := strings.Cut(sec, "```go\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal("the section has no Go block")
	}
	src, err := os.ReadFile("authlife_doc_test.go")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(src), "\n")
	at := 0
	for _, want := range strings.Split(block, "\n") {
		want = strings.TrimSpace(want)
		if want == "" {
			continue
		}
		for at < len(lines) && strings.TrimSpace(lines[at]) != want {
			at++
		}
		if at == len(lines) {
			t.Fatalf("the document's line %q is not in this test (in order)", want)
		}
		at++
	}
}
