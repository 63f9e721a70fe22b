package transport_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/transport"
)

// TestMessageInPartsGiB sends a 1 GiB message from a reader (SendReader) and
// receives it in parts (PartsAbove), each end in a process of its own, and
// checks that neither end's memory grows with the message: the peak heap
// that each end samples (runtime/metrics) and the peak RSS of each process
// stay far below the payload. It logs the figures that docs/BENCHMARKS.md
// records:
//
//	go test -run TestMessageInPartsGiB -v ./transport
//
// Under -race, which makes masking 10x slower, only the server sends (a
// server's frames are not masked) and the figures are not meaningful.
// WSRPC_PARTS_BYTES sets another size.
func TestMessageInPartsGiB(t *testing.T) {
	if os.Getenv(partsChild) != "" {
		t.Skip("in a helper process")
	}
	if testing.Short() {
		t.Skip("sends 1 GiB")
	}
	size := int64(1 << 30)
	if s := os.Getenv("WSRPC_PARTS_BYTES"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		size = n
	}
	dirs := []string{"client to server", "server to client"}
	if raceEnabled {
		dirs = dirs[1:]
	}
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			serverSends := dir == "server to client"
			server := startChild(t, "server", size, serverSends, "")
			url := server.line(t, "URL")
			client := startChild(t, "client", size, !serverSends, url)
			sent, got := client, server
			if serverSends {
				sent, got = server, client
			}
			s, r := sent.result(t), got.result(t)
			if s["bytes"] != strconv.FormatInt(size, 10) || r["bytes"] != s["bytes"] || r["crc"] != s["crc"] {
				t.Fatalf("sent %s bytes (crc %s), received %s (crc %s)", s["bytes"], s["crc"], r["bytes"], r["crc"])
			}
			const heapBound, rssBound = 64 << 20, 256 << 20
			for _, e := range []struct {
				name string
				c    *child
				res  map[string]string
			}{{"sender", sent, s}, {"receiver", got, r}} {
				heap, _ := strconv.ParseInt(e.res["heap"], 10, 64)
				rss := e.c.maxRSS()
				t.Logf("%s: peak heap %.1f MiB, peak RSS %.1f MiB", e.name, float64(heap)/(1<<20), float64(rss)/(1<<20))
				if heap > heapBound {
					t.Errorf("%s: peak heap %d bytes, more than %d for a %d-byte message", e.name, heap, heapBound, size)
				}
				if rss > rssBound {
					t.Errorf("%s: peak RSS %d bytes, more than %d for a %d-byte message", e.name, rss, rssBound, size)
				}
			}
			ns, _ := strconv.ParseInt(r["ns"], 10, 64)
			t.Logf("%d bytes in %s parts of %d: %.0f MB/s (receiver's clock, first part to last)",
				size, r["parts"], partsOf, float64(size)/(float64(ns)/1e9)/1e6)
		})
	}
}

const (
	partsChild = "WSRPC_PARTS_CHILD" // "server" or "client": the helper's role
	partsOf    = 64 << 10            // PartsAbove on the receiving end
)

// child is one end of TestMessageInPartsGiB, running TestPartsChild.
type child struct {
	role string
	cmd  *exec.Cmd
	out  *bufio.Scanner
}

func startChild(t *testing.T, role string, size int64, sends bool, url string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPartsChild$", "-test.v")
	cmd.Env = append(os.Environ(), partsChild+"="+role, "WSRPC_PARTS_BYTES="+strconv.FormatInt(size, 10),
		"WSRPC_PARTS_SENDS="+strconv.FormatBool(sends), "WSRPC_PARTS_URL="+url)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{role: role, cmd: cmd, out: bufio.NewScanner(out)}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return c
}

// line returns the rest of the child's next output line that starts with
// key and a space, passing over the others.
func (c *child) line(t *testing.T, key string) string {
	t.Helper()
	for c.out.Scan() {
		if rest, ok := strings.CutPrefix(c.out.Text(), key+" "); ok {
			return rest
		}
	}
	t.Fatalf("the %s helper ended without a %s line: %v", c.role, key, c.cmd.Wait())
	return ""
}

// result reads the child's RESULT line (key=value pairs) and waits for it
// to exit.
func (c *child) result(t *testing.T) map[string]string {
	t.Helper()
	res := map[string]string{}
	for f := range strings.FieldsSeq(c.line(t, "RESULT")) {
		k, v, _ := strings.Cut(f, "=")
		res[k] = v
	}
	for c.out.Scan() { // the test framework's last lines
	}
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	return res
}

// maxRSS is the exited child's peak resident set, in bytes.
func (c *child) maxRSS() int64 {
	ru, ok := c.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0
	}
	return ru.Maxrss << 10 // KiB on Linux
}

// TestPartsChild is one end of TestMessageInPartsGiB, in a process of its
// own: the server prints its URL, and the end that receives prints the
// bytes, CRC, parts and time; the one that sends, the bytes and CRC; both,
// their peak heap.
func TestPartsChild(t *testing.T) {
	role := os.Getenv(partsChild)
	if role == "" {
		t.Skip("helper process of TestMessageInPartsGiB")
	}
	size, _ := strconv.ParseInt(os.Getenv("WSRPC_PARTS_BYTES"), 10, 64)
	sends := os.Getenv("WSRPC_PARTS_SENDS") == "true"
	o := transport.ConnOptions{HeartbeatInterval: -1, MaxPartsSize: -1}
	if !sends {
		o.PartsAbove = partsOf
	}
	var heap heapPeak
	run := func(c *transport.Conn) {
		if sends {
			r := &generator{left: size, crc: crc32.NewIEEE(), heap: &heap}
			if err := c.SendReader(context.Background(), transport.Binary, r); err != nil {
				t.Errorf("SendReader: %v", err)
			}
			<-c.Done() // the receiver closes
			fmt.Printf("RESULT bytes=%d crc=%d heap=%d\n", size-r.left, r.crc.Sum32(), heap.peak)
			return
		}
		crc := crc32.NewIEEE()
		var n, parts int64
		var start time.Time
		for m := range c.Recv() {
			if parts == 0 {
				start = time.Now()
			}
			parts++
			n += int64(len(m.Data))
			crc.Write(m.Data)
			if m.Recycle != nil {
				m.Recycle.Recycle(m.Data)
			}
			if parts%64 == 0 {
				heap.sample()
			}
			if !m.Partial {
				break
			}
		}
		took := time.Since(start)
		heap.sample()
		if err := c.Close(transport.StatusNormalClosure, "got it"); err != nil {
			t.Errorf("Close: %v", err)
		}
		fmt.Printf("RESULT bytes=%d crc=%d parts=%d ns=%d heap=%d\n", n, crc.Sum32(), parts, took.Nanoseconds(), heap.peak)
	}
	if role == "client" {
		c, err := transport.Dial(context.Background(), os.Getenv("WSRPC_PARTS_URL"), &transport.DialOptions{ConnOptions: o})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		run(c)
		return
	}
	done := make(chan struct{})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := transport.Accept(w, r, &transport.AcceptOptions{ConnOptions: o})
		if err != nil {
			t.Error(err)
			return
		}
		defer close(done)
		defer c.CloseNow()
		run(c)
	}))
	defer s.Close()
	fmt.Printf("URL ws%s\n", strings.TrimPrefix(s.URL, "http"))
	<-done
}

// heapPeak tracks the largest heap in use seen.
type heapPeak struct {
	sample_ [1]metrics.Sample
	peak    int64
}

func (h *heapPeak) sample() {
	h.sample_[0].Name = "/memory/classes/heap/objects:bytes"
	metrics.Read(h.sample_[:])
	if v := int64(h.sample_[0].Value.Uint64()); v > h.peak {
		h.peak = v
	}
}

// generator reads as left pseudo-random bytes, keeping their CRC: blocks of
// one random 64 KiB pattern, each stamped with its number, so that a block
// lost, repeated or out of place changes the CRC.
type generator struct {
	left  int64
	block int64
	off   int
	crc   interface {
		io.Writer
		Sum32() uint32
	}
	heap *heapPeak
}

var genPattern = func() []byte {
	b := make([]byte, 64<<10)
	x := uint64(0x9E3779B97F4A7C15)
	for i := 0; i < len(b); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		binary.LittleEndian.PutUint64(b[i:], x)
	}
	return b
}()

func (g *generator) Read(p []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && g.left > 0 {
		if g.off == 0 {
			binary.LittleEndian.PutUint64(genPattern, uint64(g.block))
			g.block++
			if g.block%256 == 0 {
				g.heap.sample()
			}
		}
		k := int(min(int64(min(len(p)-n, len(genPattern)-g.off)), g.left))
		copy(p[n:n+k], genPattern[g.off:])
		g.off = (g.off + k) % len(genPattern)
		g.left -= int64(k)
		n += k
	}
	g.crc.Write(p[:n])
	return n, nil
}
