package cli

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// TestServeDeployUsageErrors: a bad value of a deployment flag is a usage
// error (exit 2, one line) and nothing starts.
func TestServeDeployUsageErrors(t *testing.T) {
	tests := []struct {
		give []string
		want string
	}{
		{[]string{"--ready-delay", "-1s"}, "--ready-delay and --goodbye-window must not be negative"},
		{[]string{"--goodbye-window", "-1s"}, "--ready-delay and --goodbye-window must not be negative"},
		{[]string{"--ready-delay", "soon"}, `invalid value "soon" for flag -ready-delay`},
		{[]string{"--ready-delay", "20s", "--drain-timeout", "10s"}, "must leave time within --drain-timeout (10s)"},
		{[]string{"--ready-delay", "5s", "--goodbye-window", "5s", "--drain-timeout", "10s"}, "must leave time within --drain-timeout"},
		{[]string{"--handshake-rate", "-1"}, "--handshake-rate must be a number of handshakes a second"},
		{[]string{"--handshake-rate", "NaN"}, "--handshake-rate must be a number of handshakes a second, 0 (no limit) or more, not NaN"},
		{[]string{"--handshake-rate", "Inf"}, "--handshake-rate must be"},
		{[]string{"--handshake-rate", "many"}, `invalid value "many" for flag -handshake-rate`},
		{[]string{"--handshake-rate", "10", "--handshake-burst", "-1"}, "--handshake-burst must not be negative"},
		{[]string{"--handshake-burst", "5"}, "--handshake-burst needs --handshake-rate"},
		{[]string{"--health-addr", "8081"}, `--health-addr must be host:port, not "8081"`},
		{[]string{"--path", "/readyz"}, "--path /readyz is where the health checks are served"},
		{[]string{"--path", "/livez"}, "--path /livez is where the health checks are served"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.give, " "), func(t *testing.T) {
			r := runCmd(t, "", append([]string{"serve"}, tt.give...)...)
			if r.code != exitUsage {
				t.Errorf("code = %d, want 2 (stderr %q)", r.code, r.stderr)
			}
			if line := oneLine(t, r); !strings.Contains(line, tt.want) || !strings.HasSuffix(line, "(run 'wsrpc serve --help')") {
				t.Errorf("stderr = %q, want it to contain %q", line, tt.want)
			}
		})
	}
}

var healthRE = regexp.MustCompile(`health checks on (http://[^\s"]+)/readyz and /livez`)

// get answers a health check: the status and body, or 0 if nothing
// answered.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("%s: Cache-Control %q", url, resp.Header.Get("Cache-Control"))
	}
	return resp.StatusCode, string(b)
}

// TestServeHealthAndDrain: `wsrpc serve --health-addr --ready-delay
// --goodbye-window` serves /readyz and /livez on both listeners; on the
// signal, readiness goes off on the health listener while the main one
// still accepts handshakes, then the connections are told to go and
// closed with 1012, and the process exits 0, the health listener last.
func TestServeHealthAndDrain(t *testing.T) {
	b, url := startServe(t, "--health-addr", "127.0.0.1:0", "--ready-delay", "2s", "--goodbye-window", "200ms", "--drain-timeout", "10s")
	health := b.stderr.waitFor(t, healthRE, b.ended)[1]
	main := "http" + strings.TrimSuffix(strings.TrimPrefix(url, "ws"), "/rpc")
	for _, base := range []string{health, main} {
		if code, body := get(t, base+"/readyz"); code != http.StatusOK || body != "ready\n" {
			t.Fatalf("%s/readyz: %d %q", base, code, body)
		}
		if code, body := get(t, base+"/livez"); code != http.StatusOK || body != "ready\n" {
			t.Fatalf("%s/livez: %d %q", base, code, body)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	peer := dialPeer(t, ctx, url)
	defer peer.Close()

	b.cancel() // what SIGTERM does in main
	for {
		code, body := get(t, health+"/readyz")
		if code == http.StatusServiceUnavailable && body == "draining\n" {
			break
		}
		if code != http.StatusOK || ctx.Err() != nil {
			t.Fatalf("/readyz after the signal: %d %q, want 200 then 503 draining", code, body)
		}
		time.Sleep(5 * time.Millisecond) // polling pace, as a load balancer's
	}
	// Readiness is off but the delay is not over: handshakes still pass.
	late := dialPeer(t, ctx, url)
	defer late.Close()
	if code, body := get(t, health+"/livez"); code != http.StatusOK || body != "draining\n" {
		t.Fatalf("/livez while draining: %d %q", code, body)
	}
	for _, p := range []*rpc.Peer{peer, late} {
		select {
		case <-p.GoingAway():
		case <-ctx.Done():
			t.Fatal("no shutdown notice")
		}
	}
	if code := b.wait(t); code != exitOK {
		t.Fatalf("serve: code %d; stderr:\n%s", code, b.stderr.String())
	}
	for _, p := range []*rpc.Peer{peer, late} {
		<-p.Conn().Done()
		if got := transport.CloseStatus(p.Conn().Err()); got != transport.StatusServiceRestart {
			t.Errorf("closed with %v, want 1012", p.Conn().Err())
		}
	}
	if code, _ := get(t, health+"/readyz"); code != 0 {
		t.Fatalf("the health listener answered %d after the exit", code)
	}
}

// TestServeHandshakeRate: beyond --handshake-burst, handshakes get 503 with
// Retry-After.
func TestServeHandshakeRate(t *testing.T) {
	_, url := startServe(t, "--handshake-rate", "0.01", "--handshake-burst", "1", "--log-level", "error")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	dialPeer(t, ctx, url).Close()
	_, err := transport.Dial(ctx, url, &transport.DialOptions{Subprotocols: rpc.Subprotocols()})
	var he *transport.HandshakeError
	if !errors.As(err, &he) || he.StatusCode != http.StatusServiceUnavailable || he.Header.Get("Retry-After") == "" {
		t.Fatalf("second handshake = %v, want 503 with Retry-After", err)
	}
}

// TestDeploymentDocReadiness runs the commands of docs/DEPLOYMENT.md's
// section "Readiness, drain and goodbye" on free loopback ports: the
// documented serve, the documented probe (200 ready), then the signal: the
// probe says draining while the main listener still accepts handshakes,
// and serve exits 0. Every flag of the section's table is one serve has.
func TestDeploymentDocReadiness(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/DEPLOYMENT.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "## 7. Readiness, drain and goodbye\n")
	if !ok {
		t.Fatal("DEPLOYMENT.md has no section Readiness, drain and goodbye")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	help := runCmd(t, "", "serve", "--help").stdout
	for _, m := range regexp.MustCompile("(?m)^\\| `(--[a-z-]+)").FindAllStringSubmatch(section, -1) {
		if !strings.Contains(help, "  "+m[1]+" ") {
			t.Errorf("the section's table names %s, which wsrpc serve --help does not list", m[1])
		}
	}
	_, block, _ := strings.Cut(section, "```sh\nwsrpc serve")
	block, _, _ = strings.Cut(block, "```")
	lines := strings.Split(strings.TrimSpace("wsrpc serve"+block), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "curl -i ") {
		t.Fatalf("want a serve and a curl line in:\n%s", block)
	}
	args := strings.Fields(lines[0])[1:]
	docAddr := map[string]string{} // documented address → flag
	for i, a := range args {
		if (a == "--addr" || a == "--health-addr") && i+1 < len(args) {
			docAddr[args[i+1]] = a
			args[i+1] = "127.0.0.1:0"
		}
	}
	probeURL := strings.Fields(lines[1])[2]
	b := start(t, strings.NewReader(""), args...)
	url := b.stderr.waitFor(t, listeningRE, b.ended)[1]
	health := b.stderr.waitFor(t, healthRE, b.ended)[1]
	for doc, flag := range docAddr {
		if flag == "--health-addr" {
			probeURL = strings.Replace(probeURL, "http://"+doc, health, 1)
		}
	}
	if !strings.HasPrefix(probeURL, health) {
		t.Fatalf("the documented probe %s is not on the documented --health-addr", lines[1])
	}
	if code, body := get(t, probeURL); code != http.StatusOK || body != "ready\n" {
		t.Fatalf("%s: %d %q, want 200 ready", lines[1], code, body)
	}
	b.cancel() // kill -TERM
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for {
		code, body := get(t, probeURL)
		if code == http.StatusServiceUnavailable && body == "draining\n" {
			break
		}
		if code != http.StatusOK || ctx.Err() != nil {
			t.Fatalf("after the signal: %d %q", code, body)
		}
		time.Sleep(5 * time.Millisecond) // polling pace
	}
	dialPeer(t, ctx, url).Close() // the ready delay: still accepted
	if code := b.wait(t); code != exitOK {
		t.Fatalf("serve: code %d; stderr:\n%s", code, b.stderr.String())
	}
}
