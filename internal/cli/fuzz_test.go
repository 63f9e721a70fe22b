package cli

import (
	"bufio"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// FuzzPrintMethods: whatever a server answers to rpc.discover, call --list
// prints an error or a table, without panicking, one line a method, each
// column bounded.
func FuzzPrintMethods(f *testing.F) {
	f.Add([]byte(discoverDoc))
	f.Add([]byte(`{"methods":[{"name":"a\nb","params":[{"name":"params","schema":{"type":"array","items":{"type":"array","items":{"type":"array","items":{"type":"array","items":{}}}}}}]}]}`))
	f.Add([]byte(`{"methods":[{"name":"x","result":{"schema":{"anyOf":[{"$ref":"#/"},{"enum":[]},{"type":[1]}]}}}]}`))
	f.Add([]byte(`{"methods":[{"params":[{"schema":{"properties":{"":{"oneOf":[true,false]}}}}]}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		var out strings.Builder
		if err := printMethods(&out, doc); err != nil {
			return
		}
		for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
			if !utf8.ValidString(line) && utf8.Valid(doc) {
				t.Fatalf("invalid UTF-8 from valid input: %q", line)
			}
		}
	})
}

// FuzzSchemaType: a description of any JSON is bounded by the depth limit
// and never panics.
func FuzzSchemaType(f *testing.F) {
	for _, s := range []string{`{"type":"object","properties":{"a":{"type":"array","items":{"$ref":"#/x"}}}}`, `{"prefixItems":[{},{}]}`, `[]`, `{"type":["a",null]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		s := schemaType(raw, 0)
		if s == "" && len(raw) > 0 {
			t.Fatalf("schemaType(%q) is empty", raw)
		}
	})
}

// FuzzLineEditor: any keys, in any reads, keep the editor's state
// consistent: the cursor within the line, the pending bytes short.
func FuzzLineEditor(f *testing.F) {
	f.Add([]byte("hello\x1b[D\x1b[Dxy\r\x1b[A\x7f\x15\x17\x0b\x01\x05"), uint8(3))
	f.Add([]byte("\xc3\xa9\x1b[3~\x1bO\x04"), uint8(1))
	f.Fuzz(func(t *testing.T, keys []byte, cut uint8) {
		l := newLineEditor(io.Discard, "> ", func() int { return 10 })
		for len(keys) > 0 {
			n := min(int(cut)%8+1, len(keys))
			if _, eof := l.Feed(keys[:n]); eof {
				return
			}
			keys = keys[n:]
			if l.pos < 0 || l.pos > len(l.buf) || len(l.pending) > 32 || len(l.history) > maxHistory {
				t.Fatalf("pos %d of %d, %d pending, %d in history", l.pos, len(l.buf), len(l.pending), len(l.history))
			}
		}
	})
}

// FuzzProxyAnswer: whatever a proxy answers to CONNECT, the dialer returns
// a tunnel or an error, without panicking.
func FuzzProxyAnswer(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 3\r\n\r\nno!"))
	f.Add([]byte("HTTP/1.0 200\r\n\r\ntunnel bytes"))
	f.Add([]byte("garbage\r\n\r\n"))
	f.Fuzz(func(t *testing.T, answer []byte) {
		client, server := net.Pipe()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer server.Close()
			br := bufio.NewReader(server)
			for { // the request, up to its blank line
				line, err := br.ReadString('\n')
				if err != nil || line == "\r\n" {
					break
				}
			}
			server.Write(answer)
		}()
		d := &connectDialer{proxy: mustParseProxy("http://proxy.test:3128")}
		c, err := d.connect(client, "example.test:443")
		if err == nil {
			io.Copy(io.Discard, c)
		}
		client.Close()
		wg.Wait()
	})
}
