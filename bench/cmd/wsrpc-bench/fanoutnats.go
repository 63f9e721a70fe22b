package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"

	"github.com/wsrpc/wsrpc/internal/cli"
	"github.com/wsrpc/wsrpc/internal/natstest"
	"github.com/wsrpc/wsrpc/natsbroker"
	"github.com/wsrpc/wsrpc/pubsub"
)

// The cross-process fan-out mode (-nats, issue 14): one real nats-server
// with JetStream for the whole run, and per cell (subscribers × payload
// size), one after another, with the -fanout machinery (the same minimal
// subscribers, phases and figures):
//
//   - wsrpc-nats: -nats-procs `wsrpc serve --nats` processes (the command
//     built from natsbroker/cmd/wsrpc), the subscribers spread evenly over
//     them, the publisher a WebSocket client calling $/publish on the
//     first: each publication goes through JetStream and comes back to
//     every process on core NATS;
//   - wsrpc-memory: one `wsrpc serve` process without --nats (the memory
//     broker), the same subscribers and publisher;
//   - nats-per-proc, nats-per-sub: nats.go on the same nats-server, one
//     subscription per subscriber, spread over -nats-procs connections (one
//     per wsrpc process) or on a connection each (as each WebSocket
//     subscriber has), the publisher nc.Publish on core NATS: the engine's
//     own ceiling.
//
// Every process it starts and its temporary directory are gone when it
// returns, whatever ends the run.

// natsConfig is one -nats run.
type natsConfig struct {
	fan     fanoutConfig // subs, sizes, phases, rate, window, json; systems picked below
	systems []string
	procs   int
	wsrpc   string // the serve command; "" builds it
	profile string // directory of CPU profiles, if set
}

const (
	natsTopic       = "chat.bench"   // serve's demo topics: clients may publish on chat.>, 1000 kept
	natsSubject     = "bench.fanout" // nats.go's subject
	natsMaxSize     = 4 << 10        // serve's chat.> takes at most 4 KiB of JSON a publication
	natsServeReady  = 30 * time.Second
	natsServeStop   = 10 * time.Second
	natsPubInFlight = 1024 // $/publish calls without their reply (below the server's backlog of 4096)
	natsChildFlag   = "-nats-serve-child"
	natsServePkg    = "github.com/wsrpc/wsrpc/natsbroker/cmd/wsrpc"
)

// natsSystems are the systems of -nats, in the order each cell runs them.
func (e *natsEnv) natsSystems() []fanSystem {
	return []fanSystem{
		{name: "wsrpc-nats", start: func(ctx context.Context, size int, subs []*fanSub) (fanTarget, error) {
			return e.startServeFan(ctx, "wsrpc-nats", size, subs, e.procs, true)
		}},
		{name: "wsrpc-memory", start: func(ctx context.Context, size int, subs []*fanSub) (fanTarget, error) {
			return e.startServeFan(ctx, "wsrpc-memory", size, subs, 1, false)
		}},
		{name: "nats-per-proc", start: func(ctx context.Context, _ int, subs []*fanSub) (fanTarget, error) {
			return e.startDirectFan(ctx, subs, e.procs)
		}},
		{name: "nats-per-sub", start: func(ctx context.Context, _ int, subs []*fanSub) (fanTarget, error) {
			return e.startDirectFan(ctx, subs, 0)
		}},
	}
}

// parseNATSConfig checks the -nats flags; fan holds the -fanout ones.
func parseNATSConfig(fan fanoutConfig, systems string, procs int, wsrpc, profile string) (natsConfig, error) {
	cfg := natsConfig{fan: fan, procs: procs, wsrpc: wsrpc, profile: profile}
	if procs < 1 {
		return cfg, errors.New("-nats-procs must be at least 1")
	}
	if wsrpc != "" && profile != "" {
		return cfg, errors.New("-nats-profile runs the serve processes as this program (to profile them): not with -nats-wsrpc")
	}
	for _, s := range fan.sizes {
		if s > natsMaxSize {
			return cfg, fmt.Errorf("-fanout-sizes: %d is too large: serve's chat topics take at most %d bytes of JSON", s, natsMaxSize)
		}
	}
	picked, err := pick((&natsEnv{}).natsSystems(), systems, func(s fanSystem) string { return s.name })
	if err != nil {
		return cfg, fmt.Errorf("-nats-systems: %w", err)
	}
	for _, s := range picked {
		cfg.systems = append(cfg.systems, s.name)
	}
	return cfg, nil
}

// runNats is the -nats mode.
func runNats(ctx context.Context, cfg natsConfig, stdout, stderr io.Writer) int {
	progress := &lockedWriter{w: stderr} // the serve processes' warnings come from other goroutines
	if _, err := raiseNoFile(); err != nil {
		fmt.Fprintf(progress, "wsrpc-bench: -nats: raising the fd limit: %v\n", err)
	}
	env, err := newNATSEnv(ctx, cfg, progress)
	if err != nil {
		fmt.Fprintf(progress, "wsrpc-bench: -nats: %v\n", err)
		return 1
	}
	defer env.close()
	if cfg.profile != "" {
		stop, err := startCPUProfile(filepath.Join(cfg.profile, "bench.cpu.pprof"))
		if err != nil {
			fmt.Fprintf(progress, "wsrpc-bench: %v\n", err)
			return 1
		}
		defer stop()
	}
	fan := cfg.fan
	fan.systems, _ = pick(env.natsSystems(), strings.Join(cfg.systems, ","), func(s fanSystem) string { return s.name })
	fmt.Fprintf(progress, "nats-server %s at %s (JetStream in %s); serve: %s\n", env.version, env.nats.URL, env.nats.Dir, env.command())
	rows, err := measureFanout(ctx, fan, progress)
	if err != nil {
		fmt.Fprintf(progress, "wsrpc-bench: -nats: %v\n", err)
		return 1
	}
	rep := newNATSReport(cfg, env, rows)
	return printReport(stdout, progress, cfg.fan.json, rep, rep.writeTable)
}

// natsEnv is what a -nats run shares between its cells: the temporary
// directory, the serve command and the nats-server.
type natsEnv struct {
	dir      string // temporary: the built command, JetStream's store
	bin      string // the serve command
	self     bool   // bin is this program, which profiles the serve processes
	profile  string
	procs    int
	nats     *natstest.Server
	natsPID  int // 0: not found
	version  string
	progress io.Writer
}

// newNATSEnv makes the temporary directory, builds the serve command
// (unless given) and starts nats-server with JetStream. On error it has
// removed what it made.
func newNATSEnv(ctx context.Context, cfg natsConfig, progress io.Writer) (e *natsEnv, err error) {
	natsBin, err := natstest.Binary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "wsrpc-bench-nats-")
	if err != nil {
		return nil, err
	}
	e = &natsEnv{dir: dir, procs: cfg.procs, profile: cfg.profile, progress: progress}
	defer func() {
		if err != nil {
			e.close()
			e = nil
		}
	}()
	switch {
	case cfg.profile != "":
		if err := os.MkdirAll(cfg.profile, 0o755); err != nil {
			return nil, err
		}
		if e.bin, err = os.Executable(); err != nil {
			return nil, err
		}
		e.self = true
	case cfg.wsrpc != "":
		e.bin = cfg.wsrpc
	default:
		e.bin = filepath.Join(dir, "wsrpc")
		fmt.Fprintf(progress, "go build -o %s %s\n", e.bin, natsServePkg)
		if err := buildServe(ctx, e.bin); err != nil {
			return nil, err
		}
	}
	if out, err := exec.CommandContext(ctx, natsBin, "--version").Output(); err == nil {
		e.version = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "nats-server:"))
	}
	if e.nats, err = natstest.Launch(true, filepath.Join(dir, "jetstream")); err != nil {
		return nil, err
	}
	e.natsPID = childPID(filepath.Base(natsBin))
	return e, nil
}

// procUsage is what /proc says of some processes: user+sys time and write
// system calls, summed.
type procUsage struct {
	cpu    time.Duration
	writes int64
}

// readProcs reads the usage of t's server processes and of its brokers'.
func readProcs(t fanProcs) (servers, brokers procUsage) {
	s, b := t.pids()
	return readUsage(s), readUsage(b)
}

func readUsage(pids []int) procUsage {
	var u procUsage
	for _, pid := range pids {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			// After the command's closing parenthesis: state is field 3,
			// utime and stime fields 14 and 15, in clock ticks (USER_HZ 100).
			if i := strings.LastIndexByte(string(b), ')'); i >= 0 {
				if f := strings.Fields(string(b[i+1:])); len(f) > 12 {
					ut, _ := strconv.ParseInt(f[11], 10, 64)
					st, _ := strconv.ParseInt(f[12], 10, 64)
					u.cpu += time.Duration(ut+st) * (time.Second / 100)
				}
			}
		}
		_, w := ioSyscalls(strconv.Itoa(pid))
		u.writes += w
	}
	return u
}

// childPID finds the child of this process running the command comm
// (natstest does not give its nats-server's pid), 0 if none.
func childPID(comm string) int {
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		i, j := strings.IndexByte(string(b), '('), strings.LastIndexByte(string(b), ')')
		if i < 0 || j < i || string(b[i+1:j]) != comm {
			continue
		}
		if f := strings.Fields(string(b[j+1:])); len(f) > 1 && f[1] == strconv.Itoa(os.Getpid()) {
			return pid
		}
	}
	return 0
}

// brokers is nats-server's pid, as fanProcs wants it.
func (e *natsEnv) brokers() []int {
	if e.natsPID == 0 {
		return nil
	}
	return []int{e.natsPID}
}

// close stops nats-server and removes the temporary directory.
func (e *natsEnv) close() {
	if e.nats != nil {
		e.nats.Stop()
	}
	if err := os.RemoveAll(e.dir); err != nil {
		fmt.Fprintf(e.progress, "wsrpc-bench: -nats: %v\n", err)
	}
}

// command describes the serve command the run uses.
func (e *natsEnv) command() string {
	if e.self {
		return "this program's " + natsChildFlag + " (profiled; the same code as " + natsServePkg + ")"
	}
	return e.bin
}

// buildServe builds natsbroker/cmd/wsrpc into out, with the bench
// module's dependencies (its replace directives point at this checkout).
func buildServe(ctx context.Context, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, natsServePkg)
	// The directory of this source file, inside the bench module, when it
	// is still there; else the current directory.
	if _, file, _, ok := runtime.Caller(0); ok {
		if fi, err := os.Stat(filepath.Dir(file)); err == nil && fi.IsDir() {
			cmd.Dir = filepath.Dir(file)
		}
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s (or give -nats-wsrpc PATH): %v\n%s", natsServePkg, err, b)
	}
	return nil
}

// serveProfiled is the child of -nats-profile (this program with
// natsChildFlag FILE serve ...): the wsrpc command built with NATS, as
// natsbroker/cmd/wsrpc is, with its CPU profile written to FILE. The end of
// its stdin (closed by the parent, or by the parent's death) ends the
// profile and then shuts serve down as SIGTERM does.
func serveProfiled(args []string, stdin io.Reader, stderr io.Writer) int {
	if len(args) < 2 {
		fmt.Fprintln(stderr, "wsrpc-bench: "+natsChildFlag+" FILE serve [flags]")
		return 2
	}
	stop, err := startCPUProfile(args[0])
	if err != nil {
		fmt.Fprintf(stderr, "wsrpc-bench: %v\n", err)
		return 1
	}
	go func() { // ends with the process
		_, _ = io.Copy(io.Discard, stdin)
		stop()
		_ = syscall.Kill(os.Getpid(), syscall.SIGTERM) // this process: serve shuts down
	}()
	os.Args = append([]string{os.Args[0]}, args[1:]...)
	cli.Main(cli.Extensions{Broker: func(_ context.Context, url string) (pubsub.Broker, error) {
		return natsbroker.Connect(url, natsbroker.Options{})
	}})
	return 0 // Main exits
}

// A serveProc is one `wsrpc serve` process.
type serveProc struct {
	name   string
	cmd    *exec.Cmd
	url    string         // its RPC endpoint
	stdin  io.WriteCloser // profiled: closing it ends the profile, then the process
	log    *serveLog
	exited chan struct{}
	err    error // cmd.Wait's, once exited is closed
}

// startServe starts a serve process (with --nats natsURL unless empty) and
// waits until it listens. profile names its CPU profile when e profiles.
func (e *natsEnv) startServe(ctx context.Context, name, natsURL, profile string) (*serveProc, error) {
	var args []string
	if e.self {
		args = append(args, natsChildFlag, filepath.Join(e.profile, profile))
	}
	args = append(args, "serve", "--addr", "127.0.0.1:0", "--log-level", "warn", "--drain-timeout", "5s")
	if natsURL != "" {
		args = append(args, "--nats", natsURL)
	}
	cmd := exec.Command(e.bin, args...)
	killWithParent(cmd)
	p := &serveProc{name: name, cmd: cmd, exited: make(chan struct{}),
		log: &serveLog{name: name, progress: e.progress, url: make(chan string, 1)}}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if e.self {
		var err error
		if p.stdin, err = cmd.StdinPipe(); err != nil {
			return nil, err
		}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	go func() { // owned: stop waits for it
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t := time.NewTimer(natsServeReady)
	defer t.Stop()
	select {
	case p.url = <-p.log.url:
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("%s exited (%v): %s", name, p.err, p.log.lastLines())
	case <-t.C:
		err := fmt.Errorf("%s: not listening after %s: %s", name, natsServeReady, p.log.lastLines())
		_ = p.stop()
		return nil, err
	case <-ctx.Done():
		_ = p.stop()
		return nil, ctx.Err()
	}
}

// stop shuts the process down (SIGTERM, or the end of its stdin when it
// profiles, which then shuts itself down), kills it after natsServeStop
// and waits for it. A serve that did not exit 0 is an error.
func (p *serveProc) stop() error {
	if p.stdin != nil {
		p.stdin.Close()
	} else {
		_ = p.cmd.Process.Signal(syscall.SIGTERM) // our own child, by its handle
	}
	t := time.NewTimer(natsServeStop)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("%s did not stop within %s: killed", p.name, natsServeStop)
	}
	if p.err != nil {
		return fmt.Errorf("%s: %v: %s", p.name, p.err, p.log.lastLines())
	}
	return nil
}

// serveLog is a serve process's output: it finds the listening line,
// keeps the last lines for errors and passes what comes after the
// listening line (warnings: --log-level warn) on to progress.
type serveLog struct {
	name     string
	progress io.Writer
	url      chan string // the endpoint, once

	mu      sync.Mutex
	partial []byte
	last    []string
	found   bool
}

func (l *serveLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, b...)
	for {
		line, rest, ok := strings.Cut(string(l.partial), "\n")
		if !ok {
			break
		}
		l.partial = append(l.partial[:0], rest...)
		l.line(line)
	}
	return len(b), nil
}

func (l *serveLog) line(s string) {
	const mark = "listening on "
	if i := strings.Index(s, mark); i >= 0 && !l.found {
		if f := strings.Fields(s[i+len(mark):]); len(f) > 0 {
			l.found = true
			l.url <- strings.TrimRight(f[0], `"`)
			return
		}
	}
	if len(l.last) == 10 {
		l.last = l.last[1:]
	}
	l.last = append(l.last, s)
	if l.found {
		fmt.Fprintf(l.progress, "  %s: %s\n", l.name, s)
	}
}

func (l *serveLog) lastLines() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(append(l.last, string(l.partial)), "\n")
}

// serveFan is wsrpc-nats or wsrpc-memory: serve processes, subscribers
// spread over them, the publisher on the first.
type serveFan struct {
	env     *natsEnv
	viaNATS bool
	procs   []*serveProc
	pub     *wsPublisher
	clients []*websocket.Conn
}

func (e *natsEnv) startServeFan(ctx context.Context, system string, size int, subs []*fanSub, procs int, viaNATS bool) (fanTarget, error) {
	s := &serveFan{env: e, viaNATS: viaNATS}
	fail := func(err error) (fanTarget, error) {
		_ = s.close()
		return nil, err
	}
	natsURL := ""
	if viaNATS {
		natsURL = e.nats.URL
	}
	for i := range procs {
		name := fmt.Sprintf("%s serve %d", system, i+1)
		profile := fmt.Sprintf("%s-%dsubs-%dB-proc%d.cpu.pprof", system, len(subs), size, i+1)
		p, err := e.startServe(ctx, name, natsURL, profile)
		if err != nil {
			return fail(err)
		}
		s.procs = append(s.procs, p)
	}
	var next atomic.Int64
	var err error
	s.clients, err = dialFanSubs(ctx, subs, func(ctx context.Context, sub *fanSub) (*websocket.Conn, error) {
		p := s.procs[int(next.Add(1)-1)%len(s.procs)] // round robin: evenly
		return dialWSRPCSubscriber(ctx, p.url, natsTopic, sub)
	})
	if err != nil {
		return fail(err)
	}
	if s.pub, err = dialPublisher(ctx, s.procs[0].url, natsTopic); err != nil {
		return fail(fmt.Errorf("publisher: %w", err))
	}
	return s, nil
}

func (s *serveFan) publish(p []byte) error { return s.pub.publish(p) }

func (s *serveFan) pids() (servers, brokers []int) {
	for _, p := range s.procs {
		servers = append(servers, p.cmd.Process.Pid)
	}
	if s.viaNATS {
		brokers = s.env.brokers()
	}
	return servers, brokers
}

func (s *serveFan) close() error {
	if s.pub != nil {
		s.pub.close()
	}
	closeFanConns(s.clients)
	errs := make([]error, len(s.procs))
	var wg sync.WaitGroup
	for i, p := range s.procs {
		wg.Go(func() { errs[i] = p.stop() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// wsPublisher is a JSON-RPC client that publishes with $/publish calls
// without waiting for each reply (at most natsPubInFlight outstanding): the
// fan-out window bounds how far it runs ahead. A reply with an error, or
// the connection's end, fails the next publish.
type wsPublisher struct {
	ws    *websocket.Conn
	mid   []byte // the request between its id and the data
	buf   []byte
	id    uint64
	slots chan struct{}
	done  chan struct{} // the reader returned; err says why
	err   error
	quit  atomic.Bool
}

func dialPublisher(ctx context.Context, url, topic string) (*wsPublisher, error) {
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(fanReadLimit)
	p := &wsPublisher{ws: ws, slots: make(chan struct{}, natsPubInFlight), done: make(chan struct{}),
		mid: []byte(`,"method":"$/publish","params":{"topic":"` + topic + `","data":`)}
	go p.read() // owned: close waits for it
	return p, nil
}

func (p *wsPublisher) publish(data []byte) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	select {
	case <-p.done:
		return p.err
	case p.slots <- struct{}{}:
	}
	p.id++
	b := append(p.buf[:0], `{"jsonrpc":"2.0","id":`...)
	b = strconv.AppendUint(b, p.id, 10)
	b = append(append(append(b, p.mid...), data...), "}}"...)
	p.buf = b
	return p.ws.Write(context.Background(), websocket.MessageText, b)
}

func (p *wsPublisher) read() {
	defer close(p.done)
	buf := make([]byte, 4<<10)
	for {
		msg, err := readMessage(p.ws, &buf)
		if err != nil {
			if !p.quit.Load() {
				p.err = fmt.Errorf("publisher's connection: %w", err)
			} else {
				p.err = errors.New("publisher closed")
			}
			return
		}
		if strings.Contains(string(msg), `"error":`) {
			p.err = fmt.Errorf("$/publish: %s", msg)
			return
		}
		select {
		case <-p.slots:
		default:
		}
	}
}

func (p *wsPublisher) close() {
	p.quit.Store(true)
	p.ws.CloseNow()
	<-p.done
}

// natsDirectFan is nats.go on the run's nats-server: one subscription per
// subscriber on conns connections (0: one each), and a connection of its
// own for the publisher.
type natsDirectFan struct {
	env   *natsEnv
	pub   *nats.Conn
	conns []*nats.Conn
}

func (e *natsEnv) startDirectFan(ctx context.Context, subs []*fanSub, conns int) (fanTarget, error) {
	s := &natsDirectFan{env: e}
	fail := func(err error) (fanTarget, error) {
		_ = s.close()
		return nil, err
	}
	url := e.nats.URL
	var err error
	if conns == 0 {
		s.conns, err = dialEach(ctx, subs, func(ctx context.Context, sub *fanSub) (*nats.Conn, error) {
			nc, err := natsConnect(url)
			if err != nil {
				return nil, err
			}
			if err := sub.subscribeNATS(nc); err == nil {
				err = nc.FlushTimeout(10 * time.Second)
			}
			if err != nil {
				nc.Close()
				return nil, err
			}
			return nc, nil
		}, closeNATSConns)
		if err != nil {
			return fail(err)
		}
	} else {
		for range conns {
			nc, err := natsConnect(url)
			if err != nil {
				return fail(err)
			}
			s.conns = append(s.conns, nc)
		}
		for i, sub := range subs {
			if err := sub.subscribeNATS(s.conns[i%conns]); err != nil {
				return fail(err)
			}
		}
		for _, nc := range s.conns {
			if err := nc.FlushTimeout(10 * time.Second); err != nil {
				return fail(err)
			}
		}
	}
	if s.pub, err = natsConnect(url); err != nil {
		return fail(fmt.Errorf("publisher: %w", err))
	}
	return s, nil
}

func natsConnect(url string) (*nats.Conn, error) {
	// No reconnecting: a connection that drops ends its subscribers.
	return nats.Connect(url, nats.Name("wsrpc-bench"), nats.NoReconnect())
}

// subscribeNATS subscribes s on nc: nats.go's handler goroutine for the
// subscription counts what it delivers, and is waited for (through
// run.readers) once the connection has closed.
func (s *fanSub) subscribeNATS(nc *nats.Conn) error {
	s.run.readers.Add(1)
	sub, err := nc.Subscribe(natsSubject, func(m *nats.Msg) { s.receive(m.Data) })
	if err != nil {
		s.run.readers.Done()
		return err
	}
	sub.SetClosedHandler(func(string) { // after the handler's last call
		s.ended.Store(true)
		s.run.signal()
		s.run.readers.Done()
	})
	return nil
}

func closeNATSConns(conns []*nats.Conn) {
	for _, nc := range conns {
		if nc != nil {
			nc.Close()
		}
	}
}

func (s *natsDirectFan) publish(p []byte) error { return s.pub.Publish(natsSubject, p) }

func (s *natsDirectFan) pids() (servers, brokers []int) { return nil, s.env.brokers() }

func (s *natsDirectFan) close() error {
	if s.pub != nil {
		s.pub.Close()
	}
	closeNATSConns(s.conns)
	return nil
}

// natsReport is the -nats run's output.
type natsReport struct {
	Meta       meta      `json:"meta"`
	NATSServer string    `json:"nats_server"`
	Serve      string    `json:"serve_command"`
	Procs      int       `json:"procs"`
	Dir        string    `json:"dir"` // the temporary directory, removed at the end
	Rate       int       `json:"fixed_load_deliveries_per_s"`
	Window     int       `json:"window"`
	Rows       []natsRow `json:"rows"`
	Targets    []target  `json:"targets"`
}

type natsRow struct {
	fanResult
	// Over the saturation phase: the CPU time of the system's processes
	// (this one, the serve processes, nats-server where used) ÷ deliveries,
	// and the machine's other busy cores (other processes, and time charged
	// to none), which make a row unreliable when well above 0.1.
	CPUPerDlv  float64 `json:"cpu_ns_per_delivery"`
	OtherCores float64 `json:"other_cores"`
	// This row ÷ the best nats.go row of the cell, for each figure: the
	// highest deliveries/s (the row NATSRef) and the lowest p99 (NATSP99Ref);
	// and ÷ wsrpc-memory's.
	NATSRef    string      `json:"nats_ref,omitempty"`
	NATSP99Ref string      `json:"nats_p99_ref,omitempty"`
	VsNATS     *natsRatios `json:"vs_nats,omitempty"`
	VsMemory   *natsRatios `json:"vs_memory,omitempty"`
}

type natsRatios struct {
	PerSec float64 `json:"deliveries_per_s"` // higher is better
	P99    float64 `json:"fixed_load_p99"`   // lower is better
}

// natsTarget is issue 14's: wsrpc over NATS at least half of NATS itself.
const natsTarget = 0.5

func newNATSReport(cfg natsConfig, e *natsEnv, rows []fanResult) *natsReport {
	r := &natsReport{Meta: newMeta(), NATSServer: e.version, Serve: e.command(), Procs: cfg.procs, Dir: e.dir,
		Rate: cfg.fan.rate, Window: cfg.fan.window}
	r.Meta.Duration, r.Meta.Warm = cfg.fan.d.String(), cfg.fan.warm.String()
	div := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	ratios := func(c, perSec, p99 *fanResult) *natsRatios {
		if perSec == nil || p99 == nil || c.Skipped != "" {
			return nil
		}
		return &natsRatios{PerSec: div(c.Sat.PerSec, perSec.Sat.PerSec), P99: div(float64(c.Fixed.P99), float64(p99.Fixed.P99))}
	}
	// best is the row of c's cell among systems that better is true of
	// against every other.
	best := func(c *fanResult, better func(a, b *fanResult) bool, systems ...string) *fanResult {
		var top *fanResult
		for i := range rows {
			o := &rows[i]
			if o.Subs == c.Subs && o.Size == c.Size && o.Skipped == "" && slices.Contains(systems, o.System) &&
				(top == nil || better(o, top)) {
				top = o
			}
		}
		return top
	}
	faster := func(a, b *fanResult) bool { return a.Sat.PerSec > b.Sat.PerSec }
	quicker := func(a, b *fanResult) bool { return a.Fixed.P99 < b.Fixed.P99 }
	for i := range rows {
		c := &rows[i]
		row := natsRow{fanResult: *c}
		if c.Sat.Deliveries > 0 {
			own := c.Sat.Cores*float64(c.Sat.Elapsed) + float64(c.Sat.ServerCPU+c.Sat.BrokerCPU)
			row.CPUPerDlv = own / float64(c.Sat.Deliveries)
			row.OtherCores = max(0, c.Sat.MachineCores-own/float64(c.Sat.Elapsed))
		}
		ref, refP99 := best(c, faster, "nats-per-proc", "nats-per-sub"), best(c, quicker, "nats-per-proc", "nats-per-sub")
		if row.VsNATS = ratios(c, ref, refP99); row.VsNATS != nil {
			row.NATSRef, row.NATSP99Ref = ref.System, refP99.System
		}
		mem := best(c, faster, "wsrpc-memory")
		row.VsMemory = ratios(c, mem, mem)
		r.Rows = append(r.Rows, row)
	}
	for _, c := range r.Rows {
		if c.System != "wsrpc-nats" || c.Skipped != "" {
			continue
		}
		cell := fmt.Sprintf("wsrpc-nats, %d subs, %s", c.Subs, fmtSize(c.Size))
		if v := c.VsNATS; v != nil {
			t := target{Name: cell + ": deliveries/s vs nats.go (" + c.NATSRef + ", the faster)", Value: v.PerSec, Op: "≥", Limit: natsTarget, Unit: "×",
				Pass: v.PerSec >= natsTarget}
			if m := c.VsMemory; m != nil {
				t.Note = fmt.Sprintf("(vs wsrpc-memory %.2f×)", m.PerSec)
			}
			r.Targets = append(r.Targets, t)
		}
		lost := float64(c.Sat.Lost + c.Fixed.Lost)
		r.Targets = append(r.Targets, target{Name: cell + ": publications lost (both phases)", Value: lost, Op: "≤", Limit: 0, Pass: lost == 0})
	}
	return r
}

func (r *natsReport) writeTable(w io.Writer) error {
	var b strings.Builder
	m := r.Meta
	fmt.Fprintf(&b, "wsrpc-bench -nats  %s %s/%s, %d CPUs, loopback; nats-server %s with JetStream; one topic, one connection per subscriber\n"+
		"(nats-per-proc: %d connections); per cell: %s warm-up, saturation for %s (window %d), fixed load of %d deliveries/s for %s\n",
		m.Go, m.OS, m.Arch, m.CPUs, r.NATSServer, r.Procs, m.Warm, m.Duration, r.Window, r.Rate, m.Duration)
	fmt.Fprintf(&b, "wsrpc-nats: %d serve --nats processes, subscribers spread evenly, publisher ($/publish) on the first; wsrpc-memory: one serve\n"+
		"process, memory broker; nats-*: nats.go subscriptions, publisher nc.Publish. serve: %s\n", r.Procs, r.Serve)
	b.WriteString("pub/s: publications a second. Cores (CPU ÷ elapsed): bench, this process (subscribers, publisher); serve, the serve\n" +
		"processes; nats, nats-server; other, the rest of the machine's busy cores (/proc/stat): a row with other well above 0.1\n" +
		"was measured beside something else and is not comparable. CPU/dlv: bench + serve + nats CPU time ÷ deliveries;\n" +
		"wr/dlv: the serve processes' write system calls ÷ deliveries. ÷nats: ÷ the best nats.go row of the cell (dlv/s: the\n" +
		"highest, higher is better; p99: the lowest, lower is better); ÷mem: ÷ wsrpc-memory. lost: publications ×\n" +
		"subscribers − deliveries, after a settle of up to " + fanSettle.String() + ".\n\n")
	row := func(cols ...any) {
		fmt.Fprintf(&b, "%5s  %-6s  %-13s | %9s  %6s  %6s  %6s  %5s  %5s  %5s  %5s  %7s  %6s  %4s | %8s  %8s  %6s  %6s  %4s\n", cols...)
	}
	row("", "", "", "saturation", "", "", "", "", "", "", "", "", "", "", "fixed load", "", "", "", "")
	row("subs", "size", "system", "dlv/s", "pub/s", "÷nats", "÷mem", "bench", "serve", "nats", "other", "CPU/dlv", "wr/dlv", "lost",
		"p50", "p99", "÷nats", "÷mem", "lost")
	var prev string
	for _, c := range r.Rows {
		group := fmt.Sprint(c.Size, c.Subs)
		if prev != "" && group != prev {
			b.WriteString("\n")
		}
		prev = group
		if c.Skipped != "" {
			fmt.Fprintf(&b, "%5d  %-6s  %-13s | not run: %s\n", c.Subs, fmtSize(c.Size), c.System, c.Skipped)
			continue
		}
		var n1, n2, m1, m2 string
		if v := c.VsNATS; v != nil {
			n1, n2 = fmtRatio(v.PerSec), fmtRatio(v.P99)
		}
		if v := c.VsMemory; v != nil {
			m1, m2 = fmtRatio(v.PerSec), fmtRatio(v.P99)
		}
		cores := func(d time.Duration) string {
			if d == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f", float64(d)/float64(c.Sat.Elapsed))
		}
		writes := "-"
		if c.Sat.ServerWrites > 0 {
			writes = fmt.Sprintf("%.3f", float64(c.Sat.ServerWrites)/float64(c.Sat.Deliveries))
		}
		row(strconv.Itoa(c.Subs), fmtSize(c.Size), c.System,
			fmt.Sprintf("%.0f", c.Sat.PerSec), fmt.Sprintf("%.0f", float64(c.Sat.Publications)/c.Sat.Elapsed.Seconds()), n1, m1,
			fmt.Sprintf("%.2f", c.Sat.Cores), cores(c.Sat.ServerCPU), cores(c.Sat.BrokerCPU), fmtOther(c.Sat.MachineCores, c.OtherCores),
			fmtNs(c.CPUPerDlv), writes, fmtLost(c.Sat),
			fmtDur(c.Fixed.P50), fmtDur(c.Fixed.P99), n2, m2, fmtLost(c.Fixed))
	}
	fan := make([]fanResult, len(r.Rows))
	for i, c := range r.Rows {
		fan[i] = c.fanResult
	}
	writeFanFooter(&b, fan, " in this process", "issue 14", r.Targets)
	_, err := io.WriteString(w, b.String())
	return err
}
