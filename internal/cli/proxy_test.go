package cli

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// connectProxy is an HTTP proxy that only tunnels (CONNECT), on loopback.
type connectProxy struct {
	url    string // http://127.0.0.1:port, or https://
	caFile string // with https://: the PEM file of its certificate

	mu      sync.Mutex
	targets []string // the host:port of each tunnel asked for
}

// newConnectProxy starts a CONNECT proxy. With auth set, it wants that
// "user:pass" in Proxy-Authorization. The cleanup closes every tunnel and
// waits for their goroutines.
func newConnectProxy(t *testing.T, auth string) *connectProxy {
	t.Helper()
	return startConnectProxy(t, auth, false)
}

// startConnectProxy is newConnectProxy, on https:// with overTLS (the
// certificate is in caFile).
func startConnectProxy(t *testing.T, auth string, overTLS bool) *connectProxy {
	t.Helper()
	p := &connectProxy{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	track := func(c net.Conn) {
		mu.Lock()
		defer mu.Unlock()
		conns = append(conns, c)
	}
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		if auth != "" && r.Header.Get("Proxy-Authorization") != "Basic "+base64.StdEncoding.EncodeToString([]byte(auth)) {
			w.Header().Set("Proxy-Authenticate", `Basic realm="test"`)
			http.Error(w, "who are you", http.StatusProxyAuthRequired)
			return
		}
		p.mu.Lock()
		p.targets = append(p.targets, r.Host)
		p.mu.Unlock()
		up, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		down, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			return
		}
		track(up)
		track(down)
		io.WriteString(down, "HTTP/1.1 200 Connection established\r\n\r\n")
		wg.Add(2)
		go func() { defer wg.Done(); io.Copy(up, down); up.Close() }()
		go func() { defer wg.Done(); io.Copy(down, up); down.Close() }()
	}))
	if overTLS {
		ts.StartTLS()
		p.caFile = filepath.Join(t.TempDir(), "proxy-ca.pem")
		if err := os.WriteFile(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
	} else {
		ts.Start()
	}
	t.Cleanup(func() {
		ts.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	p.url = ts.URL
	return p
}

func (p *connectProxy) tunnels() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.targets...)
}

func hostOf(t *testing.T, wsURL string) string {
	t.Helper()
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(wsURL, "ws://"), "wss://"), "/rpc")
}

func TestProxyConnectAndCall(t *testing.T) {
	ts := newTestServer(t)
	p := newConnectProxy(t, "")
	r := runCmd(t, "", "call", "--proxy", p.url, ts.url, "add", "[1,2]")
	if r.code != exitOK || r.stdout != "3\n" {
		t.Fatalf("call: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = runCmd(t, `{"jsonrpc":"2.0","id":1,"method":"add","params":[2,3]}`+"\n", "connect", "--proxy", p.url, ts.url)
	if r.code != exitOK || r.stdout != `{"jsonrpc":"2.0","id":1,"result":5}`+"\n" {
		t.Fatalf("connect: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	host := hostOf(t, ts.url)
	if got := p.tunnels(); len(got) != 2 || got[0] != host || got[1] != host {
		t.Errorf("tunnels %q, want two to %s", got, host)
	}
}

func TestProxyAuth(t *testing.T) {
	ts := newTestServer(t)
	p := newConnectProxy(t, "ann:s3cret")
	r := runCmd(t, "", "call", "--proxy", p.url, ts.url, "add", "[1,2]")
	if r.code != exitNoConnection {
		t.Errorf("without credentials: code %d, want 3", r.code)
	}
	want := "wsrpc call: dial " + ts.url + ": proxy " + p.url + ": CONNECT " + hostOf(t, ts.url) + ": the proxy answered HTTP 407 Proxy Authentication Required"
	if got := oneLine(t, r); got != want {
		t.Errorf("stderr = %q\nwant     %q", got, want)
	}
	withAuth := strings.Replace(p.url, "http://", "http://ann:s3cret@", 1)
	r = runCmd(t, "", "call", "--proxy", withAuth, ts.url, "add", "[1,2]")
	if r.code != exitOK || r.stdout != "3\n" {
		t.Errorf("with credentials: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestProxyOverTLS: an https:// proxy, its certificate trusted with --ca.
func TestProxyOverTLS(t *testing.T) {
	ts := newTestServer(t)
	p := startConnectProxy(t, "", true)
	r := runCmd(t, "", "call", "--proxy", p.url, "--ca", p.caFile, ts.url, "add", "[1,2]")
	if r.code != exitOK || r.stdout != "3\n" {
		t.Fatalf("code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = runCmd(t, "", "call", "--proxy", p.url, ts.url, "add", "[1,2]")
	if got := oneLine(t, r); r.code != exitNoConnection || !strings.Contains(got, "proxy "+p.url+": TLS handshake with the proxy failed: ") {
		t.Errorf("an untrusted proxy: code %d, stderr %q", r.code, got)
	}
	if n := len(p.tunnels()); n != 1 {
		t.Errorf("%d tunnels, want 1", n)
	}
}

func TestProxyUnreachable(t *testing.T) {
	r := runCmd(t, "", "connect", "--proxy", "http://127.0.0.1:1", "ws://127.0.0.1:2/")
	if got, want := oneLine(t, r), "wsrpc connect: dial ws://127.0.0.1:2/: proxy http://127.0.0.1:1: cannot reach the proxy: connection refused"; r.code != exitFailure || got != want {
		t.Errorf("code %d, stderr %q; want 1, %q", r.code, got, want)
	}
}

// oneShotProxy accepts one connection on loopback and hands it to answer;
// it returns the listener's host:port. The cleanup waits for answer.
func oneShotProxy(t *testing.T, answer func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		answer(c)
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// TestProxyAnswerIsBounded: a proxy that sends headers without end is cut
// off, not read into memory.
func TestProxyAnswerIsBounded(t *testing.T) {
	addr := oneShotProxy(t, func(c net.Conn) {
		bufio.NewReader(c).ReadString('\n')
		io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		line := "X-Junk: " + strings.Repeat("j", 1000) + "\r\n"
		for i := 0; i < 1000; i++ {
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
	})
	r := runCmd(t, "", "call", "--proxy", "http://"+addr, "ws://127.0.0.1:2/rpc", "m")
	if got := oneLine(t, r); r.code != exitNoConnection || !strings.Contains(got, "its answer to CONNECT is over 65536 bytes") {
		t.Errorf("code %d, stderr %q", r.code, got)
	}
}

// testPKI is a CA, a server certificate for 127.0.0.1 and a client
// certificate it signed, in PEM files.
type testPKI struct {
	caFile, clientCert, clientKey string
	server                        tls.Certificate
	pool                          *x509.CertPool
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "wsrpc test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		k := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "wsrpc test"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	p := &testPKI{pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.caFile = write("ca.pem", "CERTIFICATE", caDER)
	srvDER, srvKey := leaf(2, x509.ExtKeyUsageServerAuth)
	p.server = tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}
	cliDER, cliKey := leaf(3, x509.ExtKeyUsageClientAuth)
	keyDER, err := x509.MarshalECPrivateKey(cliKey)
	if err != nil {
		t.Fatal(err)
	}
	p.clientCert = write("client.pem", "CERTIFICATE", cliDER)
	p.clientKey = write("client-key.pem", "EC PRIVATE KEY", keyDER)
	return p
}

// newMTLSServer serves the demo services on wss:// with the PKI's server
// certificate, asking for a client certificate the CA signed.
func newMTLSServer(t *testing.T, p *testPKI) string {
	t.Helper()
	ts := newTestServer(t)
	target := strings.TrimPrefix(ts.url, "ws://")
	// A TLS front for the test server: TLS ends here, the bytes go on.
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{p.server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    p.pool,
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", strings.TrimSuffix(target, "/rpc"))
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, up)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(up, c); up.Close() }()
			go func() { defer wg.Done(); io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "wss://" + ln.Addr().String() + "/rpc"
}

func TestTLSFlags(t *testing.T) {
	p := newTestPKI(t)
	url := newMTLSServer(t, p)
	r := runCmd(t, "", "call", "--ca", p.caFile, "--cert", p.clientCert, "--key", p.clientKey, url, "add", "[1,2]")
	if r.code != exitOK || r.stdout != "3\n" || r.stderr != "" {
		t.Fatalf("call with the CA and a client certificate: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = runCmd(t, `{"jsonrpc":"2.0","id":1,"method":"add","params":[2,2]}`+"\n", "connect",
		"--ca", p.caFile, "--cert", p.clientCert, "--key", p.clientKey, url)
	if r.code != exitOK || r.stdout != `{"jsonrpc":"2.0","id":1,"result":4}`+"\n" {
		t.Fatalf("connect: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = runCmd(t, "", "call", "-v", "--ca", p.caFile, "--cert", p.clientCert, "--key", p.clientKey, url, "add", "[1,2]")
	if r.code != exitOK || !regexp.MustCompile(`(?m)^\* TLS handshake in [\d.]+ms: TLS 1\.[23], TLS_\w+$`).MatchString(r.stderr) {
		t.Errorf("-v over TLS: code %d, stderr:\n%s", r.code, r.stderr)
	}
	// Without the CA the server is not trusted; without a client
	// certificate the server refuses the handshake.
	r = runCmd(t, "", "call", "--cert", p.clientCert, "--key", p.clientKey, url, "add", "[1,2]")
	if got := oneLine(t, r); r.code != exitNoConnection || !strings.Contains(got, "TLS: ") || !strings.Contains(got, "--ca FILE") {
		t.Errorf("without --ca: code %d, stderr %q", r.code, got)
	}
	r = runCmd(t, "", "call", "--ca", p.caFile, url, "add", "[1,2]")
	if r.code != exitNoConnection || r.stdout != "" {
		t.Errorf("without a client certificate: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// Through a proxy: the tunnel carries TLS end to end.
	px := newConnectProxy(t, "")
	r = runCmd(t, "", "call", "--proxy", px.url, "--ca", p.caFile, "--cert", p.clientCert, "--key", p.clientKey, url, "add", "[3,4]")
	if r.code != exitOK || r.stdout != "7\n" {
		t.Errorf("through the proxy: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestDialFlagErrors(t *testing.T) {
	p := newTestPKI(t)
	tests := []struct {
		give []string
		want string
	}{
		{[]string{"--cert", p.clientCert}, "--cert and --key go together"},
		{[]string{"--key", p.clientKey}, "--cert and --key go together"},
		{[]string{"--ca", "testdata/nonexistent.pem"}, "--ca: open testdata/nonexistent.pem: no such file or directory"},
		{[]string{"--ca", "testdata/answers.json"}, "--ca testdata/answers.json: no PEM certificate in it"},
		{[]string{"--cert", p.clientKey, "--key", p.clientCert}, "--cert/--key: "},
		{[]string{"--proxy", "socks5://127.0.0.1:1080"}, `--proxy "socks5://127.0.0.1:1080": want http://host:port or https://host:port`},
		{[]string{"--proxy", "http://"}, `--proxy "http://": no host`},
		{[]string{"--proxy", "http://proxy:3128/path"}, "a proxy URL has no path"},
	}
	for _, cmd := range [][]string{{"call", "ws://127.0.0.1:1/rpc", "m"}, {"connect", "ws://127.0.0.1:1/"}, {"bench", "ws://127.0.0.1:1/rpc", "m"}} {
		for _, tt := range tests {
			r := runCmd(t, "", append(append([]string{cmd[0]}, tt.give...), cmd[1:]...)...)
			if got := oneLine(t, r); r.code != exitUsage || !strings.Contains(got, tt.want) {
				t.Errorf("%s %q: code %d, stderr %q; want 2 and %q", cmd[0], tt.give, r.code, got, tt.want)
			}
		}
	}
}

// TestConnectDialerKeepsTunnelBytes: bytes the proxy sends right after its
// answer belong to the tunnel.
func TestConnectDialerKeepsTunnelBytes(t *testing.T) {
	addr := oneShotProxy(t, func(c net.Conn) {
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil || req.Method != http.MethodConnect || req.Host != "example.test:443" {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\nfirst bytes")
	})
	d := &connectDialer{proxy: mustParseProxy("http://" + addr)}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", "example.test:443")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, _ := io.ReadAll(c)
	if string(b) != "first bytes" {
		t.Errorf("the tunnel gave %q", b)
	}
}

// mustParseProxy is parseProxy for a URL known to be good.
func mustParseProxy(s string) *url.URL {
	u, err := parseProxy(s)
	if err != nil {
		panic(err)
	}
	return u
}

// The verbose trace of a call through the proxy names the proxy's
// connection: -v shows where the bytes went.
func TestCallVerboseThroughProxy(t *testing.T) {
	ts := newTestServer(t)
	p := newConnectProxy(t, "")
	r := runCmd(t, "", "call", "-v", "--proxy", p.url, ts.url, "add", "[1,2]")
	if r.code != exitOK {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	if want := "* connected to " + strings.TrimPrefix(p.url, "http://") + " in "; !strings.Contains(r.stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
	}
	if !regexp.MustCompile(`(?m)^> Host: ` + regexp.QuoteMeta(hostOf(t, ts.url)) + `$`).MatchString(r.stderr) {
		t.Errorf("stderr lacks the Host:\n%s", r.stderr)
	}
}
