// Package proctest runs one end of a test in a process of its own (the test
// binary again, with one test selected) and measures what a process's
// memory does: its peak resident set and peak heap. Tests that move more
// data than memory should hold (a 1 GiB message, a 1 GiB stream) use it to
// show that neither end grows with the payload.
package proctest

import (
	"bufio"
	"encoding/binary"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Child is a helper process: the test binary run again with only one test
// selected, telling the parent what it did in lines "KEY rest" on stdout.
type Child struct {
	name string
	cmd  *exec.Cmd
	out  *bufio.Scanner
}

// Start runs the test binary's test named test (an exact name) as a child
// with env added to this process's environment. The child is killed, if it
// still runs, when t ends.
func Start(t testing.TB, test string, env ...string) *Child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.v")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &Child{name: test, cmd: cmd, out: bufio.NewScanner(out)}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return c
}

// Line returns the rest of the child's next output line that starts with
// key and a space, passing over the others.
func (c *Child) Line(t testing.TB, key string) string {
	t.Helper()
	var passed []string // the last lines passed over, to show if it fails
	for c.out.Scan() {
		if rest, ok := strings.CutPrefix(c.out.Text(), key+" "); ok {
			return rest
		}
		if passed = append(passed, c.out.Text()); len(passed) > 40 {
			passed = passed[1:]
		}
	}
	t.Fatalf("the helper %s ended without a %s line: %v; its last lines:\n%s", c.name, key, c.cmd.Wait(), strings.Join(passed, "\n"))
	return ""
}

// Result reads the child's RESULT line (space-separated key=value pairs)
// and waits for it to exit, failing t if it did not exit cleanly.
func (c *Child) Result(t testing.TB) map[string]string {
	t.Helper()
	res := map[string]string{}
	for f := range strings.FieldsSeq(c.Line(t, "RESULT")) {
		k, v, _ := strings.Cut(f, "=")
		res[k] = v
	}
	for c.out.Scan() { // the test framework's last lines
	}
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("helper %s: %v", c.name, err)
	}
	return res
}

// MaxRSS is the exited child's peak resident set, in bytes (0 before it
// exited).
func (c *Child) MaxRSS() int64 {
	if c.cmd.ProcessState == nil {
		return 0
	}
	ru, ok := c.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0
	}
	return ru.Maxrss << 10 // KiB on Linux
}

// HeapPeak tracks the largest heap in use (live and not yet swept objects)
// seen by Sample. It is not safe for concurrent use.
type HeapPeak struct {
	s    [1]metrics.Sample
	peak int64
}

// Sample reads the heap in use now.
func (h *HeapPeak) Sample() {
	h.s[0].Name = "/memory/classes/heap/objects:bytes"
	metrics.Read(h.s[:])
	if v := int64(h.s[0].Value.Uint64()); v > h.peak {
		h.peak = v
	}
}

// Peak is the largest heap sampled, in bytes.
func (h *HeapPeak) Peak() int64 { return h.peak }

// Generator reads as size pseudo-random bytes, keeping their CRC-32 (IEEE):
// blocks of one random 64 KiB pattern, each stamped with its number, so
// that a block lost, repeated or out of place changes the CRC. It samples
// heap (when not nil) every 256 blocks.
type Generator struct {
	left  int64
	block int64
	off   int
	crc   hash.Hash32
	heap  *HeapPeak
	pat   []byte
}

// NewGenerator returns a Generator of size bytes.
func NewGenerator(size int64, heap *HeapPeak) *Generator {
	return &Generator{left: size, crc: crc32.NewIEEE(), heap: heap, pat: pattern()}
}

// BlockSize is the size of the blocks a Generator stamps.
const BlockSize = 64 << 10

func pattern() []byte {
	b := make([]byte, BlockSize)
	x := uint64(0x9E3779B97F4A7C15)
	for i := 0; i < len(b); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		binary.LittleEndian.PutUint64(b[i:], x)
	}
	return b
}

// Read fills p with the next bytes, io.EOF after size.
func (g *Generator) Read(p []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && g.left > 0 {
		if g.off == 0 {
			binary.LittleEndian.PutUint64(g.pat, uint64(g.block))
			g.block++
			if g.heap != nil && g.block%256 == 0 {
				g.heap.Sample()
			}
		}
		k := int(min(int64(min(len(p)-n, len(g.pat)-g.off)), g.left))
		copy(p[n:n+k], g.pat[g.off:])
		g.off = (g.off + k) % len(g.pat)
		g.left -= int64(k)
		n += k
	}
	g.crc.Write(p[:n])
	return n, nil
}

// Left is how many bytes are still to read.
func (g *Generator) Left() int64 { return g.left }

// Sum32 is the CRC-32 of the bytes read so far.
func (g *Generator) Sum32() uint32 { return g.crc.Sum32() }

// Size is the byte count the environment variable env gives (a decimal
// integer), or def when it is unset; t fails on anything else.
func Size(t testing.TB, env string, def int64) int64 {
	t.Helper()
	s := os.Getenv(env)
	if s == "" {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a byte count", env, s)
	}
	return n
}

// Bounded logs the peak heap (as the child sampled and reported it) and
// the peak RSS of the exited child c, and fails t when either is above its
// bound, or the heap was not measured: the memory of an end that must not
// grow with what it moved.
func Bounded(t testing.TB, name string, c *Child, heap string, heapBound, rssBound int64) {
	t.Helper()
	h, _ := strconv.ParseInt(heap, 10, 64)
	rss := c.MaxRSS()
	t.Logf("%s: peak heap %.1f MiB, peak RSS %.1f MiB", name, float64(h)/(1<<20), float64(rss)/(1<<20))
	if h <= 0 || h > heapBound {
		t.Errorf("%s: peak heap %d bytes, want (0, %d]", name, h, heapBound)
	}
	if rss > rssBound {
		t.Errorf("%s: peak RSS %d bytes, more than %d", name, rss, rssBound)
	}
}
