package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// TestServeThenCall is the README's "Command line" session: serve, then
// call it.
func TestServeThenCall(t *testing.T) {
	b, url := startServe(t)
	if !regexp.MustCompile(`^ws://127\.0\.0\.1:\d+/rpc$`).MatchString(url) {
		t.Errorf("url = %q", url)
	}
	r := runCmd(t, "", "call", url, "add", "[1,2,3]")
	if r.code != exitOK || r.stdout != "6\n" {
		t.Errorf("call: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	b.cancel()
	if code := b.wait(t); code != exitOK {
		t.Errorf("serve: code %d, want 0; stderr:\n%s", code, b.stderr.String())
	}
	logs := b.stderr.String()
	for _, want := range []string{`msg="rpc call" method=add`, "shutting down", "stopped; every call finished"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %q:\n%s", want, logs)
		}
	}
}

// dialPeer connects a bare rpc.Peer to url, for tests that watch what the
// server does on the wire: a client.Client answers a shutdown notice by
// draining and closing the connection itself, and that close would race
// the one the test looks for.
func dialPeer(t *testing.T, ctx context.Context, url string) *rpc.Peer {
	t.Helper()
	conn, err := transport.Dial(ctx, url, &transport.DialOptions{Subprotocols: rpc.Subprotocols()})
	if err != nil {
		t.Fatal(err)
	}
	peer, err := rpc.New(conn)
	if err != nil {
		conn.CloseNow()
		t.Fatal(err)
	}
	return peer
}

func TestServeShutdownWithCallInFlight(t *testing.T) {
	b, url := startServe(t, "--drain-timeout", "10s")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	peer := dialPeer(t, ctx, url)
	defer peer.Close()
	reply := make(chan *rpc.Response, 1)
	if err := peer.Send(ctx, &rpc.Request{Method: "sleep", Params: rpc.Raw(`{"ms":300}`), Reply: reply}); err != nil {
		t.Fatal(err)
	}
	// The server dispatches a connection's requests in order: once the reply
	// to time is back, sleep is in flight.
	if err := peer.Call(ctx, "time", nil, nil); err != nil {
		t.Fatal(err)
	}
	b.cancel() // what SIGTERM does in main

	select {
	case <-peer.GoingAway():
	case <-ctx.Done():
		t.Fatal("no shutdown notice")
	}
	select {
	case resp := <-reply:
		if resp.Err != nil || string(resp.Result) != `{"slept_ms":300}` {
			t.Errorf("the call in flight got %s, %v; want its result", resp.Result, resp.Err)
		}
	case <-ctx.Done():
		t.Fatal("no reply to the call in flight")
	}
	if code := b.wait(t); code != exitOK {
		t.Errorf("serve: code %d, want 0; stderr:\n%s", code, b.stderr.String())
	}
	<-peer.Conn().Done()
	if got := transport.CloseStatus(peer.Conn().Err()); got != transport.StatusServiceRestart {
		t.Errorf("the connection closed with %v, want 1012", peer.Conn().Err())
	}
}

func TestServeDrainTimeout(t *testing.T) {
	b, url := startServe(t, "--drain-timeout", "100ms", "--log-level", "error")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := dialClient(ctx, url, client.WithReconnect(false))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reply := make(chan *rpc.Response, 1)
	if err := c.Go(ctx, "sleep", rpc.Raw(`{"ms":10000}`), reply); err != nil {
		t.Fatal(err)
	}
	// The server dispatches a connection's requests in order: once the reply
	// to time is back, sleep is in flight.
	if err := c.Call(ctx, "time", nil, nil); err != nil {
		t.Fatal(err)
	}
	b.cancel()
	if code := b.wait(t); code != exitFailure {
		t.Errorf("serve: code %d, want 1", code)
	}
	// The listening line, then the error and nothing else.
	want := "wsrpc serve: shutdown cut short on 1 connection (1 incoming, 0 outgoing calls unfinished): context deadline exceeded"
	lines := strings.Split(strings.TrimSpace(b.stderr.String()), "\n")
	if got := lines[len(lines)-1]; len(lines) != 2 || got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
	if resp := <-reply; resp.Err == nil {
		t.Errorf("the call cut short succeeded: %s", resp.Result)
	}
}

func TestServeJSONLogs(t *testing.T) {
	b, url := startServe(t, "--log-format", "json")
	if r := runCmd(t, "", "call", url, "echo", `["x"]`); r.code != exitOK {
		t.Fatalf("call: code %d, stderr %q", r.code, r.stderr)
	}
	b.cancel()
	if code := b.wait(t); code != exitOK {
		t.Fatalf("serve: code %d", code)
	}
	lines := strings.Split(strings.TrimSpace(b.stderr.String()), "\n")
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Errorf("not a JSON log line: %q", l)
		}
	}
	var first struct{ Level, Msg string }
	json.Unmarshal([]byte(lines[0]), &first)
	if first.Level != "INFO" || first.Msg != "listening on "+url {
		t.Errorf("first line = %q", lines[0])
	}
}

func TestServeStatic(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>hello</h1>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, url := startServe(t, "--static", dir, "--path", "/ws")
	base := "http" + strings.TrimSuffix(strings.TrimPrefix(url, "ws"), "/ws")
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "<h1>hello</h1>\n" {
		t.Errorf("GET / = %d %q", resp.StatusCode, body)
	}
	if r := runCmd(t, "", "call", url, "add", "[2,2]"); r.code != exitOK || r.stdout != "4\n" {
		t.Errorf("call at --path: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	b.cancel()
	if code := b.wait(t); code != exitOK {
		t.Errorf("serve: code %d", code)
	}
}

func TestServeStaticMissing(t *testing.T) {
	r := runCmd(t, "", "serve", "--addr", "127.0.0.1:0", "--static", filepath.Join(t.TempDir(), "nope"))
	if r.code != exitFailure {
		t.Errorf("code = %d, want 1", r.code)
	}
	if got := oneLine(t, r); !strings.HasPrefix(got, "wsrpc serve: --static: stat ") {
		t.Errorf("stderr = %q", got)
	}
}

func TestServeAddrInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := runCmd(t, "", "serve", "--addr", ln.Addr().String())
	if r.code != exitFailure {
		t.Errorf("code = %d, want 1", r.code)
	}
	if got := oneLine(t, r); !strings.Contains(got, "address already in use") {
		t.Errorf("stderr = %q", got)
	}
}

func TestServeOrigins(t *testing.T) {
	b, url := startServe(t, "--origin", "*.example.com", "--log-level", "warn")
	stdin, in := io.Pipe()
	defer in.Close()
	ok := start(t, stdin, "connect", "--linger", "0", "--origin", "https://app.example.com", url)
	ok.stderr.waitFor(t, regexp.MustCompile(`connected to`), ok.ended)
	in.Close()
	if code := ok.wait(t); code != exitOK {
		t.Errorf("an allowed origin: code %d, stderr %q", code, ok.stderr.String())
	}
	r := runCmd(t, "", "connect", "--origin", "https://evil.example.net", url)
	if r.code != exitFailure || !strings.Contains(r.stderr, "HTTP 403 Forbidden") {
		t.Errorf("another origin: code %d, stderr %q; want 1 and 403", r.code, r.stderr)
	}
	b.cancel()
	b.wait(t)
}

func TestServeTLS(t *testing.T) {
	cert, key := selfSigned(t)
	b, url := startServe(t, "--tls-cert", cert, "--tls-key", key, "--log-level", "error")
	if !strings.HasPrefix(url, "wss://") {
		t.Fatalf("url = %q, want wss://", url)
	}
	r := runCmd(t, "", "call", "--insecure", url, "add", "[1,1]")
	if r.code != exitOK || r.stdout != "2\n" {
		t.Errorf("--insecure: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "WARNING: --insecure") {
		t.Errorf("no warning for --insecure: %q", r.stderr)
	}
	r = runCmd(t, "", "call", url, "add", "[1,1]")
	if r.code != exitNoConnection {
		t.Errorf("an unknown certificate: code %d, want 3", r.code)
	}
	if got := oneLine(t, r); !strings.Contains(got, "TLS: ") || !strings.Contains(got, "--ca FILE trusts a CA; --insecure skips the check") {
		t.Errorf("stderr = %q", got)
	}
	r = runCmd(t, "", "call", "ws"+strings.TrimPrefix(url, "wss"), "add", "[1,1]")
	if r.code != exitNoConnection {
		t.Errorf("ws:// to a TLS server: code %d, want 3 (stderr %q)", r.code, r.stderr)
	}
	b.cancel()
	if code := b.wait(t); code != exitOK {
		t.Errorf("serve: code %d, stderr %q", code, b.stderr.String())
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their paths.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "wsrpc test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
