package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsrpc/wsrpc/server"
)

// The tokens of docs/PROTOCOL.md section 15.6: whose, and for how long.
var docTokens = map[string]struct {
	name string
	life time.Duration
}{
	"alice-token-1":     {"alice", time.Minute},
	"alice-token-2":     {"alice", time.Hour},
	"alice-token-short": {"alice", 300 * time.Millisecond},
	"alice-token-old":   {"alice", -10 * time.Second},
	"bob-token":         {"bob", time.Hour},
}

func docUser(tok string) (user, error) {
	u, ok := docTokens[tok]
	if !ok {
		return user{}, errors.New("unknown token")
	}
	return user{name: u.name, exp: time.Now().Add(u.life)}, nil
}

func docParamsUser(params []byte) (user, error) {
	var p struct{ Token string }
	if err := json.Unmarshal(params, &p); err != nil {
		return user{}, err
	}
	return docUser(p.Token)
}

// docServer is the server section 15.6 describes.
func docServer(t *testing.T, refresh bool) string {
	opts := []server.Option{
		server.WithAuth(func(r *http.Request) (any, error) {
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok {
				return nil, nil // authenticates in-band
			}
			return docUser(tok)
		}),
		server.WithInBandAuth("auth.login", 0, func(_ context.Context, params []byte) (any, error) { return docParamsUser(params) }),
	}
	if refresh {
		opts = append(opts, server.WithAuthRefresh(func(_ context.Context, current any, params []byte) (any, error) {
			u, err := docParamsUser(params)
			if err != nil {
				return nil, err
			}
			if cur, _ := current.(user); cur.name != u.name {
				return nil, fmt.Errorf("%w: the credential is %s's, the connection %s's", server.ErrForbidden, u.name, cur.name)
			}
			return u, nil
		}))
	}
	return start(t, newServer(t, opts...))
}

// TestProtocolDocAuthSessions replays the sessions of section 15.6 of
// docs/PROTOCOL.md, each against a fresh server.
func TestProtocolDocAuthSessions(t *testing.T) {
	data, err := os.ReadFile("../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks [][]string
	var starts []int
	var cur []string
	in := false
	for i, line := range strings.Split(string(data), "\n") {
		switch {
		case !in && strings.TrimSpace(line) == "```authsession":
			in, cur = true, nil
			starts = append(starts, i+1)
		case in && strings.TrimSpace(line) == "```":
			in = false
			blocks = append(blocks, cur)
		case in:
			cur = append(cur, line)
		}
	}
	if len(blocks) < 6 {
		t.Fatalf("%d authsession blocks, want the six of section 15.6", len(blocks))
	}
	for i, b := range blocks {
		t.Run("line "+strconv.Itoa(starts[i]), func(t *testing.T) { replayAuthSession(t, b, starts[i]) })
	}
}

var msPlaceholder = regexp.QuoteMeta("$MS")

func replayAuthSession(t *testing.T, lines []string, start int) {
	refresh := true
	if len(lines) > 0 && strings.TrimSpace(lines[0]) == "server without refresh" {
		refresh, lines, start = false, lines[1:], start+1
	}
	url := docServer(t, refresh)
	ctx := ctxT(t)
	var conn *websocket.Conn
	defer func() {
		if conn != nil {
			conn.CloseNow()
		}
	}()
	for i := 0; i < len(lines); i++ {
		where := fmt.Sprintf("docs/PROTOCOL.md:%d", start+1+i)
		line := strings.TrimSpace(lines[i])
		verb, rest, _ := strings.Cut(line, " ")
		switch {
		case verb == "handshake":
			h := http.Header{}
			if name, value, ok := strings.Cut(rest, ": "); ok {
				h.Set(name, value)
			}
			c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
			if i+1 < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i+1]), "← http ") {
				want, _ := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(lines[i+1]), "← http "))
				if err == nil || resp == nil || resp.StatusCode != want {
					t.Fatalf("%s: handshake %v, want HTTP %d", where, err, want)
				}
				i++
				continue
			}
			if err != nil {
				t.Fatalf("%s: handshake: %v", where, err)
			}
			conn = c
		case verb == "→":
			if err := conn.Write(ctx, websocket.MessageText, []byte(rest)); err != nil {
				t.Fatalf("%s: write: %v", where, err)
			}
		case verb == "←" && strings.HasPrefix(rest, "close "):
			code, reason, _ := strings.Cut(strings.TrimPrefix(rest, "close "), " ")
			_, msg, err := conn.Read(ctx)
			var ce websocket.CloseError
			if !errors.As(err, &ce) || strconv.Itoa(int(ce.Code)) != code || strconv.Quote(ce.Reason) != reason {
				t.Fatalf("%s: read %s, %v; want a close %s %s", where, msg, err, code, reason)
			}
		case verb == "←":
			_, got, err := conn.Read(ctx)
			if err != nil {
				t.Fatalf("%s: read: %v", where, err)
			}
			re := regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(rest), msPlaceholder, "([0-9]+)") + "$")
			m := re.FindStringSubmatch(string(got))
			if m == nil {
				t.Fatalf("%s: received\n%s\nthe document shows\n%s", where, got, rest)
			}
			for _, ms := range m[1:] {
				if n, _ := strconv.Atoi(ms); n <= 0 || n > int(time.Hour/time.Millisecond) {
					t.Fatalf("%s: expiresIn %s out of (0, 1 hour]", where, ms)
				}
			}
		default:
			t.Fatalf("%s: unknown session line %q", where, line)
		}
	}
}
