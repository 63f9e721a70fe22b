package cli

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/server"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testTimeout bounds every command run by a test.
const testTimeout = 20 * time.Second

// result is what one run of the command produced.
type result struct {
	code           int
	stdout, stderr string
}

// runCmd runs the command in-process with stdin as its input.
func runCmd(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return runCtx(t, context.Background(), strings.NewReader(stdin), args...)
}

func runCtx(t *testing.T, ctx context.Context, stdin io.Reader, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, testTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, stdin, &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// runExt is runCmd for a build with ext.
func runExt(t *testing.T, ext Extensions, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := runWith(ctx, ext, args, strings.NewReader(stdin), &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// syncBuffer is a buffer safe for concurrent use that a test can wait on.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed on the next write; nil when nobody waits
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
	return n, err
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits until the buffer matches re and returns the submatches.
// It fails the test when stop fires first (the writer is done) or after
// testTimeout.
func (b *syncBuffer) waitFor(t *testing.T, re *regexp.Regexp, stop <-chan struct{}) []string {
	t.Helper()
	deadline := time.NewTimer(testTimeout)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		if m := re.FindStringSubmatch(b.buf.String()); m != nil {
			b.mu.Unlock()
			return m
		}
		if b.changed == nil {
			b.changed = make(chan struct{})
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-stop:
			if m := re.FindStringSubmatch(b.String()); m != nil {
				return m
			}
			t.Fatalf("the command ended before printing %s; it printed:\n%s", re, b.String())
		case <-deadline.C:
			t.Fatalf("no %s within %s; got:\n%s", re, testTimeout, b.String())
		}
	}
}

// bg is one run of the command on a goroutine of its own.
type bg struct {
	cancel context.CancelFunc
	stdout *syncBuffer
	stderr *syncBuffer
	ended  chan struct{} // closed when run has returned
	code   int           // valid once ended is closed
}

// start runs the command in the background. The test's cleanup cancels it
// and waits for it.
func start(t *testing.T, stdin io.Reader, args ...string) *bg {
	t.Helper()
	return startExt(t, Extensions{}, stdin, args...)
}

// startExt is start for a build with ext.
func startExt(t *testing.T, ext Extensions, stdin io.Reader, args ...string) *bg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	b := &bg{cancel: cancel, stdout: &syncBuffer{}, stderr: &syncBuffer{}, ended: make(chan struct{})}
	go func() {
		defer close(b.ended)
		b.code = runWith(ctx, ext, args, stdin, b.stdout, b.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		<-b.ended
	})
	return b
}

// wait waits for the command to end and returns its exit code.
func (b *bg) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-b.ended:
		return b.code
	case <-time.After(testTimeout):
		t.Fatalf("the command did not end within %s; stderr:\n%s", testTimeout, b.stderr.String())
		return -1
	}
}

var listeningRE = regexp.MustCompile(`listening on (wss?://[^\s"]+)`)

// startServe runs `wsrpc serve` on a free loopback port and returns it with
// the URL it printed.
func startServe(t *testing.T, args ...string) (*bg, string) {
	t.Helper()
	return startServeExt(t, Extensions{}, args...)
}

// startServeExt is startServe for a build with ext.
func startServeExt(t *testing.T, ext Extensions, args ...string) (*bg, string) {
	t.Helper()
	b := startExt(t, ext, strings.NewReader(""), append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	m := b.stderr.waitFor(t, listeningRE, b.ended)
	return b, m[1]
}

// testServer is a server with the demo services on httptest.
type testServer struct {
	url string // ws://127.0.0.1:port/rpc
	srv *server.Server
}

func newTestServer(t *testing.T, opts ...server.Option) *testServer {
	t.Helper()
	return mountTestServer(t, services(true, nil, nil), opts...)
}

// mountTestServer serves h on /rpc of an httptest server, closed (server
// first) when t ends.
func mountTestServer(t *testing.T, h handler.Handler, opts ...server.Option) *testServer {
	t.Helper()
	srv, err := server.New(h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	hm := http.NewServeMux()
	hm.Handle("/rpc", srv)
	ts := httptest.NewServer(hm)
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
	})
	return &testServer{url: "ws" + strings.TrimPrefix(ts.URL, "http") + "/rpc", srv: srv}
}

// golden compares got with testdata/name.golden (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run go test -update if the change is right)\n--- got:\n%s\n--- want:\n%s", path, got, want)
	}
}

// oneLine checks that a failed command printed exactly one line on stderr
// and nothing on stdout, and returns the line.
func oneLine(t *testing.T, r result) string {
	t.Helper()
	if r.stdout != "" {
		t.Errorf("stdout = %q, want nothing", r.stdout)
	}
	if strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Errorf("stderr = %q, want one line", r.stderr)
	}
	return strings.TrimSuffix(r.stderr, "\n")
}

func TestTopLevelUsage(t *testing.T) {
	r := runCmd(t, "")
	if r.code != exitUsage || r.stdout != "" || !strings.Contains(r.stderr, "Commands:") {
		t.Errorf("no args: code %d, stdout %q, stderr %q; want 2 and the usage on stderr", r.code, r.stdout, r.stderr)
	}
	for _, arg := range []string{"help", "--help", "-h"} {
		r := runCmd(t, "", arg)
		if r.code != exitOK || r.stderr != "" {
			t.Errorf("%s: code %d, stderr %q; want 0 and nothing", arg, r.code, r.stderr)
		}
		golden(t, "usage", r.stdout)
		for _, c := range commands {
			if !strings.Contains(r.stdout, "\n  "+c.name+" ") {
				t.Errorf("the usage does not list %s", c.name)
			}
		}
	}
}

func TestUnknownCommand(t *testing.T) {
	r := runCmd(t, "", "frobnicate")
	if r.code != exitUsage {
		t.Errorf("code = %d, want 2", r.code)
	}
	if got, want := oneLine(t, r), `wsrpc: unknown command "frobnicate" (run 'wsrpc help')`; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
	r = runCmd(t, "", "help", "frobnicate")
	if r.code != exitUsage {
		t.Errorf("help frobnicate: code = %d, want 2", r.code)
	}
	oneLine(t, r)
}

func TestHelp(t *testing.T) {
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			for _, args := range [][]string{{c.name, "--help"}, {c.name, "-h"}, {"help", c.name}} {
				r := runCmd(t, "", args...)
				if r.code != exitOK || r.stderr != "" {
					t.Fatalf("%q: code %d, stderr %q; want 0 and nothing", args, r.code, r.stderr)
				}
				for _, want := range []string{"Usage: wsrpc " + c.name, "Examples:\n  wsrpc"} {
					if !strings.Contains(r.stdout, want) {
						t.Errorf("%q: the help lacks %q:\n%s", args, want, r.stdout)
					}
				}
				golden(t, "help-"+c.name, r.stdout)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	r := runCmd(t, "", "version")
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	if !regexp.MustCompile(`^wsrpc 0\.1\.0-dev( \(go[^)]*\))?\n$`).MatchString(r.stdout) {
		t.Errorf("version = %q", r.stdout)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		give []string
		want string // a part of the one line on stderr
	}{
		{"call without args", []string{"call"}, "want URL METHOD [PARAMS], got 0 argument(s)"},
		{"call without method", []string{"call", "ws://127.0.0.1:1/rpc"}, "want URL METHOD [PARAMS], got 1 argument(s)"},
		{"call malformed params", []string{"call", "ws://127.0.0.1:1/rpc", "add", "[1,2"}, "PARAMS is not valid JSON"},
		{"call extra arg", []string{"call", "ws://127.0.0.1:1/rpc", "add", "[1]", "[2]"}, `unexpected argument "[2]"`},
		{"call unknown flag", []string{"call", "--frob", "ws://127.0.0.1:1/rpc", "add"}, "flag provided but not defined: -frob"},
		{"call bad codec", []string{"call", "--codec", "xml", "ws://127.0.0.1:1/rpc", "add"}, `--codec must be one of auto, binary, json, not "xml"`},
		{"call json scalar params", []string{"call", "--codec", "json", "ws://127.0.0.1:1/rpc", "echo", "5"}, "JSON-RPC params must be an array or an object"},
		{"call bad scheme", []string{"call", "ftp://127.0.0.1:1/rpc", "add"}, "the scheme must be ws://"},
		{"call bad header", []string{"call", "-H", "nocolon", "ws://127.0.0.1:1/rpc", "add"}, "want 'Name: value'"},
		{"call bad timeout", []string{"call", "--timeout", "soon", "ws://127.0.0.1:1/rpc", "add"}, `invalid value "soon" for flag -timeout`},
		{"call missing answer file", []string{"call", "--answer", "testdata/nonexistent.json", "ws://127.0.0.1:1/rpc", "add"}, "--answer"},
		{"call malformed answer file", []string{"call", "--answer", "testdata/not-an-object.json", "ws://127.0.0.1:1/rpc", "add"}, "want a JSON object"},
		{"call window without stream", []string{"call", "--window", "8", "ws://127.0.0.1:1/rpc", "countdown"}, "--window needs --stream"},
		{"call zero window", []string{"call", "--stream", "--window", "0", "ws://127.0.0.1:1/rpc", "countdown"}, "--window must be between 1 and 65536, not 0"},
		{"call huge window", []string{"call", "--stream", "--window", "65537", "ws://127.0.0.1:1/rpc", "countdown"}, "--window must be between 1 and 65536, not 65537"},
		{"call bad window", []string{"call", "--stream", "--window", "many", "ws://127.0.0.1:1/rpc", "countdown"}, `invalid value "many" for flag -window`},
		{"notify without args", []string{"notify"}, "want URL METHOD [PARAMS]"},
		{"notify malformed params", []string{"notify", "ws://127.0.0.1:1/rpc", "m", "{"}, "PARAMS is not valid JSON"},
		{"connect without URL", []string{"connect"}, "want one URL, got 0 arguments"},
		{"connect two URLs", []string{"connect", "ws://a", "ws://b"}, "want one URL, got 2 arguments"},
		{"connect unknown flag", []string{"connect", "-x", "ws://a"}, "flag provided but not defined: -x"},
		{"bench without args", []string{"bench"}, "want URL METHOD [PARAMS]"},
		{"bench n and d", []string{"bench", "-n", "5", "-d", "1s", "ws://127.0.0.1:1/rpc", "echo"}, "-n and -d exclude each other"},
		{"bench zero conns", []string{"bench", "-c", "0", "ws://127.0.0.1:1/rpc", "echo"}, "-c must be at least 1"},
		{"bench payload and params", []string{"bench", "--payload-size", "10", "ws://127.0.0.1:1/rpc", "echo", "[1]"}, "exclude each other"},
		{"bench small payload", []string{"bench", "--payload-size", "2", "ws://127.0.0.1:1/rpc", "echo"}, "at least 4"},
		{"bench old concurrency", []string{"bench", "-c", "4", "--concurrency", "32", "ws://127.0.0.1:1/rpc", "echo"}, "--concurrency is gone: -c now counts the calls in flight in all (as in hey and ghz), and --connections the connections; '-c 4 --concurrency 32' is now '-c 128 --connections 4'"},
		{"bench more connections than workers", []string{"bench", "-c", "2", "--connections", "3", "ws://127.0.0.1:1/rpc", "echo"}, "--connections (3) must not exceed -c (2)"},
		{"bench zero connections", []string{"bench", "--connections", "0", "ws://127.0.0.1:1/rpc", "echo"}, "--connections must be at least 1"},
		{"bench zero rate", []string{"bench", "-r", "0", "ws://127.0.0.1:1/rpc", "echo"}, "-r must be a positive number of calls a second"},
		{"bench negative rate", []string{"bench", "--rate", "-5", "ws://127.0.0.1:1/rpc", "echo"}, "-r must be a positive number"},
		{"bench rate twice", []string{"bench", "-r", "5", "--rate", "6", "ws://127.0.0.1:1/rpc", "echo"}, "-r and --rate are the same flag"},
		{"call list with method", []string{"call", "--list", "ws://127.0.0.1:1/rpc", "add"}, "--list takes URL alone, got 2 argument(s)"},
		{"call list and stream", []string{"call", "--list", "--stream", "ws://127.0.0.1:1/rpc"}, "--list and --stream exclude each other"},
		{"connect jsonrpc binary", []string{"connect", "--jsonrpc", "--binary", "ws://a"}, "--jsonrpc sends text: it excludes --binary and --base64"},
		{"help two commands", []string{"help", "call", "bench"}, "want at most one COMMAND, got 2"},
		{"help unknown flag", []string{"help", "--frob"}, "flag provided but not defined: -frob"},
		{"serve extra arg", []string{"serve", "now"}, `unexpected argument "now"`},
		{"serve cert without key", []string{"serve", "--tls-cert", "c.pem"}, "--tls-cert and --tls-key go together"},
		{"serve bad log format", []string{"serve", "--log-format", "xml"}, "--log-format must be one of text, json"},
		{"serve bad log level", []string{"serve", "--log-level", "loud"}, "--log-level must be debug, info, warn or error"},
		{"serve bad path", []string{"serve", "--path", "rpc"}, "--path must start with /"},
		{"serve static at root", []string{"serve", "--static", ".", "--path", "/"}, "--path must be another path"},
		{"serve allowed host with port", []string{"serve", "--allowed-hosts", "app.example,rpc.example:443"}, `allowed host "rpc.example:443" has a port`},
		{"serve bad idle timeout", []string{"serve", "--idle-timeout", "0s"}, "--idle-timeout must be positive"},
		{"demo extra arg", []string{"demo", "now"}, `unexpected argument "now"`},
		{"version extra arg", []string{"version", "now"}, `unexpected argument "now"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCmd(t, "", tt.give...)
			if r.code != exitUsage {
				t.Errorf("code = %d, want 2 (stderr %q)", r.code, r.stderr)
			}
			line := oneLine(t, r)
			if !strings.Contains(line, tt.want) {
				t.Errorf("stderr = %q, want it to contain %q", line, tt.want)
			}
			prefix := "wsrpc " + tt.give[0] + ": "
			if !strings.HasPrefix(line, prefix) || !strings.HasSuffix(line, "(run 'wsrpc "+tt.give[0]+" --help')") {
				t.Errorf("stderr = %q, want %q ... (run 'wsrpc %s --help')", line, prefix, tt.give[0])
			}
		})
	}
}

func TestParseArgsInterspersed(t *testing.T) {
	tests := []struct {
		give    []string
		wantPos []string
		wantN   int
	}{
		{[]string{"a", "b"}, []string{"a", "b"}, 1},
		{[]string{"-n", "3", "a", "b"}, []string{"a", "b"}, 3},
		{[]string{"a", "-n", "3", "b"}, []string{"a", "b"}, 3},
		{[]string{"a", "b", "-n", "3"}, []string{"a", "b"}, 3},
		{[]string{"a", "--", "-n", "3"}, []string{"a", "-n", "3"}, 1},
		{[]string{"a", "-", "-n", "3"}, []string{"a", "-", "3"}[:2], 3},
	}
	for _, tt := range tests {
		fs := newFlagSet("test")
		n := fs.Int("n", 1, "")
		e := &env{stdout: io.Discard, stderr: io.Discard}
		pos, err := parseArgs(fs, tt.give, e, &help{})
		if err != nil {
			t.Errorf("%q: %v", tt.give, err)
			continue
		}
		if strings.Join(pos, " ") != strings.Join(tt.wantPos, " ") || *n != tt.wantN {
			t.Errorf("%q: positional %q, -n %d; want %q, %d", tt.give, pos, *n, tt.wantPos, tt.wantN)
		}
	}
}
