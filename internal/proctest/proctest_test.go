package proctest_test

import (
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strconv"
	"testing"

	"go.uber.org/goleak"

	"github.com/wsrpc/wsrpc/internal/proctest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A generator's bytes are what its CRC says, any read size gives the same
// stream, and blocks are stamped so that two blocks differ.
func TestGenerator(t *testing.T) {
	const size = 3*proctest.BlockSize + 1234
	whole, err := io.ReadAll(proctest.NewGenerator(size, nil))
	if err != nil || len(whole) != size {
		t.Fatalf("read %d bytes, %v", len(whole), err)
	}
	for _, chunk := range []int{1, 7, 4096, proctest.BlockSize + 3} {
		g := proctest.NewGenerator(size, &proctest.HeapPeak{})
		var got []byte
		buf := make([]byte, chunk)
		for {
			n, err := g.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
		}
		if string(got) != string(whole) {
			t.Fatalf("reads of %d give other bytes", chunk)
		}
		if g.Sum32() != crc32.ChecksumIEEE(whole) || g.Left() != 0 {
			t.Fatalf("reads of %d: crc %x, want %x; left %d", chunk, g.Sum32(), crc32.ChecksumIEEE(whole), g.Left())
		}
	}
	if string(whole[:proctest.BlockSize]) == string(whole[proctest.BlockSize:2*proctest.BlockSize]) {
		t.Fatal("two blocks are the same")
	}
}

// A child reports lines and a result, and its peak RSS is known once it
// exited; a child that fails fails Result.
func TestChild(t *testing.T) {
	if os.Getenv("PROCTEST_CHILD") != "" {
		t.Skip("in the helper")
	}
	c := proctest.Start(t, "TestChildHelper", "PROCTEST_CHILD=1")
	if got := c.Line(t, "HELLO"); got != "world" {
		t.Fatalf("HELLO line %q", got)
	}
	res := c.Result(t)
	if res["n"] != "42" {
		t.Fatalf("result %v", res)
	}
	if rss := c.MaxRSS(); rss < 1<<20 {
		t.Fatalf("peak RSS %d bytes: not measured", rss)
	}
}

func TestChildHelper(t *testing.T) {
	if os.Getenv("PROCTEST_CHILD") == "" {
		t.Skip("helper process of TestChild")
	}
	var h proctest.HeapPeak
	h.Sample()
	if h.Peak() <= 0 {
		t.Fatal("no heap sampled")
	}
	fmt.Println("HELLO world")
	fmt.Println("RESULT n=" + strconv.Itoa(42))
}
