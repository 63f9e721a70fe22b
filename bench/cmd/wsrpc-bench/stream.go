package main

import (
	"context"
	"fmt"
	"io"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wsrpc/wsrpc/rpc"
)

// -stream measures RPC streams (issue 16): results/s received by the
// caller of one long stream (or several at once on one connection) whose
// handler sends the same payload as fast as flow control lets it, through
// the API users call: client.Dial + Client.Stream against a handler.Stream
// handler on server.New, beside gRPC-go server streaming on the same gRPC
// server as the unary cells. The cells reuse the unary machinery: an impl
// per system, startCell, measurePhases.
var (
	streamBinary = wsrpcImpl("wsrpc-binary", rpc.SubprotocolBinary, true, streamHandler)
	// streamBinaryValue reads the same stream with Stream.RecvValue into
	// one reused rpc.Raw (a result's bytes copied into it) rather than
	// Stream.Recv, which hands out a result of its own each time.
	streamBinaryValue = impl{name: "wsrpc-binary-value", listen: func(ctx context.Context, size int) (endpoint, error) {
		e, err := streamBinary.listen(ctx, size)
		if err == nil {
			e.(*wsrpcServer).recvValue = true
		}
		return e, err
	}}
	// grpcOwn reads gRPC's stream into a fresh slice per result, as the
	// Recv method of protoc-generated code does (a new message each time):
	// the reference for Stream.Recv, which hands out a result of its own.
	// The grpc row reuses one slice, the reference for RecvValue.
	grpcOwn = impl{name: "grpc-own", listen: func(ctx context.Context, size int) (endpoint, error) {
		e, err := listenGRPC(ctx, size)
		if err == nil {
			e.(*grpcServer).own = true
		}
		return e, err
	}}
	streamJSON    = wsrpcImpl("wsrpc-json", rpc.SubprotocolJSON, true, streamHandler)
	streamSystems = []impl{streamBinary, streamBinaryValue, streamJSON, grpcEcho, grpcOwn, rawPacked}
)

// streamTarget is issue 16's target: wsrpc-binary-value's results/s ≥ 2×
// gRPC's, both reading into a reused buffer.
const streamTarget = 2.0

// A streamOpener is a client that opens the cell's stream: recv receives
// its next result, end closes it (cancelling it on the server).
type streamOpener interface {
	openStream(ctx context.Context, window int) (recv func() error, end func(), err error)
}

type streamConfig struct {
	d, warm time.Duration
	sizes   []int
	streams []int // concurrent streams on the one connection, a cell each
	window  int   // wsrpc's window (0: rpc.DefaultStreamWindow)
	systems []impl
	profile string
	json    bool
}

// parseStreamConfig checks the -stream flags.
func parseStreamConfig(sizes, streams, systems string, window int) (streamConfig, error) {
	var cfg streamConfig
	var err error
	if cfg.sizes, err = parseInts(sizes, 8); err != nil {
		return cfg, fmt.Errorf("-sizes: %w", err)
	}
	if cfg.streams, err = parseInts(streams, 1); err != nil {
		return cfg, fmt.Errorf("-streams: %w", err)
	}
	if cfg.systems, err = pick(streamSystems, systems, func(im impl) string { return im.name }); err != nil {
		return cfg, fmt.Errorf("-stream-systems: %w", err)
	}
	if window < 0 || window > rpc.MaxStreamWindow {
		return cfg, fmt.Errorf("-stream-window: 0 (the default, %d) to %d", rpc.DefaultStreamWindow, rpc.MaxStreamWindow)
	}
	cfg.window = window
	return cfg, nil
}

// streamResult is what one cell measured.
type streamResult struct {
	System          string        `json:"system"`
	Size            int           `json:"size"`
	Streams         int           `json:"streams"`
	Window          int           `json:"window,omitempty"` // wsrpc's credit window; gRPC has HTTP/2's
	Results         int64         `json:"results"`
	Elapsed         time.Duration `json:"elapsed_ns"`
	PerSec          float64       `json:"results_per_s"`
	MBPerSec        float64       `json:"payload_mb_per_s"`
	AllocsPerResult float64       `json:"allocs_per_result"`
	BytesPerResult  float64       `json:"bytes_per_result"`
	CPUPerResult    float64       `json:"cpu_ns_per_result"` // this process (both ends)
	Cores           float64       `json:"cores"`
	Other           float64       `json:"other_cores"`       // the machine's busy cores less this process's
	ReadsPerResult  float64       `json:"reads_per_result"`  // read system calls, both ends
	WritesPerResult float64       `json:"writes_per_result"` // write system calls, both ends
	VsGRPC          float64       `json:"vs_grpc,omitempty"`
	Ref             string        `json:"vs,omitempty"` // the gRPC row VsGRPC divides by
}

// runStream is the -stream mode.
func runStream(ctx context.Context, cfg streamConfig, stdout, stderr io.Writer) int {
	return profiled(cfg.profile, stderr, func() int {
		rows, err := measureStreams(ctx, cfg, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "wsrpc-bench: -stream: %v\n", err)
			return 1
		}
		rep := newStreamReport(cfg, rows)
		return printReport(stdout, stderr, cfg.json, rep, rep.writeTable)
	})
}

// measureStreams runs every cell of cfg, one after another, reporting
// progress. They are not interleaved as -rounds interleaves the call
// cells: a paused gRPC stream goes on filling its windows (about half a
// second of CPU at 64 B with 16 streams), and its BDP estimation grows
// them meanwhile, so that gRPC resumed would be another system than gRPC
// left running (2.7M results/s there against 1.2M, in one trial). Each cell runs under pprof labels system, size and streams
// (its server's goroutines inherit them), so that one profile of the run
// can be split: go tool pprof -tagfocus system=wsrpc-binary.
func measureStreams(ctx context.Context, cfg streamConfig, progress io.Writer) ([]streamResult, error) {
	var rows []streamResult
	for _, size := range cfg.sizes {
		for _, n := range cfg.streams {
			for _, im := range cfg.systems {
				var res streamResult
				var err error
				labels := pprof.Labels("system", im.name, "size", strconv.Itoa(size), "streams", strconv.Itoa(n))
				pprof.Do(ctx, labels, func(ctx context.Context) {
					res, err = runStreamCell(ctx, im, size, n, cfg.window, cfg.warm, cfg.d)
				})
				if err != nil {
					return nil, fmt.Errorf("%s, %d streams: %w", fmtSize(size), n, err)
				}
				fmt.Fprintf(progress, "%6s  %2d streams  %-13s %10.0f results/s %8.1f MB/s %6.1f allocs/result %7s CPU/result %.3f writes/result  other %.2f cores\n",
					fmtSize(size), n, im.name, res.PerSec, res.MBPerSec, res.AllocsPerResult, fmtNs(res.CPUPerResult), res.WritesPerResult, res.Other)
				rows = append(rows, res)
			}
		}
	}
	return rows, nil
}

// runStreamCell measures one system, size and number of streams: a fresh
// server and one connection, on which streams streams are opened, each
// read by a worker that counts the results it receives until the phase
// ends (a warm-up, then d); then they are closed.
func runStreamCell(ctx context.Context, im impl, size, streams, window int, warm, d time.Duration) (res streamResult, err error) {
	res = streamResult{System: im.name, Size: size, Streams: streams}
	clients, closeCell, err := startCell(ctx, im, size, 1)
	if err != nil {
		return res, err
	}
	defer closeCell(&err)
	op, ok := clients[0].client.(streamOpener)
	if !ok {
		return res, fmt.Errorf("%s: cannot open streams", im.name)
	}
	if _, isWS := op.(*wsrpcClient); isWS {
		res.Window = window
		if window == 0 {
			res.Window = rpc.DefaultStreamWindow
		}
	}
	// Each stream is opened once and read through the warm-up and the
	// measured phase: a stream closed after the warm-up would leave the
	// results in flight in its window (thousands, once the window has grown)
	// to be read and dropped during the measured phase.
	workers := make([]worker, streams)
	for i := range workers {
		recv, end, err := op.openStream(ctx, window)
		if err != nil {
			return res, fmt.Errorf("%s: open stream: %w", im.name, err)
		}
		defer end()
		workers[i] = func(stop *atomic.Bool, _ *hist) (n int64, err error) {
			for !stop.Load() {
				if err := recv(); err != nil {
					return n, fmt.Errorf("after %d results: %w", n, err)
				}
				n++
			}
			return n, nil
		}
	}
	ms, err := measurePhases(ctx, workers, nil, clients, warm, d)
	if err != nil {
		return res, fmt.Errorf("%s: %w", im.name, err)
	}
	if ms.n == 0 {
		return res, fmt.Errorf("%s: no result received", im.name)
	}
	secs := ms.elapsed.Seconds()
	res.Results, res.Elapsed = ms.n, ms.elapsed
	res.PerSec = float64(ms.n) / secs
	res.MBPerSec = res.PerSec * float64(size) / 1e6
	res.AllocsPerResult = float64(ms.mallocs) / float64(ms.n)
	res.BytesPerResult = float64(ms.bytes) / float64(ms.n)
	res.CPUPerResult = float64(ms.cpu) / float64(ms.n)
	res.Cores = ms.cpu.Seconds() / secs
	res.Other = max(ms.busy.Seconds()/secs-res.Cores, 0)
	res.ReadsPerResult = float64(ms.reads) / float64(ms.n)
	res.WritesPerResult = float64(ms.writes) / float64(ms.n)
	return res, nil
}

type streamReport struct {
	Meta    meta           `json:"meta"`
	GRPC    string         `json:"grpc_settings"`
	Rows    []streamResult `json:"rows"`
	Targets []target       `json:"targets"`
}

// grpcStreamSettings says how the gRPC side runs: nothing is tuned.
const grpcStreamSettings = "gRPC-go defaults: insecure TCP, one ClientConn, HTTP/2 windows of 64 KiB per stream and " +
	"connection grown by BDP estimation, 32 KiB read and write buffers; a codec that passes []byte through (no protobuf)"

// streamRef is the gRPC row a system's row is compared with: the one
// that reads as it does. Stream.Recv (wsrpc-binary, wsrpc-json) hands
// out a result of its own, as grpc-own's fresh slice per RecvMsg does;
// RecvValue and raw-packed reuse their buffer, as the grpc row does.
func streamRef(system string) string {
	if system == streamBinary.name || system == streamJSON.name {
		return grpcOwn.name
	}
	return grpcEcho.name
}

// newStreamReport adds each row's ratio to its gRPC reference in the same
// cell (streamRef; the grpc row when the run has no grpc-own) and checks
// the target on wsrpc-binary-value's.
func newStreamReport(cfg streamConfig, rows []streamResult) *streamReport {
	r := &streamReport{Meta: newMeta(), GRPC: grpcStreamSettings, Rows: rows}
	r.Meta.Duration, r.Meta.Warm = cfg.d.String(), cfg.warm.String()
	find := func(system string, c *streamResult) *streamResult {
		for i, ref := range r.Rows {
			if ref.System == system && ref.Size == c.Size && ref.Streams == c.Streams && ref.PerSec > 0 {
				return &r.Rows[i]
			}
		}
		return nil
	}
	for i := range r.Rows {
		c := &r.Rows[i]
		if c.System == grpcEcho.name || c.System == grpcOwn.name {
			continue
		}
		ref := find(streamRef(c.System), c)
		if ref == nil {
			ref = find(grpcEcho.name, c)
		}
		if ref == nil {
			continue
		}
		c.VsGRPC, c.Ref = c.PerSec/ref.PerSec, ref.System
		// The target is judged where both read a stream the fastest way
		// each offers, into a reused buffer; the Recv rows (a result of
		// its own each time, against grpc-own) are in the table.
		if c.System == streamBinaryValue.name && c.Ref == grpcEcho.name {
			r.Targets = append(r.Targets, target{
				Name:  fmt.Sprintf("%s, %s, %s: results/s vs %s server streaming", c.System, fmtSize(c.Size), plural(c.Streams, "stream"), c.Ref),
				Value: c.VsGRPC, Op: "≥", Limit: streamTarget, Unit: "×", Pass: c.VsGRPC >= streamTarget})
		}
	}
	return r
}

func (r *streamReport) writeTable(w io.Writer) error {
	var b strings.Builder
	m := r.Meta
	fmt.Fprintf(&b, "wsrpc-bench -stream  %s %s/%s, %d CPUs, GOMAXPROCS=%d, loopback; cells of %s after %s warm-up, run one at a time\n",
		m.Go, m.OS, m.Arch, m.CPUs, m.GOMAXPROCS, m.Duration, m.Warm)
	b.WriteString("One connection per cell carrying N streams at once; the handler sends one payload again and again.\n" +
		"wsrpc: client.Dial + Client.Stream, handler.Stream on server.New (defaults); each result read with Stream.Recv\n" +
		"(a result of its own), or with Stream.RecvValue into one reused rpc.Raw (-value). grpc: " + r.GRPC + "; grpc reads\n" +
		"into one reused slice, grpc-own into a fresh slice per result as generated code's Recv does.\n" +
		"÷gRPC: ÷ the grpc row that reads alike: Recv ÷ grpc-own (marked own), RecvValue and raw-packed ÷ grpc.\n" +
		"raw-packed (the ceiling for wsrpc's packing): coder/websocket alone, the results of a WebSocket message packed as\n" +
		"wsrpc packs them, no envelope, no credit, a connection per stream.\n" +
		"allocs, B, CPU, reads and writes (system calls) are per result and count both ends (this process);\n" +
		"cores: this process's CPU ÷ time; other: the machine's busy cores besides this process (well above 0.1: not comparable).\n\n")
	row := func(cols ...string) {
		fmt.Fprintf(&b, "%-6s  %7s  %-18s  %6s  %11s  %7s  %6s  %6s  %7s  %6s  %6s  %5s  %5s  %s\n",
			cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7], cols[8], cols[9], cols[10], cols[11], cols[12], cols[13])
	}
	row("size", "streams", "system", "window", "results/s", "MB/s", "allocs", "B", "CPU", "reads", "writes", "cores", "other", "÷gRPC")
	var prev string
	for _, c := range r.Rows {
		group := fmt.Sprint(c.Size, c.Streams)
		if prev != "" && group != prev {
			b.WriteString("\n")
		}
		prev = group
		win, ratio := "h2", ""
		if c.System == rawPacked.name {
			win = "tcp"
		}
		if c.Window > 0 {
			win = strconv.Itoa(c.Window)
		}
		if c.VsGRPC > 0 {
			ratio = fmtRatio(c.VsGRPC)
			if c.Ref != grpcEcho.name {
				ratio += " own"
			}
		}
		row(fmtSize(c.Size), strconv.Itoa(c.Streams), c.System, win, fmt.Sprintf("%.0f", c.PerSec), fmt.Sprintf("%.1f", c.MBPerSec),
			fmt.Sprintf("%.1f", c.AllocsPerResult), fmt.Sprintf("%.0f", c.BytesPerResult), fmtNs(c.CPUPerResult),
			fmt.Sprintf("%.3f", c.ReadsPerResult), fmt.Sprintf("%.3f", c.WritesPerResult), fmt.Sprintf("%.2f", c.Cores), fmt.Sprintf("%.2f", c.Other), ratio)
	}
	if len(r.Targets) > 0 {
		b.WriteString("\nTargets (issue 16)\n")
		writeTargets(&b, r.Targets)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
