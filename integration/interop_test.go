package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
)

// notes records the notifications the server received.
type notes struct {
	mu  sync.Mutex
	got []string
	ch  chan struct{}
}

func (n *notes) add(s string) {
	n.mu.Lock()
	n.got = append(n.got, s)
	n.mu.Unlock()
	select {
	case n.ch <- struct{}{}:
	default:
	}
}

func (n *notes) has(s string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, g := range n.got {
		if g == s {
			return true
		}
	}
	return false
}

// interopServer serves echo, add, callback and a notification recorder on
// /rpc, static files on /, and collects browser reports on /report.
func interopServer(t *testing.T) (url string, n *notes, reports chan []byte) {
	t.Helper()
	n = &notes{ch: make(chan struct{}, 16)}
	mux := handler.NewMux()
	mux.Handle("echo", handler.Func(func(ctx context.Context, in json.RawMessage) (json.RawMessage, error) { return in, nil }))
	mux.Handle("add", handler.Func(func(ctx context.Context, xs []float64) (float64, error) {
		sum := 0.0
		for _, x := range xs {
			sum += x
		}
		return sum, nil
	}))
	mux.Handle("callback", handler.Func(func(ctx context.Context, in struct {
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
	}) (json.RawMessage, error) {
		var out json.RawMessage
		err := rpc.RequestFromContext(ctx).Peer().Call(ctx, in.Method, rpc.Raw(in.Params), (*rpc.Raw)(&out))
		return out, err
	}))
	mux.Handle("note", handler.NoResult(func(ctx context.Context, in json.RawMessage) error {
		n.add(string(in))
		return nil
	}))
	srv, err := server.New(mux)
	if err != nil {
		t.Fatal(err)
	}
	reports = make(chan []byte, 1)
	httpMux := http.NewServeMux()
	httpMux.Handle("/rpc", srv)
	httpMux.Handle("/", http.FileServer(http.Dir("testdata")))
	httpMux.HandleFunc("/report", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case reports <- b:
		default:
		}
	})
	hs := httptest.NewServer(httpMux)
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
	})
	return hs.URL, n, reports
}

// runClient runs a third-party client and returns its replies by case name.
func runClient(t *testing.T, cmd *exec.Cmd) map[string]json.RawMessage {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmd.Path, err, stderr.String())
	}
	replies := map[string]json.RawMessage{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var line struct {
			Case  string          `json:"case"`
			Reply json.RawMessage `json:"reply"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("bad output line %q: %v", sc.Text(), err)
		}
		replies[line.Case] = line.Reply
	}
	return replies
}

func sameJSON(t *testing.T, what string, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %q is not JSON", what, got)
	}
	json.Unmarshal([]byte(want), &w)
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if !bytes.Equal(gb, wb) {
		t.Errorf("%s:\n got %s\nwant %s", what, gb, wb)
	}
}

// checkReplies asserts what every scripted client must have seen.
func checkReplies(t *testing.T, who string, r map[string]json.RawMessage, n *notes) {
	t.Helper()
	sameJSON(t, "echo", r["echo"], `{"jsonrpc":"2.0","id":"echo","result":["hello",1]}`)
	sameJSON(t, "add", r["add"], `{"jsonrpc":"2.0","id":7,"result":6.5}`)
	var unknown struct {
		ID    string             `json:"id"`
		Error struct{ Code int } `json:"error"`
	}
	json.Unmarshal(r["unknown"], &unknown)
	if unknown.ID != "unknown" || unknown.Error.Code != -32601 {
		t.Errorf("unknown method reply %s, want -32601 with id \"unknown\"", r["unknown"])
	}
	var batch []map[string]json.RawMessage
	if err := json.Unmarshal(r["batch"], &batch); err != nil || len(batch) != 2 {
		t.Fatalf("batch reply %s: want an array of 2 replies (none for the notification)", r["batch"])
	}
	for _, b := range batch {
		switch string(b["id"]) {
		case `"b1"`:
			sameJSON(t, "batch b1", b["result"], `3`)
		case `"b2"`:
			sameJSON(t, "batch b2", b["result"], `{"k":"v"}`)
		default:
			t.Errorf("unexpected batch reply %v", b)
		}
	}
	sameJSON(t, "callback", r["callback"], `{"jsonrpc":"2.0","id":"callback","result":{"from":"`+who+`","got":["ping"]}}`)
	deadline := time.After(10 * time.Second)
	for !n.has(`["from `+who+`"]`) || !n.has(`["in a batch"]`) {
		select {
		case <-n.ch:
		case <-deadline:
			t.Fatalf("notifications seen by the server: %v", n.got)
		}
	}
}

func TestPythonWebsocketsClient(t *testing.T) {
	const python = "/usr/bin/python3" // Debian's, where python3-websockets installs
	needTool(t, exec.Command(python, "-c", "import websockets").Run(), "apt-get install -y python3-websockets")
	url, n, _ := interopServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "testdata/client.py", "ws"+strings.TrimPrefix(url, "http")+"/rpc")
	checkReplies(t, "python", runClient(t, cmd), n)
}

func TestNodeWsClient(t *testing.T) {
	node, env := nodeWithWs(t)
	url, n, _ := interopServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "testdata/client.js", "ws"+strings.TrimPrefix(url, "http")+"/rpc")
	cmd.Env = env
	checkReplies(t, "node", runClient(t, cmd), n)
}

func TestBrowserClient(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	needTool(t, err, "apt-get install -y chromium")
	url, _, reports := interopServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--disable-quic",
		"--user-data-dir="+filepath.Join(t.TempDir(), "profile"),
		"--remote-debugging-port=0", // keeps the headless browser running until we stop it
		url+"/page.html")
	// Chromium starts helper processes: run it in its own process group and
	// stop the whole group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		cmd.Wait()
	}()
	var report []byte
	select {
	case report = <-reports:
	case <-time.After(60 * time.Second):
		t.Fatalf("the page never reported; chromium said:\n%s", stderr.String())
	}
	var r map[string]json.RawMessage
	if err := json.Unmarshal(report, &r); err != nil {
		t.Fatalf("report %q: %v", report, err)
	}
	sameJSON(t, "echo", r["echo"], `{"jsonrpc":"2.0","id":1,"result":["from the browser"]}`)
	sameJSON(t, "add", r["add"], `{"jsonrpc":"2.0","id":2,"result":5}`)
	sameJSON(t, "callback", r["callback"], `{"jsonrpc":"2.0","id":4,"result":{"from":"browser","got":["ping"]}}`)
	if !strings.Contains(string(r["unknown"]), "-32601") {
		t.Errorf("unknown method reply %s", r["unknown"])
	}
}
