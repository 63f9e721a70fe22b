package pubsub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
)

const protocolDoc = "../docs/PROTOCOL.md"

// sessionBlocks returns the ```session blocks of the protocol document,
// with the line each starts on.
func sessionBlocks(t *testing.T) (blocks [][]string, lines []int) {
	data, err := os.ReadFile(protocolDoc)
	if err != nil {
		t.Fatal(err)
	}
	var cur []string
	in := false
	for i, line := range strings.Split(string(data), "\n") {
		switch {
		case !in && strings.TrimSpace(line) == "```session":
			in, cur = true, nil
			lines = append(lines, i+1)
		case in && strings.TrimSpace(line) == "```":
			in = false
			blocks = append(blocks, cur)
		case in:
			cur = append(cur, line)
		}
	}
	return blocks, lines
}

// TestProtocolDocSessions replays every session of section 13.8 against a
// real server, each on a fresh one.
func TestProtocolDocSessions(t *testing.T) {
	blocks, lines := sessionBlocks(t)
	if len(blocks) < 4 {
		t.Fatalf("%d sessions in %s, want the five of section 13.8", len(blocks), protocolDoc)
	}
	for i, b := range blocks {
		t.Run("line "+strconv.Itoa(lines[i]), func(t *testing.T) { replaySession(t, b, lines[i]) })
	}
}

type sessionClient struct {
	t     *testing.T
	conn  *websocket.Conn
	queue [][]byte // received messages not yet checked (a batch is split)
}

func (c *sessionClient) next(ctx context.Context) []byte {
	c.t.Helper()
	for len(c.queue) == 0 {
		_, data, err := c.conn.Read(ctx)
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		if bytes.HasPrefix(bytes.TrimSpace(data), []byte("[")) {
			var elems []json.RawMessage
			if err := json.Unmarshal(data, &elems); err != nil {
				c.t.Fatalf("batch %s: %v", data, err)
			}
			for _, e := range elems {
				c.queue = append(c.queue, e)
			}
			continue
		}
		c.queue = append(c.queue, data)
	}
	m := c.queue[0]
	c.queue = c.queue[1:]
	return m
}

func replaySession(t *testing.T, lines []string, start int) {
	hub, err := pubsub.New(
		pubsub.WithRule("news.>", pubsub.Rule{HistorySize: 100}),
		pubsub.WithRule("chat.>", pubsub.Rule{Publish: func(context.Context, *rpc.Peer, *pubsub.Message) error { return nil }}),
	)
	if err != nil {
		t.Fatal(err)
	}
	gone := make(chan struct{}, 4)
	srv, err := server.New(rpc.HandlerFunc(func(context.Context, *rpc.Request) ([]byte, error) { return nil, nil }),
		server.WithHub(hub), server.WithOnDisconnect(func(*rpc.Peer, error) { gone <- struct{}{} }))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	defer func() {
		_ = srv.Shutdown(ctx)
		hs.Close()
		_ = hub.Close()
	}()
	url := "ws" + strings.TrimPrefix(hs.URL, "http")
	dial := func() *sessionClient {
		conn, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		return &sessionClient{t: t, conn: conn}
	}
	c := dial()
	defer func() { c.conn.CloseNow() }()
	epoch := ""
	subst := func(s string) string { return strings.ReplaceAll(s, "$EPOCH", epoch) }
	for i, line := range lines {
		where := protocolDoc + ":" + strconv.Itoa(start+1+i)
		verb, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch verb {
		case "":
		case "→":
			if err := c.conn.Write(ctx, websocket.MessageText, []byte(subst(rest))); err != nil {
				t.Fatalf("%s: write: %v", where, err)
			}
		case "←":
			if i > 0 && strings.HasPrefix(strings.TrimSpace(lines[i-1]), "←") {
				continue // matched with the run it belongs to
			}
			// A run of consecutive ← lines may arrive in any order among
			// themselves (the document says so); each message received
			// must match one line of the run not yet matched.
			var want []string
			for _, l := range lines[i:] {
				v, r, _ := strings.Cut(strings.TrimSpace(l), " ")
				if v != "←" {
					break
				}
				want = append(want, r)
			}
			for range want {
				got := string(c.next(ctx))
				k := slices.IndexFunc(want, func(w string) bool { return matchLine(got, w, &epoch) })
				if k < 0 {
					t.Fatalf("%s: received\n%s\nthe document shows one of\n%s", where, got, strings.Join(want, "\n"))
				}
				want = slices.Delete(want, k, k+1)
			}
		case "publish":
			topic, data, _ := strings.Cut(rest, " ")
			if _, err := hub.Publish(ctx, topic, json.RawMessage(data)); err != nil {
				t.Fatalf("%s: publish: %v", where, err)
			}
		case "reconnect":
			c.conn.CloseNow()
			select {
			case <-gone: // the server has detached the old connection
			case <-ctx.Done():
				t.Fatalf("%s: the server did not see the connection end", where)
			}
			c = dial()
		default:
			t.Fatalf("%s: unknown session line %q", where, line)
		}
	}
}

// matchLine reports whether the received message got is the one a session
// line shows. The first line to show $EPOCH learns the epoch; later ones
// must carry the same.
func matchLine(got, line string, epoch *string) bool {
	if *epoch == "" && strings.Contains(line, "$EPOCH") {
		re := regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(line), regexp.QuoteMeta("$EPOCH"), "([0-9a-f]+)") + "$")
		m := re.FindStringSubmatch(got)
		if m == nil {
			return false
		}
		*epoch = m[1]
		return true
	}
	return got == strings.ReplaceAll(line, "$EPOCH", *epoch)
}
