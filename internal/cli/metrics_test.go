package cli

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/client"
)

var metricsRE = regexp.MustCompile(`metrics on (http://[^\s"]+)`)

// startServeMetrics runs serve with --metrics-addr on a free port (and
// args) and returns it, the RPC URL and the metrics URL.
func startServeMetrics(t *testing.T, args ...string) (*bg, string, string) {
	t.Helper()
	b, url := startServe(t, append([]string{"--metrics-addr", "127.0.0.1:0"}, args...)...)
	m := b.stderr.waitFor(t, metricsRE, b.ended)
	return b, url, m[1]
}

// scrape gets url whole, failing the test when nothing answers.
func scrape(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// TestServeMetrics: /metrics reports the calls served and made, the
// connections, a refused handshake and pub/sub, in the text format.
func TestServeMetrics(t *testing.T) {
	b, url, metrics := startServeMetrics(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := client.Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := c.Call(ctx, "add", []int{1, 2}, nil); err != nil {
			t.Fatal(err)
		}
	}
	c.Call(ctx, "nope", nil, nil)
	if _, err := c.Subscribe(ctx, "time"); err != nil {
		t.Fatal(err)
	}
	if code := status(t, url, "evil.example"); code != http.StatusForbidden {
		t.Fatalf("a foreign Host got %d", code)
	}
	wants := []string{
		"# TYPE wsrpc_calls_handled_total counter\n",
		`wsrpc_calls_handled_total{direction="incoming",method="add",code="ok"} 2` + "\n",
		`wsrpc_calls_handled_total{direction="incoming",method="nope",code="method_not_found"} 1` + "\n",
		`wsrpc_call_duration_seconds_count{direction="incoming",method="add"} 2` + "\n",
		"wsrpc_server_connections 1\n",
		`wsrpc_server_state{state="ready"} 1` + "\n",
		`wsrpc_server_state{state="draining"} 0` + "\n",
		`wsrpc_server_handshakes_refused_total{reason="host"} 1` + "\n",
		"wsrpc_pubsub_subscriptions 1\n",
		"# TYPE wsrpc_pubsub_broker_publish_seconds histogram\n",
	}
	// A connection joins the server's figures when it is registered, just
	// after its handshake, which its first calls may overtake: scrape
	// until it has (each scrape is an HTTP round trip; bounded).
	deadline := time.Now().Add(testTimeout)
	for {
		code, body := scrape(t, metrics)
		if code != http.StatusOK {
			t.Fatalf("GET /metrics: %d", code)
		}
		var missing []string
		for _, want := range wants {
			if !strings.Contains(body, want) {
				missing = append(missing, want)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %q:\n%s", missing, body)
		}
	}
	if code, _ := scrape(t, strings.TrimSuffix(metrics, "/metrics")+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("pprof without --pprof: %d, want 404", code)
	}
	c.Close()
	b.cancel()
	if code := b.wait(t); code != exitOK {
		t.Errorf("serve: code %d; stderr:\n%s", code, b.stderr.String())
	}
}

// TestServePprof: --pprof serves the profiles on the metrics listener, and
// never on the RPC one.
func TestServePprof(t *testing.T) {
	_, url, metrics := startServeMetrics(t, "--pprof")
	base := strings.TrimSuffix(metrics, "/metrics")
	if code, body := scrape(t, base+"/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("GET /debug/pprof/: %d\n%s", code, body)
	}
	if code, body := scrape(t, base+"/debug/pprof/goroutine?debug=1"); code != http.StatusOK || !strings.Contains(body, "goroutine profile") {
		t.Errorf("GET goroutine profile: %d", code)
		_ = body
	}
	rpcBase := "http" + strings.TrimPrefix(strings.TrimSuffix(url, "/rpc"), "ws")
	if code, _ := scrape(t, rpcBase+"/debug/pprof/"); code == http.StatusOK {
		t.Error("pprof is served on the RPC listener")
	}
}

func TestServeMetricsUsage(t *testing.T) {
	r := runCmd(t, "", "serve", "--pprof")
	if line := oneLine(t, r); r.code != exitUsage || !strings.Contains(line, "--pprof needs --metrics-addr") {
		t.Errorf("code %d, %q", r.code, line)
	}
	r = runCmd(t, "", "serve", "--addr", "127.0.0.1:0", "--metrics-addr", "256.0.0.1:1")
	if r.code != exitFailure || !strings.Contains(r.stderr, "--metrics-addr") {
		t.Errorf("a bad metrics address: code %d, stderr %q", r.code, r.stderr)
	}
}
