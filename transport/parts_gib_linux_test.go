package transport_test

import (
	"context"
	"fmt"
	"hash/crc32"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/proctest"
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
	size := proctest.Size(t, "WSRPC_PARTS_BYTES", 1<<30)
	dirs := []string{"client to server", "server to client"}
	if raceEnabled {
		dirs = dirs[1:]
	}
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			serverSends := dir == "server to client"
			server := startChild(t, "server", size, serverSends, "")
			url := server.Line(t, "URL")
			client := startChild(t, "client", size, !serverSends, url)
			sent, got := client, server
			if serverSends {
				sent, got = server, client
			}
			s, r := sent.Result(t), got.Result(t)
			if s["bytes"] != strconv.FormatInt(size, 10) || r["bytes"] != s["bytes"] || r["crc"] != s["crc"] {
				t.Fatalf("sent %s bytes (crc %s), received %s (crc %s)", s["bytes"], s["crc"], r["bytes"], r["crc"])
			}
			proctest.Bounded(t, "sender", sent, s["heap"], 64<<20, 256<<20)
			proctest.Bounded(t, "receiver", got, r["heap"], 64<<20, 256<<20)
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

func startChild(t *testing.T, role string, size int64, sends bool, url string) *proctest.Child {
	t.Helper()
	return proctest.Start(t, "TestPartsChild", partsChild+"="+role, "WSRPC_PARTS_BYTES="+strconv.FormatInt(size, 10),
		"WSRPC_PARTS_SENDS="+strconv.FormatBool(sends), "WSRPC_PARTS_URL="+url)
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
	var heap proctest.HeapPeak
	run := func(c *transport.Conn) {
		if sends {
			r := proctest.NewGenerator(size, &heap)
			if err := c.SendReader(context.Background(), transport.Binary, r); err != nil {
				t.Errorf("SendReader: %v", err)
			}
			<-c.Done() // the receiver closes
			fmt.Printf("RESULT bytes=%d crc=%d heap=%d\n", size-r.Left(), r.Sum32(), heap.Peak())
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
				heap.Sample()
			}
			if !m.Partial {
				break
			}
		}
		took := time.Since(start)
		heap.Sample()
		if err := c.Close(transport.StatusNormalClosure, "got it"); err != nil {
			t.Errorf("Close: %v", err)
		}
		fmt.Printf("RESULT bytes=%d crc=%d parts=%d ns=%d heap=%d\n", n, crc.Sum32(), parts, took.Nanoseconds(), heap.Peak())
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
