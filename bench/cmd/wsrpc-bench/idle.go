package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
	"github.com/wsrpc/wsrpc/transport"
)

// The idle measurement runs the wsrpc server in a child process (this binary
// with -idle-server), so that its memory and goroutines are counted apart
// from the clients'. The child prints "LISTEN addr" and serves:
//
//	/ws            the wsrpc server (server.New, heartbeat on: every 30s by
//	               default, -idle-heartbeat; pong timeout 20s)
//	/stats         procStats as JSON; ?gc=1 collects garbage and returns
//	               freed memory to the OS first
//	/debug/pprof/  the standard profiles
//
// It exits when its standard input closes.

// procStats is what the child reports about itself.
type procStats struct {
	RSSKiB     int64  `json:"rss_kib"` // VmRSS from /proc/self/status
	Goroutines int    `json:"goroutines"`
	HeapInuse  uint64 `json:"heap_inuse_bytes"`
	HeapAlloc  uint64 `json:"heap_alloc_bytes"`
	StackInuse uint64 `json:"stack_inuse_bytes"`
	Sys        uint64 `json:"sys_bytes"`
	// Runtime memory outside heap objects and stacks.
	HeapIdleUnreleased uint64  `json:"heap_idle_unreleased_bytes"` // HeapIdle - HeapReleased
	MetaSys            uint64  `json:"meta_sys_bytes"`             // GCSys + MSpanSys + MCacheSys + OtherSys + BuckHashSys
	Conns              int     `json:"conns"`                      // open connections in the server's registry
	CPUSeconds         float64 `json:"cpu_s"`                      // user and system CPU time used so far (getrusage)
	GC                 bool    `json:"gc"`                         // collected (and freed to the OS) before reading
}

// fdHeadroom is the descriptors a process needs besides one per connection
// (listeners, the stats connection, standard files, the runtime's own).
const fdHeadroom = 200

// raiseNoFile raises RLIMIT_NOFILE's soft limit to the hard limit and
// returns the hard limit.
func raiseNoFile() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, err
		}
	}
	return lim.Max, nil
}

func readStats(srv *server.Server, gc bool) (procStats, error) {
	if gc {
		runtime.GC()
		debug.FreeOSMemory()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st := procStats{Goroutines: runtime.NumGoroutine(), HeapInuse: ms.HeapInuse, HeapAlloc: ms.HeapAlloc,
		StackInuse: ms.StackInuse, Sys: ms.Sys, Conns: len(srv.Conns()), GC: gc,
		HeapIdleUnreleased: ms.HeapIdle - ms.HeapReleased,
		MetaSys:            ms.GCSys + ms.MSpanSys + ms.MCacheSys + ms.OtherSys + ms.BuckHashSys}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return st, err
	}
	st.CPUSeconds = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return st, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			st.RSSKiB, err = strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return st, err
		}
	}
	return st, errors.New("no VmRSS in /proc/self/status")
}

// serveIdle is the child: the server under measurement.
// heartbeat is the server's heartbeat interval (negative: none).
func serveIdle(ctx context.Context, maxConns, memProfileRate int, heartbeat time.Duration, stdin io.Reader, stdout, stderr io.Writer) int {
	if memProfileRate > 0 {
		runtime.MemProfileRate = memProfileRate
	}
	if _, err := raiseNoFile(); err != nil {
		fmt.Fprintf(stderr, "wsrpc-bench child: raise RLIMIT_NOFILE: %v\n", err)
	}
	hub, err := pubsub.New()
	if err != nil {
		fmt.Fprintf(stderr, "wsrpc-bench child: %v\n", err)
		return 1
	}
	defer hub.Close()
	srv, err := server.New(echoHandler,
		server.WithHub(hub), // idle connections may hold subscriptions (-idle-subs)
		server.WithMaxConns(maxConns+16),
		rpc.WithHeartbeat(heartbeat, transport.DefaultPongTimeout))
	if err != nil {
		fmt.Fprintf(stderr, "wsrpc-bench child: %v\n", err)
		return 1
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", srv)
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		st, err := readStats(srv, r.URL.Query().Get("gc") == "1")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(st)
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(stderr, "wsrpc-bench child: %v\n", err)
		return 1
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }() // owned: waited for below
	fmt.Fprintf(stdout, "LISTEN %s\n", ln.Addr())

	eof := make(chan struct{})
	go func() { io.Copy(io.Discard, stdin); close(eof) }() // ends with the process if stdin never closes
	select {
	case <-eof:
	case <-ctx.Done():
	}
	srv.Close()
	hs.Close()
	<-served
	return 0
}

type idleConfig struct {
	conns   int
	wait    time.Duration
	profile string
	json    bool
	subs    int // subscriptions each connection makes (-idle-subs)
	// heartbeat is the child server's heartbeat interval (-idle-heartbeat;
	// 0: transport.DefaultHeartbeatInterval, negative: none).
	heartbeat time.Duration
	// child starts the server process; nil means this executable with
	// -idle-server.
	child func(ctx context.Context, args ...string) (*exec.Cmd, error)
}

// idleResult is the report of an idle run.
type idleResult struct {
	Meta           meta      `json:"meta"`
	Conns          int       `json:"conns"`
	Subs           int       `json:"subscriptions_per_conn"`
	Requested      int       `json:"requested_conns"`
	NoFileHard     uint64    `json:"rlimit_nofile_hard"`
	Capped         string    `json:"capped,omitempty"`
	Wait           string    `json:"idle_wait"`
	DialTime       string    `json:"dial_time"`
	Baseline       procStats `json:"baseline"`
	Half           procStats `json:"half"`
	Full           procStats `json:"full"`
	Peak           procStats `json:"peak_during_wait"` // highest of each figure, sampled every 250ms, no GC
	AfterWait      procStats `json:"after_wait"`
	AfterWaitNoGC  procStats `json:"after_wait_no_gc"`
	ClientsDropped int       `json:"clients_dropped"`
	Heartbeat      string    `json:"heartbeat_interval"` // the server's, "off" when none

	// The server's CPU time during the wait, the stats polled every 250 ms
	// included; with the heartbeat on, divided by the rounds the wait
	// spans (wait / interval).
	WaitCPUSeconds    float64 `json:"wait_cpu_s"`
	HeartbeatRounds   float64 `json:"heartbeat_rounds,omitempty"`
	CPUPerRoundMs     float64 `json:"cpu_per_heartbeat_round_ms,omitempty"`
	CPUPerConnRoundUs float64 `json:"cpu_per_conn_per_round_us,omitempty"`

	RSSPerConnKiB         float64  `json:"rss_per_conn_kib"`           // after GC, after the wait
	RSSPerConnNoGCKiB     float64  `json:"rss_per_conn_no_gc_kib"`     // as found, after the wait
	HeapPerConnKiB        float64  `json:"heap_inuse_per_conn_kib"`    // after GC
	StackPerConnKiB       float64  `json:"stack_inuse_per_conn_kib"`   // after GC
	GoroutinesPerConn     float64  `json:"goroutines_per_conn"`        // after the wait
	GoroutinesPerConnHalf float64  `json:"goroutines_per_conn_half"`   // with half the connections
	GoroutinesPerConnFull float64  `json:"goroutines_per_conn_full"`   // right after dialing all
	GoroutineStacks       []stack  `json:"goroutine_stacks"`           // the child's, grouped, most frequent first
	HeapProfile           string   `json:"heap_profile,omitempty"`     // path of the child's heap profile
	ProfileRate           int      `json:"mem_profile_rate,omitempty"` // the child's MemProfileRate, when set
	Targets               []target `json:"targets"`
}

// stack is one group of identical goroutine stacks in the child.
type stack struct {
	Count  int      `json:"count"`
	Frames []string `json:"frames"` // innermost first, runtime frames left out
}

func runIdle(ctx context.Context, cfg idleConfig, stdout, stderr io.Writer) int {
	res, err := measureIdle(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "wsrpc-bench: idle: %v\n", err)
		return 1
	}
	return printReport(stdout, stderr, cfg.json, res, res.writeTable)
}

// selfChild runs this executable with args.
func selfChild(ctx context.Context, args ...string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return exec.CommandContext(ctx, exe, args...), nil
}

// measureIdle starts the child server, opens the connections in two halves,
// lets them idle for cfg.wait and reads the child's figures at each step.
func measureIdle(ctx context.Context, cfg idleConfig, progress io.Writer) (*idleResult, error) {
	// The child's standard error is copied to progress from another
	// goroutine (unless it is a file).
	progress = &lockedWriter{w: progress}
	res := &idleResult{Meta: newMeta(), Requested: cfg.conns, Conns: cfg.conns, Wait: cfg.wait.String(), Subs: cfg.subs}
	hard, err := raiseNoFile()
	if err != nil {
		return nil, fmt.Errorf("raise RLIMIT_NOFILE: %w", err)
	}
	res.NoFileHard = hard
	// The two ends live in different processes: each needs one descriptor
	// per connection plus headroom.
	if need := uint64(cfg.conns + fdHeadroom); hard < need {
		res.Conns = int(hard) - fdHeadroom
		res.Capped = fmt.Sprintf("RLIMIT_NOFILE hard limit %d < %d connections + %d: capped to %d",
			hard, cfg.conns, fdHeadroom, res.Conns)
		fmt.Fprintf(progress, "idle: %s\n", res.Capped)
	}
	n := res.Conns
	if n < 2 {
		return nil, errors.New("need at least 2 connections")
	}

	start := cfg.child
	if start == nil {
		start = selfChild
	}
	childCtx, killChild := context.WithCancel(context.Background())
	defer killChild()
	if cfg.heartbeat == 0 {
		cfg.heartbeat = transport.DefaultHeartbeatInterval
	}
	res.Heartbeat = cfg.heartbeat.String()
	if cfg.heartbeat < 0 {
		res.Heartbeat = "off"
	}
	args := []string{"-idle-server", "-idle-max", strconv.Itoa(n), "-idle-heartbeat", cfg.heartbeat.String()}
	if cfg.profile != "" {
		// Every allocation sampled, for an exact profile. The records this
		// keeps per live object add to the RSS measured.
		args = append(args, "-idle-memprofilerate", "1")
		res.ProfileRate = 1
	}
	cmd, err := start(childCtx, args...)
	if err != nil {
		return nil, err
	}
	cmd.Stderr = progress
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the server process: %w", err)
	}
	exited := make(chan error, 1)
	lines := bufio.NewScanner(out)
	if !lines.Scan() {
		stdin.Close()
		return nil, fmt.Errorf("the server process printed no address: %w", cmd.Wait())
	}
	addr, ok := strings.CutPrefix(lines.Text(), "LISTEN ")
	if !ok {
		stdin.Close()
		cmd.Wait()
		return nil, fmt.Errorf("the server process said %q", lines.Text())
	}
	go func() { // owned: waited for in the deferred stop below
		io.Copy(io.Discard, out)
		exited <- cmd.Wait()
	}()
	defer func() {
		stdin.Close() // the child closes its server and exits
		t := time.NewTimer(30 * time.Second)
		defer t.Stop()
		select {
		case <-exited:
		case <-t.C:
			killChild() // kills our own child process, by the handle we started it with
			<-exited
		}
	}()

	sc := &statsClient{base: "http://" + addr, hc: &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}}
	defer sc.hc.CloseIdleConnections()
	fmt.Fprintf(progress, "idle: server process %d on %s; baseline\n", cmd.Process.Pid, addr)
	if res.Baseline, err = sc.get(ctx, true); err != nil {
		return nil, err
	}

	var clients []*transport.Conn
	var cmu sync.Mutex
	defer func() { closeAll(clients) }()
	url := "ws://" + addr + "/ws"
	dialStart := time.Now()
	dialTo := func(total int) error {
		fmt.Fprintf(progress, "idle: opening connections up to %d\n", total)
		if err := dialMany(ctx, url, total-len(clients), cfg.subs, &clients, &cmu); err != nil {
			return err
		}
		return sc.waitConns(ctx, total)
	}
	if err := dialTo(n / 2); err != nil {
		return nil, err
	}
	// A connection's writer goroutine and handler goroutines exit after a
	// second without work: read the counts once they have.
	settle := func() bool { return sleepCtx(ctx, settleIdle) }
	if !settle() {
		return nil, ctx.Err()
	}
	if res.Half, err = sc.get(ctx, true); err != nil {
		return nil, err
	}
	if err := dialTo(n); err != nil {
		return nil, err
	}
	res.DialTime = time.Since(dialStart).Round(time.Millisecond).String()
	if !settle() {
		return nil, ctx.Err()
	}
	if res.Full, err = sc.get(ctx, true); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "idle: %d connections open; idle for %s\n", n, cfg.wait)
	// Sample while idle: the heartbeat's pings come and go in between.
	res.Peak = res.Full
	deadline := time.NewTimer(cfg.wait)
	tick := time.NewTicker(250 * time.Millisecond)
	for waiting := true; waiting; {
		select {
		case <-deadline.C:
			waiting = false
		case <-tick.C:
			st, err := sc.get(ctx, false)
			if err != nil {
				tick.Stop()
				return nil, err
			}
			res.Peak.Goroutines = max(res.Peak.Goroutines, st.Goroutines)
			res.Peak.RSSKiB = max(res.Peak.RSSKiB, st.RSSKiB)
			res.Peak.HeapInuse = max(res.Peak.HeapInuse, st.HeapInuse)
			res.Peak.StackInuse = max(res.Peak.StackInuse, st.StackInuse)
		case <-ctx.Done():
			deadline.Stop()
			tick.Stop()
			return nil, ctx.Err()
		}
	}
	tick.Stop()
	if res.AfterWaitNoGC, err = sc.get(ctx, false); err != nil {
		return nil, err
	}
	if res.AfterWait, err = sc.get(ctx, true); err != nil {
		return nil, err
	}
	for _, c := range clients {
		if c.Err() != nil {
			res.ClientsDropped++
		}
	}
	if res.GoroutineStacks, err = sc.goroutines(ctx); err != nil {
		return nil, err
	}

	b, h, f, a := res.Baseline, res.Half, res.Full, res.AfterWait
	res.WaitCPUSeconds = res.AfterWaitNoGC.CPUSeconds - f.CPUSeconds
	if cfg.heartbeat > 0 {
		res.HeartbeatRounds = cfg.wait.Seconds() / cfg.heartbeat.Seconds()
		res.CPUPerRoundMs = res.WaitCPUSeconds / res.HeartbeatRounds * 1e3
		res.CPUPerConnRoundUs = res.CPUPerRoundMs * 1e3 / float64(n)
	}
	perConn := func(after, before int64, conns int) float64 { return float64(after-before) / float64(conns) }
	res.RSSPerConnKiB = perConn(a.RSSKiB, b.RSSKiB, n)
	res.RSSPerConnNoGCKiB = perConn(res.AfterWaitNoGC.RSSKiB, b.RSSKiB, n)
	res.HeapPerConnKiB = perConn(int64(a.HeapInuse), int64(b.HeapInuse), n) / 1024
	res.StackPerConnKiB = perConn(int64(a.StackInuse), int64(b.StackInuse), n) / 1024
	res.GoroutinesPerConn = perConn(int64(a.Goroutines), int64(b.Goroutines), n)
	res.GoroutinesPerConnHalf = perConn(int64(h.Goroutines), int64(b.Goroutines), n/2)
	res.GoroutinesPerConnFull = perConn(int64(f.Goroutines), int64(b.Goroutines), n)

	fixed := res.ClientsDropped == 0 && a.Conns == n &&
		res.GoroutinesPerConn == math.Trunc(res.GoroutinesPerConn) &&
		res.GoroutinesPerConnHalf == res.GoroutinesPerConn && res.GoroutinesPerConnFull == res.GoroutinesPerConn
	rss := target{Name: fmt.Sprintf("idle server connection RSS (%d conns, after GC)", n),
		Value: res.RSSPerConnKiB, Op: "≤", Limit: 40, Unit: " KiB", Pass: res.RSSPerConnKiB <= 40}
	if cfg.subs == 2 { // issue 13: idle subscribers, beside centrifuge's 29 KiB (22 in its memory-saving mode)
		res.Targets = append(res.Targets, target{Name: fmt.Sprintf("idle connection holding 2 subscriptions (%d conns, after GC)", n),
			Value: res.RSSPerConnKiB, Op: "≤", Limit: 22, Unit: " KiB", Pass: res.RSSPerConnKiB <= 22})
	}
	res.Targets = append(res.Targets, rss, target{
		Name:  "goroutines per idle server connection: same at N/2, N and after the wait",
		Value: res.GoroutinesPerConn, Op: "=", Limit: math.Round(res.GoroutinesPerConn), Unit: "", Pass: fixed,
		Note: fmt.Sprintf("N/2: %.2f, N: %.2f, after %s: %.2f", res.GoroutinesPerConnHalf,
			res.GoroutinesPerConnFull, cfg.wait, res.GoroutinesPerConn)})

	if cfg.profile != "" || !rss.Pass {
		path := cfg.profile
		if path == "" {
			path = filepath.Join(os.TempDir(), fmt.Sprintf("wsrpc-bench-idle-heap-%d.pprof", os.Getpid()))
		}
		if err := sc.save(ctx, "/debug/pprof/heap?gc=1", path); err != nil {
			return nil, err
		}
		res.HeapProfile = path
	}
	return res, nil
}

// dialMany opens k connections, a few at a time, and appends them to *out.
// Each makes subs subscriptions: one to a topic they all share, the others
// to topics of its own (a topic per user, say).
func dialMany(ctx context.Context, url string, k, subs int, out *[]*transport.Conn, mu *sync.Mutex) error {
	opts := &transport.DialOptions{
		Subprotocols: []string{rpc.SubprotocolBinary},
		// Minimal clients: the server's heartbeat is what is measured.
		ConnOptions: transport.ConnOptions{HeartbeatInterval: -1},
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(k) {
					return
				}
				c, err := transport.Dial(ctx, url, opts)
				if err != nil {
					errs <- err
					return
				}
				if err := idleSubscribe(ctx, c, i, subs); err != nil {
					c.CloseNow()
					errs <- err
					return
				}
				mu.Lock()
				*out = append(*out, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	return nil
}

// idleSubscribe makes connection i's subscriptions with wsrpc.v1 requests
// and waits for each reply.
func idleSubscribe(ctx context.Context, c *transport.Conn, i int64, subs int) error {
	for j := range subs {
		topic := "idle.all"
		if j > 0 {
			topic = fmt.Sprintf("idle.user.%d.%d", i, j)
		}
		params := fmt.Sprintf(`{"topic":%q}`, topic)
		// kind 1 (request), no extensions, id j+1, no timeout, the method, the params
		msg := append([]byte{1, 0, byte(j + 1), 0, byte(len(pubsub.MethodSubscribe))}, pubsub.MethodSubscribe...)
		msg = append(msg, params...)
		if err := c.Send(ctx, transport.Message{Type: transport.Binary, Data: msg}); err != nil {
			return err
		}
		select {
		case m, ok := <-c.Recv():
			if !ok {
				return fmt.Errorf("subscribe: connection ended: %w", c.Err())
			}
			if len(m.Data) == 0 || m.Data[0] != 3 {
				return fmt.Errorf("subscribe to %s refused: % x", topic, m.Data)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// closeAll drops the client connections, many at a time.
func closeAll(cs []*transport.Conn) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(cs)); i = next.Add(1) - 1 {
				cs[i].CloseNow()
			}
		})
	}
	wg.Wait()
}

// statsClient talks to the child's HTTP endpoints.
type statsClient struct {
	base string
	hc   *http.Client
}

func (s *statsClient) fetch(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(msg)))
	}
	return resp, nil
}

func (s *statsClient) get(ctx context.Context, gc bool) (procStats, error) {
	path := "/stats"
	if gc {
		path += "?gc=1"
	}
	var st procStats
	resp, err := s.fetch(ctx, path)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// waitConns polls until the server has n connections in its registry.
func (s *statsClient) waitConns(ctx context.Context, n int) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := s.get(ctx, false)
		if err != nil {
			return err
		}
		if st.Conns == n {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("server has %d connections, want %d: %w", st.Conns, n, ctx.Err())
		}
	}
}

func (s *statsClient) save(ctx context.Context, path, file string) error {
	resp, err := s.fetch(ctx, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// goroutines groups the child's goroutines by stack (debug=1 format).
func (s *statsClient) goroutines(ctx context.Context) ([]stack, error) {
	resp, err := s.fetch(ctx, "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var out []stack
	for block := range strings.SplitSeq(string(body), "\n\n") {
		lines := strings.Split(strings.TrimSpace(block), "\n")
		if strings.HasPrefix(lines[0], "goroutine profile:") {
			lines = lines[1:] // the header shares the first block
		}
		if len(lines) == 0 {
			continue
		}
		count, _, ok := strings.Cut(lines[0], " @ ")
		n, err := strconv.Atoi(count)
		if !ok || err != nil {
			continue
		}
		st := stack{Count: n}
		for _, l := range lines[1:] {
			// "#\t0x4a1b2c\tnet/http.(*conn).serve+0x5f1\t/usr/.../server.go:2102"
			fields := strings.Split(strings.TrimPrefix(l, "#"), "\t")
			if len(fields) < 3 {
				continue
			}
			fn := fields[2]
			if i := strings.LastIndex(fn, "+0x"); i >= 0 {
				fn = fn[:i]
			}
			if strings.HasPrefix(fn, "runtime.") || strings.HasPrefix(fn, "internal/poll.") {
				continue
			}
			st.Frames = append(st.Frames, fn)
		}
		out = append(out, st)
	}
	slices.SortStableFunc(out, func(a, b stack) int { return b.Count - a.Count })
	return out, nil
}

func (r *idleResult) writeTable(w io.Writer) error {
	var b strings.Builder
	m := r.Meta
	fmt.Fprintf(&b, "wsrpc-bench -idle  %s %s/%s, %d CPUs; server in its own process (server.New, heartbeat %s, pong timeout 20s), loopback\n",
		m.Go, m.OS, m.Arch, m.CPUs, r.Heartbeat)
	fmt.Fprintf(&b, "connections: %d (asked %d; RLIMIT_NOFILE hard limit %d, raised in both processes)\n",
		r.Conns, r.Requested, r.NoFileHard)
	if r.Capped != "" {
		fmt.Fprintf(&b, "CAPPED: %s\n", r.Capped)
	}
	fmt.Fprintf(&b, "dialed in %s; idle for %s before the last reading; client connections dropped meanwhile: %d\n\n",
		r.DialTime, r.Wait, r.ClientsDropped)
	row := func(cols ...string) {
		fmt.Fprintf(&b, "%-26s  %6s  %10s  %10s  %10s  %11s  %10s  %10s\n", cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7])
	}
	row("server process", "conns", "RSS KiB", "heap KiB", "stack KiB", "goroutines", "idle KiB", "meta KiB")
	for _, s := range []struct {
		name string
		st   procStats
	}{
		{"baseline (GC)", r.Baseline}, {"half (GC)", r.Half}, {"all (GC)", r.Full},
		{"peak while idle (no GC)", r.Peak},
		{"after " + r.Wait + " (no GC)", r.AfterWaitNoGC}, {"after " + r.Wait + " (GC)", r.AfterWait},
	} {
		idle, meta := strconv.FormatUint(s.st.HeapIdleUnreleased/1024, 10), strconv.FormatUint(s.st.MetaSys/1024, 10)
		if s.st.MetaSys == 0 {
			idle, meta = "", "" // the peak row has only the figures sampled
		}
		row(s.name, strconv.Itoa(s.st.Conns), strconv.FormatInt(s.st.RSSKiB, 10),
			strconv.FormatUint(s.st.HeapInuse/1024, 10), strconv.FormatUint(s.st.StackInuse/1024, 10),
			strconv.Itoa(s.st.Goroutines), idle, meta)
	}
	b.WriteString("(idle KiB: heap pages free but not returned to the OS; meta KiB: GC, span and other runtime metadata)\n")
	fmt.Fprintf(&b, "\nper idle server connection holding %d subscriptions (after %s, minus baseline, / %d):\n", r.Subs, r.Wait, r.Conns)
	fmt.Fprintf(&b, "  RSS          %7.1f KiB after GC   (%.1f KiB as found, without forcing GC)\n", r.RSSPerConnKiB, r.RSSPerConnNoGCKiB)
	fmt.Fprintf(&b, "  heap in use  %7.1f KiB\n", r.HeapPerConnKiB)
	fmt.Fprintf(&b, "  stacks       %7.1f KiB\n", r.StackPerConnKiB)
	fmt.Fprintf(&b, "  goroutines   %7.2f   (N/2: %.2f, N: %.2f; peak while idle: %.2f)\n", r.GoroutinesPerConn,
		r.GoroutinesPerConnHalf, r.GoroutinesPerConnFull, float64(r.Peak.Goroutines-r.Baseline.Goroutines)/float64(r.Conns))
	fmt.Fprintf(&b, "\nserver CPU during the %s wait (stats polled every 250 ms included): %.3f s", r.Wait, r.WaitCPUSeconds)
	if r.HeartbeatRounds > 0 {
		fmt.Fprintf(&b, "; %.1f heartbeat rounds of %s: %.1f ms a round, %.2f µs a connection", r.HeartbeatRounds, r.Heartbeat,
			r.CPUPerRoundMs, r.CPUPerConnRoundUs)
		if r.HeartbeatRounds != math.Trunc(r.HeartbeatRounds) {
			b.WriteString(" (approximate: a wait that is not a multiple of the interval holds a whole number of pings per connection, not this fraction)")
		}
	}
	b.WriteString("\n")
	b.WriteString("\nserver goroutines by stack (count, innermost non-runtime frames):\n")
	for i, s := range r.GoroutineStacks {
		if i == 8 {
			break
		}
		fmt.Fprintf(&b, "  %6d  %s\n", s.Count, strings.Join(s.Frames[:min(len(s.Frames), 3)], " ← "))
	}
	if r.HeapProfile != "" {
		fmt.Fprintf(&b, "\nserver heap profile: %s\n  go tool pprof -sample_index=inuse_space -top %s\n", r.HeapProfile, r.HeapProfile)
		if r.ProfileRate == 1 {
			b.WriteString("  (-idle-profile: the server sampled every allocation, which adds a record per live object\n" +
				"  to the RSS above; measure without -idle-profile for the target)\n")
		}
	}
	b.WriteString("\nTargets\n")
	writeTargets(&b, r.Targets)
	_, err := io.WriteString(w, b.String())
	return err
}

// lockedWriter serialises writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// settleIdle is how long the idle measurement waits after dialing before it
// counts goroutines: a connection's writer and handler goroutines exit after
// a second without work.
const settleIdle = 1500 * time.Millisecond

// sleepCtx waits d, reporting false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
