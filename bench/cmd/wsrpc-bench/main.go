// Command wsrpc-bench measures wsrpc side by side with the raw WebSocket echo
// it is built on, gRPC-go and net/rpc, on loopback, in one run, and checks
// the project's performance targets. With -idle it measures instead what an
// idle server connection costs, in a child process of its own; with -churn,
// that connections dropped without a close frame give back their file
// descriptors and goroutines; with -soak, that the server's resources stay
// flat under a mixed load for a while; with -attack, that the server bounds
// each attack of the reliability issue; with -fanout, pub/sub fan-out in one
// process; with -nats, fan-out across processes on NATS; with -stream, RPC
// streams beside gRPC-go server streaming.
//
//	go run ./cmd/wsrpc-bench            # every cell, 2 s each
//	go run ./cmd/wsrpc-bench -quick     # CI-sized
//	go run ./cmd/wsrpc-bench -json      # JSON instead of the table
//	go run ./cmd/wsrpc-bench -idle 10000
//	go run ./cmd/wsrpc-bench -churn 20000
//	go run ./cmd/wsrpc-bench -soak 10m
//	go run ./cmd/wsrpc-bench -attack
//	go run ./cmd/wsrpc-bench -attack=slow,fanout
//	go run ./cmd/wsrpc-bench -fanout
//	go run ./cmd/wsrpc-bench -nats
//	go run ./cmd/wsrpc-bench -stream
//
// See bench/README.md for what each column means.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wsrpc/wsrpc/transport"
)

func main() {
	// SIGTERM too: -nats stops the processes it started and removes its
	// temporary directory on the way out.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// defaultIdleConns is the size of the idle-connection target.
const defaultIdleConns = 10000

// countFlag is a mode flag with a count, -idle or -churn: alone it means
// def; -flag=N or -flag N sets N.
type countFlag struct {
	name   string
	n, def int
	// pending is shared by the count flags of one FlagSet: the flag given
	// last without a value, which takes a number that follows it.
	pending **countFlag
}

func (f *countFlag) String() string {
	if f == nil || f.n == 0 {
		return "0"
	}
	return strconv.Itoa(f.n)
}

func (f *countFlag) Set(s string) error {
	switch s {
	case "true":
		f.n = f.def
		if f.pending != nil {
			*f.pending = f
		}
		return nil
	case "false":
		f.n = 0
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return errors.New("want a number")
	}
	f.n = n
	return nil
}

func (f *countFlag) IsBoolFlag() bool { return true }

// run is the whole program; main only wires it to the process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wsrpc-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		d          = fs.Duration("d", 2*time.Second, "measured duration of each cell")
		warm       = fs.Duration("warm", 0, "warm-up before each cell (0: d/4, at most 500ms)")
		quick      = fs.Bool("quick", false, "CI-sized run: 200ms cells, 50ms warm-up, 5s idle wait")
		asJSON     = fs.Bool("json", false, "print JSON instead of the table")
		sizes      = fs.String("sizes", "64,4096", "payload sizes in bytes, comma-separated")
		only       = fs.String("impls", "", "run only these implementations, comma-separated (default all)")
		modeNames  = fs.String("modes", "", "run only these modes: seq, callers, conns (default all)")
		rawWindow  = fs.Int("raw-window", 0, "messages in flight in raw-echo's pipelined cell (0: as many as there are callers, 64)")
		rounds     = fs.Int("rounds", 1, "split each call cell's -d into this many slices, measured in turn with the other implementations' slices of the same size and mode (all of them connected at once), so that all see the same drift of the machine's speed")
		pending    *countFlag
		idle       = countFlag{name: "idle", def: defaultIdleConns, pending: &pending}
		churn      = countFlag{name: "churn", def: defaultChurnCycles, pending: &pending}
		idleSubs   = fs.Int("idle-subs", 0, "with -idle: subscriptions each connection makes (one shared topic, the others its own), to measure idle subscribers")
		idleWait   = fs.Duration("idle-wait", 35*time.Second, "with -idle: how long the connections stay idle before the last measurement (the default spans one 30s heartbeat)")
		idleBeat   = fs.Duration("idle-heartbeat", transport.DefaultHeartbeatInterval, "with -idle: the server's heartbeat interval (negative: none), to measure the CPU of a heartbeat round over -idle-wait")
		idleProf   = fs.String("idle-profile", "", "with -idle: write the server's heap profile here (written anyway, to a temporary file, when the target is missed)")
		idleServer = fs.Bool("idle-server", false, "internal: run as the child server of -idle")
		idleMax    = fs.Int("idle-max", defaultIdleConns, "internal: connections the child server admits")
		idleRate   = fs.Int("idle-memprofilerate", 0, "internal: the child server's runtime.MemProfileRate (0: the default)")

		churnRounds  = fs.Int("churn-rounds", 3, "with -churn: killed-client rounds after the cycles")
		churnKilled  = fs.Int("churn-killed", 500, "with -churn: connections in each killed child process")
		churnSettle  = fs.Duration("churn-settle", time.Second, "with -churn: how long the server has to get back to the baseline after each drop")
		churnSlack   = fs.Int("churn-slack", 2, "with -churn: fds and goroutines allowed above the baseline")
		churnMaxFail = fs.Int("churn-max-fail", 10, "with -churn: stop the cycles after this many failed drops")

		soak          = fs.Duration("soak", 0, "run the mixed soak load for this long and judge that the server's resources stay flat")
		soakInterval  = fs.Duration("interval", 0, "with -soak: time between rows (0: 5s; 1s when -soak is under 1m; -soak/8 under 8s)")
		soakCallers   = fs.Int("soak-callers", 4, "with -soak: client connections making echo calls back to back")
		soakSlow      = fs.Int("soak-slow", 3, "with -soak: slow readers open at a time")
		soakReply     = fs.Int("soak-reply", 384<<10, "with -soak: size in bytes of the reply each slow reader asks for")
		soakKilled    = fs.Int("soak-killed", 200, "with -soak: connections in each killed child process")
		soakKillEvery = fs.Duration("soak-kill-every", 10*time.Second, "with -soak: time between killed child processes")

		attack        attackFlag
		attackScale   = fs.String("attack-scale", "full", "with -attack: full, or small (fewer connections and bytes: seconds, for tests)")
		attackTimeout = fs.Duration("attack-message-timeout", defaultAttackMessageTimeout,
			"with -attack: the server's transport MessageTimeout, which bounds the unfinished attack (0: the transport's default, 30s)")
		attackSlow = fs.Int("attack-slow-calls", 0,
			"with -attack: calls for 512 KiB replies each slow reader sends (0: enough for tcp_wmem's max + the 4 MiB send-queue bound + 4 MiB)")
		attackRSS = fs.Float64("attack-rss-limit", attackRSSLimit,
			"internal: with -attack, the peak RSS target of slow and fanout in MiB (tests under -race, whose shadow memory is resident, raise it)")

		fanout        = fs.Bool("fanout", false, "measure pub/sub fan-out instead: wsrpc beside centrifuge and raw coder/websocket broadcast loops (-d per phase)")
		fanoutSubs    = fs.String("fanout-subs", "1,100,1000", "with -fanout: subscriber counts, comma-separated (one connection each)")
		fanoutSizes   = fs.String("fanout-sizes", "64,1024", "with -fanout: payload sizes in bytes, comma-separated")
		fanoutSystems = fs.String("fanout-systems", "", "with -fanout: run only these systems, comma-separated: centrifuge, raw-plain, raw-batch, wsrpc (default all)")
		fanoutRate    = fs.Int("fanout-rate", 20000, "with -fanout: deliveries/s in total in the fixed-load phase")
		fanoutWindow  = fs.Int("fanout-window", 256, "with -fanout: publications the publisher may be ahead of the slowest subscriber when saturating")
		fanoutProfile = fs.String("fanout-profile", "", "with -fanout: write a CPU profile of the run here")

		natsMode    = fs.Bool("nats", false, "measure fan-out across processes on NATS instead: wsrpc serve --nats processes beside one serve process with the memory broker and nats.go, on one nats-server (-fanout-* flags; -fanout-subs defaults to 1000)")
		natsProcs   = fs.Int("nats-procs", 3, "with -nats: serve --nats processes (and nats-per-proc's connections)")
		natsWSRPC   = fs.String("nats-wsrpc", "", "with -nats: the wsrpc command built with NATS (default: go build "+natsServePkg+" into a temporary directory)")
		natsProfile = fs.String("nats-profile", "", "with -nats: write CPU profiles into this directory: each serve process's (run as this program, the same code) and this process's")
		natsSystems = fs.String("nats-systems", "", "with -nats: run only these systems, comma-separated: wsrpc-nats, wsrpc-memory, nats-per-proc, nats-per-sub (default all)")

		streamMode    = fs.Bool("stream", false, "measure RPC streams instead: results/s of wsrpc's Client.Stream (binary and JSON-RPC) beside gRPC-go server streaming (-sizes, -d, -warm)")
		streams       = fs.String("streams", "1,16", "with -stream: concurrent streams on the one connection, comma-separated (a cell each)")
		streamWindow  = fs.Int("stream-window", 0, "with -stream: wsrpc's stream window, rpc.WithWindow (0: rpc.DefaultStreamWindow)")
		streamSystems = fs.String("stream-systems", "", "with -stream: run only these systems, comma-separated: wsrpc-binary, wsrpc-binary-value, wsrpc-json, grpc, grpc-own, raw-packed (default all)")
		streamProfile = fs.String("stream-profile", "", "with -stream: write a CPU profile of the run here (cells labelled system, size, streams)")

		killedN   = fs.Int("killed-clients", 0, "internal: run as a child process of client connections to be killed")
		killedURL = fs.String("killed-url", "", "internal: the server the killed clients dial")
	)
	fs.Var(&idle, "idle", "measure idle server connections instead: -idle alone means 10000, or -idle N")
	fs.Var(&churn, "churn", "check that dropped connections give back their fds and goroutines: -churn alone means 20000 cycles, or -churn N")
	fs.Var(&attack, "attack", "check that an in-process server bounds each attack of the reliability issue: -attack alone runs every one, "+
		"-attack=a,b some of slow, fanout, unfinished, keepalive, pipelined")
	fs.Usage = func() { usage(fs) }
	if len(args) > 0 && args[0] == natsChildFlag {
		return serveProfiled(args[1:], stdin, stderr)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	rest := fs.Args()
	for pending != nil && len(rest) > 0 {
		// "-idle N": the flag parser took -idle alone and stopped at N.
		f := pending
		pending = nil
		if err := f.Set(rest[0]); err != nil {
			fmt.Fprintf(stderr, "wsrpc-bench: -%s %s: %v\n", f.name, rest[0], err)
			return 2
		}
		if err := fs.Parse(rest[1:]); err != nil {
			return 2
		}
		rest = fs.Args()
	}
	if len(rest) > 0 {
		fmt.Fprintf(stderr, "wsrpc-bench: unexpected arguments %q", rest)
		if attack.on {
			fmt.Fprint(stderr, " (choose scenarios with -attack=name,name)")
		}
		fmt.Fprintln(stderr)
		return 2
	}
	if *idleServer {
		return serveIdle(ctx, *idleMax, *idleRate, *idleBeat, stdin, stdout, stderr)
	}
	if *killedN > 0 {
		return serveKilledClients(ctx, *killedURL, *killedN, stdin, stdout, stderr)
	}
	if n := countTrue(idle.n > 0, churn.n > 0, *soak > 0, attack.on, *fanout, *natsMode, *streamMode); n > 1 {
		fmt.Fprintln(stderr, "wsrpc-bench: -idle, -churn, -soak, -attack, -fanout, -nats and -stream are separate runs: give one")
		return 2
	}
	if *asJSON && (churn.n > 0 || *soak > 0 || attack.on) {
		fmt.Fprintln(stderr, "wsrpc-bench: -churn, -soak and -attack print tables only, not -json")
		return 2
	}
	if attack.on {
		size, ok := attackSizes[*attackScale]
		if !ok || *attackTimeout < 0 || *attackSlow < 0 || *attackRSS <= 0 {
			fmt.Fprintln(stderr, "wsrpc-bench: -attack: -attack-scale is full or small; -attack-message-timeout and -attack-slow-calls not negative")
			return 2
		}
		scenarios, _ := pick(attackScenarios, attack.names, scenarioName) // checked by Set
		return runAttack(ctx, attackConfig{scenarios: scenarios, scale: *attackScale, size: size, messageTimeout: *attackTimeout,
			slowCalls: *attackSlow, rssLimit: *attackRSS},
			stdout, stderr)
	}
	if churn.n > 0 {
		if *churnKilled < 1 && *churnRounds > 0 || *churnSettle <= 0 || *churnSlack < 0 || *churnMaxFail < 1 {
			fmt.Fprintln(stderr, "wsrpc-bench: -churn: -churn-killed and -churn-max-fail must be at least 1, -churn-settle positive, -churn-slack not negative")
			return 2
		}
		return runChurn(ctx, churnConfig{cycles: churn.n, rounds: max(*churnRounds, 0), killed: *churnKilled,
			settle: *churnSettle, slack: *churnSlack, maxFail: *churnMaxFail}, stdout, stderr)
	}
	if *soak > 0 {
		cfg := soakConfig{d: *soak, interval: *soakInterval, callers: *soakCallers, slow: *soakSlow,
			reply: *soakReply, killed: *soakKilled, killEvery: *soakKillEvery}
		if err := cfg.check(); err != nil {
			fmt.Fprintf(stderr, "wsrpc-bench: -soak: %v\n", err)
			return 2
		}
		return runSoak(ctx, cfg, stdout, stderr)
	}
	if *quick { // sizes CI can afford, unless given explicitly
		explicit := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
		if !explicit["d"] {
			*d = 200 * time.Millisecond
		}
		if !explicit["warm"] {
			*warm = 50 * time.Millisecond
		}
		if !explicit["idle-wait"] {
			*idleWait = 5 * time.Second
		}
	}
	if *warm == 0 {
		*warm = min(*d/4, 500*time.Millisecond)
	}
	if *natsMode {
		subs := *fanoutSubs
		if !flagGiven(fs, "fanout-subs") {
			subs = "1000"
		}
		fan, err := parseFanoutConfig(subs, *fanoutSizes, "", *fanoutRate, *fanoutWindow)
		if err != nil {
			fmt.Fprintf(stderr, "wsrpc-bench: -nats: %v\n", err)
			return 2
		}
		fan.d, fan.warm, fan.json = *d, *warm, *asJSON
		cfg, err := parseNATSConfig(fan, *natsSystems, *natsProcs, *natsWSRPC, *natsProfile)
		if err != nil {
			fmt.Fprintf(stderr, "wsrpc-bench: -nats: %v\n", err)
			return 2
		}
		return runNats(ctx, cfg, stdout, stderr)
	}
	if *streamMode {
		cfg, err := parseStreamConfig(*sizes, *streams, *streamSystems, *streamWindow)
		if err != nil {
			fmt.Fprintf(stderr, "wsrpc-bench: -stream: %v\n", err)
			return 2
		}
		cfg.d, cfg.warm, cfg.profile, cfg.json = *d, *warm, *streamProfile, *asJSON
		return runStream(ctx, cfg, stdout, stderr)
	}
	if *fanout {
		cfg, err := parseFanoutConfig(*fanoutSubs, *fanoutSizes, *fanoutSystems, *fanoutRate, *fanoutWindow)
		if err != nil {
			fmt.Fprintf(stderr, "wsrpc-bench: -fanout: %v\n", err)
			return 2
		}
		cfg.d, cfg.warm, cfg.profile, cfg.json = *d, *warm, *fanoutProfile, *asJSON
		return runFanout(ctx, cfg, stdout, stderr)
	}
	if idle.n > 0 {
		return runIdle(ctx, idleConfig{conns: idle.n, wait: *idleWait, profile: *idleProf, json: *asJSON, subs: *idleSubs, heartbeat: *idleBeat}, stdout, stderr)
	}

	if *rounds < 1 {
		fmt.Fprintf(stderr, "wsrpc-bench: -rounds: %d is not a count of at least 1\n", *rounds)
		return 2
	}
	cfg := config{d: *d, warm: *warm, rawWindow: *rawWindow, rounds: *rounds}
	for s := range strings.SplitSeq(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 8 {
			fmt.Fprintf(stderr, "wsrpc-bench: -sizes: %q is not a size of at least 8 bytes\n", s)
			return 2
		}
		cfg.sizes = append(cfg.sizes, n)
	}
	var err error
	if cfg.impls, err = pick(allImpls, *only, func(im impl) string { return im.name }); err != nil {
		fmt.Fprintf(stderr, "wsrpc-bench: -impls: %v\n", err)
		return 2
	}
	if cfg.modes, err = pick(modes, *modeNames, modeKey); err != nil {
		fmt.Fprintf(stderr, "wsrpc-bench: -modes: %v\n", err)
		return 2
	}
	cells, err := measure(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "wsrpc-bench: %v\n", err)
		return 1
	}
	rep := newReport(cfg, cells)
	return printReport(stdout, stderr, *asJSON, rep, rep.writeTable)
}

// flagGiven reports whether the command line set the flag name.
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

// countTrue counts the true ones.
func countTrue(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// usage prints the flags, leaving out the internal ones (the child server's).
func usage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprintf(w, "usage: wsrpc-bench [flags]   (see bench/README.md)\n")
	fs.VisitAll(func(f *flag.Flag) {
		if strings.HasPrefix(f.Usage, "internal:") {
			return
		}
		name, text := flag.UnquoteUsage(f)
		if name != "" {
			name = " " + name
		}
		fmt.Fprintf(w, "  -%s%s\n    \t%s", f.Name, name, text)
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" && f.DefValue != "0s" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

var allImpls = []impl{rawEcho, wsrpcBinary, wsrpcJSON, wsrpcClientBinary, wsrpcClientJSON, grpcEcho, netRPC}

func modeKey(m mode) string {
	switch {
	case m.conns == 1 && m.callers == 1:
		return "seq"
	case m.conns == 1:
		return "callers"
	default:
		return "conns"
	}
}

// pick keeps the elements of all named in list (all of them for "").
func pick[T any](all []T, list string, name func(T) string) ([]T, error) {
	if list == "" {
		return all, nil
	}
	var out []T
	for w := range strings.SplitSeq(list, ",") {
		w = strings.TrimSpace(w)
		i := slices.IndexFunc(all, func(t T) bool { return name(t) == w })
		if i < 0 {
			var names []string
			for _, t := range all {
				names = append(names, name(t))
			}
			return nil, fmt.Errorf("unknown %q (known: %s)", w, strings.Join(names, ", "))
		}
		out = append(out, all[i])
	}
	return out, nil
}

// config is what one throughput run measures.
type config struct {
	d, warm   time.Duration
	rawWindow int // 0: the mode's callers
	rounds    int // 1: each cell alone; more: the impls of a size and mode interleaved (runInterleaved)
	sizes     []int
	modes     []mode
	impls     []impl
}

// measure runs every cell of cfg, one after another, and reports progress
// on progress.
func measure(ctx context.Context, cfg config, progress io.Writer) ([]cellResult, error) {
	var cells []cellResult
	for _, size := range cfg.sizes {
		for _, m := range cfg.modes {
			var results []cellResult
			if cfg.rounds > 1 {
				res, err := runInterleaved(ctx, cfg.impls, size, m, cfg.rawWindow, cfg.rounds, cfg.warm, cfg.d)
				if err != nil {
					return nil, fmt.Errorf("%d B, %s: %w", size, m.name, err)
				}
				results = res
			} else {
				for _, im := range cfg.impls {
					res, err := runCell(ctx, im, size, m, cfg.rawWindow, cfg.warm, cfg.d)
					if err != nil {
						return nil, fmt.Errorf("%d B, %s: %w", size, m.name, err)
					}
					results = append(results, res)
					progressLine(progress, res)
				}
			}
			if cfg.rounds > 1 {
				for _, res := range results {
					progressLine(progress, res)
				}
			}
			cells = append(cells, results...)
		}
	}
	return cells, nil
}

// progressLine reports one measured cell.
func progressLine(progress io.Writer, res cellResult) {
	fmt.Fprintf(progress, "%6d B  %-18s %-13s %10.0f req/s  p50 %-9s p99 %-9s %5.1f allocs/call\n",
		res.Size, res.Mode, res.Impl, res.ReqPerSec, fmtDur(res.P50), fmtDur(res.P99), res.AllocsPerCall)
}
