package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"
)

// meta describes the machine and the run, printed above every report.
type meta struct {
	Go         string `json:"go"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Duration   string `json:"cell_duration,omitempty"`
	Warm       string `json:"warm_up,omitempty"`
	Rounds     int    `json:"rounds,omitempty"` // call cells interleaved in this many rounds (-rounds); 0 or 1: one at a time
	Start      string `json:"start"`
}

func newMeta() meta {
	return meta{Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), Start: time.Now().UTC().Format(time.RFC3339)}
}

// target is one performance target checked against a run.
type target struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Op    string  `json:"op"` // "≥" or "≤": how Value must compare with Limit
	Limit float64 `json:"limit"`
	Unit  string  `json:"unit"` // of Value and Limit
	Pass  bool    `json:"pass"`
	Note  string  `json:"note,omitempty"`
}

func (t target) verdict() string {
	if t.Pass {
		return "PASS"
	}
	return "MISS"
}

type report struct {
	Meta    meta         `json:"meta"`
	Cells   []cellResult `json:"cells"`
	Targets []target     `json:"targets"`
}

func isWSRPC(name string) bool { return strings.HasPrefix(name, "wsrpc-") }

// newReport adds to each wsrpc cell its ratios to the raw echo and to gRPC of
// the same size and mode, and checks the targets.
func newReport(cfg config, cells []cellResult) *report {
	r := &report{Meta: newMeta(), Cells: cells}
	r.Meta.Duration, r.Meta.Warm = cfg.d.String(), cfg.warm.String()
	if cfg.rounds > 1 {
		r.Meta.Rounds = cfg.rounds
	}
	find := func(impl string, size int, mode string) *cellResult {
		for i := range r.Cells {
			c := &r.Cells[i]
			if c.Impl == impl && c.Size == size && c.Mode == mode {
				return c
			}
		}
		return nil
	}
	for i := range r.Cells {
		c := &r.Cells[i]
		if !isWSRPC(c.Impl) {
			continue
		}
		if ref := find(rawEcho.name, c.Size, c.Mode); ref != nil {
			c.VsRaw = ratiosTo(c, ref)
		}
		if ref := find(grpcEcho.name, c.Size, c.Mode); ref != nil {
			c.VsGRPC = ratiosTo(c, ref)
		}
	}
	// The front door against the core, in every cell both ran (issue 12).
	for _, pair := range [][2]string{{wsrpcClientBinary.name, wsrpcBinary.name}, {wsrpcClientJSON.name, wsrpcJSON.name}} {
		for _, size := range cfg.sizes {
			for _, m := range cfg.modes {
				c, ref := find(pair[0], size, m.name), find(pair[1], size, m.name)
				if c == nil || ref == nil || ref.ReqPerSec == 0 {
					continue
				}
				v := c.ReqPerSec / ref.ReqPerSec
				r.Targets = append(r.Targets, target{
					Name:  fmt.Sprintf("%s, %s, %s: req/s vs %s (rpc.Peer)", pair[0], m.name, fmtSize(size), pair[1]),
					Value: v, Op: "≥", Limit: 0.95, Unit: "×", Pass: v >= 0.95})
			}
		}
	}
	for _, size := range cfg.sizes {
		if c := find(wsrpcBinary.name, size, modes[1].name); c != nil {
			if c.VsRaw != nil {
				r.Targets = append(r.Targets, target{
					Name:  fmt.Sprintf("wsrpc-binary, 64 callers/1 conn, %s: req/s vs raw echo (pipelined)", fmtSize(size)),
					Value: c.VsRaw.ReqPerSec, Op: "≥", Limit: 0.75, Unit: "×", Pass: c.VsRaw.ReqPerSec >= 0.75})
			}
			if c.VsGRPC != nil {
				r.Targets = append(r.Targets, target{
					Name:  fmt.Sprintf("wsrpc-binary, 64 callers/1 conn, %s: req/s vs gRPC-go", fmtSize(size)),
					Value: c.VsGRPC.ReqPerSec, Op: "≥", Limit: 2.5, Unit: "×", Pass: c.VsGRPC.ReqPerSec >= 2.5})
			}
		}
		if c := find(wsrpcBinary.name, size, modes[0].name); c != nil && c.VsRaw != nil {
			r.Targets = append(r.Targets, target{
				Name:  fmt.Sprintf("wsrpc-binary, sequential, %s: p50 vs raw ping-pong", fmtSize(size)),
				Value: c.VsRaw.P50, Op: "≤", Limit: 1.5, Unit: "×", Pass: c.VsRaw.P50 <= 1.5})
		}
	}
	return r
}

func ratiosTo(c, ref *cellResult) *ratios {
	div := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	return &ratios{
		ReqPerSec: div(c.ReqPerSec, ref.ReqPerSec),
		P50:       div(float64(c.P50), float64(ref.P50)),
		P99:       div(float64(c.P99), float64(ref.P99)),
	}
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printReport writes rep to stdout, as JSON when asJSON is set, else with
// table, and returns the exit status (1 once the error is on stderr).
func printReport(stdout, stderr io.Writer, asJSON bool, rep any, table func(io.Writer) error) int {
	var err error
	if asJSON {
		err = writeJSON(stdout, rep)
	} else {
		err = table(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "wsrpc-bench: %v\n", err)
		return 1
	}
	return 0
}

func (r *report) writeTable(w io.Writer) error {
	var b strings.Builder
	m := r.Meta
	order := "run one at a time"
	if m.Rounds > 1 {
		order = fmt.Sprintf("the implementations of each size and mode interleaved in %d rounds of %s each", m.Rounds, roundLen(m.Duration, m.Rounds))
	}
	fmt.Fprintf(&b, "wsrpc-bench  %s %s/%s, %d CPUs, GOMAXPROCS=%d, loopback; cells of %s after %s warm-up, %s\n",
		m.Go, m.OS, m.Arch, m.CPUs, m.GOMAXPROCS, m.Duration, m.Warm, order)
	b.WriteString("allocs/call counts both ends (client and server share this process). ÷raw and ÷gRPC: this wsrpc\n" +
		"figure divided by raw-echo's / grpc's in the same size and mode (req/s: higher is better; p50: lower is better).\n" +
		"raw-echo with 64 callers/1 conn (*) is a pipelined echo with the window shown in flight.\n\n")
	row := func(cols ...string) {
		fmt.Fprintf(&b, "%-6s  %-25s  %-13s  %10s  %9s  %9s  %7s  %9s  %9s  %9s  %9s\n",
			cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7], cols[8], cols[9], cols[10])
	}
	row("size", "mode", "impl", "req/s", "p50", "p99", "allocs", "req/s÷raw", "req/s÷gRPC", "p50÷raw", "p50÷gRPC")
	var prev string
	for _, c := range r.Cells {
		group := fmt.Sprint(c.Size, c.Mode)
		if prev != "" && group != prev {
			b.WriteString("\n")
		}
		prev = group
		mode := c.Mode
		if c.Pipelined {
			mode = fmt.Sprintf("%s* w=%d", mode, c.Window)
		}
		rr, rg := "", ""
		pr, pg := "", ""
		if c.VsRaw != nil {
			rr, pr = fmtRatio(c.VsRaw.ReqPerSec), fmtRatio(c.VsRaw.P50)
		}
		if c.VsGRPC != nil {
			rg, pg = fmtRatio(c.VsGRPC.ReqPerSec), fmtRatio(c.VsGRPC.P50)
		}
		row(fmtSize(c.Size), mode, c.Impl, fmt.Sprintf("%.0f", c.ReqPerSec), fmtDur(c.P50), fmtDur(c.P99),
			fmt.Sprintf("%.1f", c.AllocsPerCall), rr, rg, pr, pg)
	}
	if len(r.Targets) > 0 {
		b.WriteString("\nTargets\n")
		writeTargets(&b, r.Targets)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeTargets(b *strings.Builder, ts []target) {
	for _, t := range ts {
		fmt.Fprintf(b, "  %s  %-70s %8.2f%-4s (target %s %g%s)", t.verdict(), t.Name, t.Value, t.Unit, t.Op, t.Limit, t.Unit)
		if t.Note != "" {
			fmt.Fprintf(b, "  %s", t.Note)
		}
		b.WriteString("\n")
	}
}

func fmtRatio(x float64) string { return fmt.Sprintf("%.2f×", x) }

func fmtSize(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond))
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
}

// roundLen is a cell's duration (as printed by time.Duration) divided by rounds.
func roundLen(d string, rounds int) string {
	v, err := time.ParseDuration(d)
	if err != nil {
		return "?"
	}
	return (v / time.Duration(rounds)).String()
}
