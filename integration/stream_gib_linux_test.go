package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/internal/proctest"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
)

// TestStreamGiB is a file transfer through the API users call: a handler
// (server.New, handler.Mux) streams a 1 GiB file, read from an io.Reader
// in 64 KiB results, to client.Dial's Client.Stream, which checks its CRC
// against the one the call ends with. Each end runs in a process of its
// own, and neither end's memory grows with the payload: the peak heap each
// samples and each process's peak RSS stay far below it, bounded by the
// stream's window. It logs the figures docs/BENCHMARKS.md records:
//
//	go test -count 1 -run TestStreamGiB -v ./integration
//
// Under -race (the README's test command) it moves 256 MiB, and the figures
// are not meaningful. WSRPC_STREAM_BYTES sets another size.
func TestStreamGiB(t *testing.T) {
	if os.Getenv(gibChild) != "" {
		t.Skip("in a helper process")
	}
	if testing.Short() {
		t.Skip("streams 1 GiB")
	}
	def := int64(1 << 30)
	if raceEnabled {
		def = 256 << 20
	}
	size := proctest.Size(t, "WSRPC_STREAM_BYTES", def)
	srv := proctest.Start(t, "TestStreamGiBChild", gibChild+"=server")
	url := srv.Line(t, "URL")
	cli := proctest.Start(t, "TestStreamGiBChild", gibChild+"=client", "WSRPC_STREAM_URL="+url, "WSRPC_STREAM_BYTES="+strconv.FormatInt(size, 10))
	c, s := cli.Result(t), srv.Result(t)
	if c["bytes"] != strconv.FormatInt(size, 10) || c["crc"] != c["sent_crc"] || s["bytes"] != c["bytes"] {
		t.Fatalf("the server sent %s bytes, the client received %s with CRC %s against %s sent", s["bytes"], c["bytes"], c["crc"], c["sent_crc"])
	}
	// The window (64 results of 64 KiB to begin with) bounds the memory of
	// either end, far below the payload.
	proctest.Bounded(t, "server (sends)", srv, s["heap"], 64<<20, 256<<20)
	proctest.Bounded(t, "client (receives)", cli, c["heap"], 64<<20, 256<<20)
	ns, _ := strconv.ParseInt(c["ns"], 10, 64)
	t.Logf("%d bytes in %s results: %.0f MB/s (the client's clock, call to end)", size, c["results"], float64(size)/(float64(ns)/1e9)/1e6)
}

const gibChild = "WSRPC_STREAM_CHILD" // "server" or "client"

// fileRead is the transfer's handler: it sends {"size": n} bytes of the
// generated file as results of up to 64 KiB, each a Raw (bytes as they are
// on wsrpc.v1), and ends with the bytes sent and their CRC.
func fileRead(heap *proctest.HeapPeak, sent *int64) rpc.HandlerFunc {
	return func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		var in struct{ Size int64 }
		if err := json.Unmarshal(req.Params, &in); err != nil || in.Size < 0 {
			return nil, rpc.Errorf(rpc.CodeInvalidParams, "want {\"size\": bytes}")
		}
		w := req.Stream()
		if w == nil {
			return nil, rpc.Errorf(rpc.CodeInvalidRequest, "file.read: call it as a stream")
		}
		g := proctest.NewGenerator(in.Size, heap)
		buf := make([]byte, 64<<10)
		for {
			n, err := io.ReadFull(g, buf)
			if n > 0 {
				// Send encodes the result before it returns: buf is free
				// again for the next read.
				if err := w.Send(ctx, rpc.Raw(buf[:n])); err != nil {
					return nil, err
				}
				*sent += int64(n)
			}
			if err != nil {
				break
			}
		}
		return json.Marshal(map[string]any{"bytes": *sent, "crc": g.Sum32()})
	}
}

// TestStreamGiBChild is one end of TestStreamGiB in a process of its own.
func TestStreamGiBChild(t *testing.T) {
	role := os.Getenv(gibChild)
	if role == "" {
		t.Skip("helper process of TestStreamGiB")
	}
	var heap proctest.HeapPeak
	if role == "server" {
		var sent int64
		mux := handler.NewMux()
		mux.Handle("file.read", fileRead(&heap, &sent))
		gone := make(chan struct{})
		srv, err := server.New(mux, server.WithOnDisconnect(func(*rpc.Peer, error) { close(gone) }))
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv)
		defer hs.Close()
		fmt.Printf("URL ws%s\n", strings.TrimPrefix(hs.URL, "http"))
		select {
		case <-gone: // the one client is done
		case <-time.After(5 * time.Minute):
			t.Fatal("no client came and went")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		heap.Sample()
		fmt.Printf("RESULT bytes=%d heap=%d\n", sent, heap.Peak())
		return
	}
	size, _ := strconv.ParseInt(os.Getenv("WSRPC_STREAM_BYTES"), 10, 64)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := client.Dial(ctx, os.Getenv("WSRPC_STREAM_URL"), rpc.WithSubprotocols(rpc.SubprotocolBinary))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	s, err := c.Stream(ctx, "file.read", map[string]int64{"size": size})
	if err != nil {
		t.Fatal(err)
	}
	crc := crc32.NewIEEE()
	var n, results int64
	for {
		it, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", n, err)
		}
		crc.Write(it)
		n += int64(len(it))
		if results++; results%64 == 0 {
			heap.Sample()
		}
	}
	took := time.Since(start)
	var end struct {
		Bytes int64
		CRC   uint32
	}
	if err := s.Result(&end); err != nil {
		t.Fatal(err)
	}
	heap.Sample()
	fmt.Printf("RESULT bytes=%d crc=%d sent_crc=%d results=%d ns=%d heap=%d\n", n, crc.Sum32(), end.CRC, results, took.Nanoseconds(), heap.Peak())
}
