package natsbroker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/internal/natstest"
	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
)

// wsrpcBinary builds this module's wsrpc command (the go command caches
// the work, so each test that needs it builds it into its own directory).
func wsrpcBinary(t *testing.T) string {
	t.Helper()
	bin := t.TempDir() + "/wsrpc"
	out, err := exec.Command("go", "build", "-o", bin, "./cmd/wsrpc").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/wsrpc: %v\n%s", err, out)
	}
	return bin
}

// serveProc is one `wsrpc serve --nats` process.
type serveProc struct {
	t      *testing.T
	bin    string
	args   []string
	addr   string // host:port, fixed after the first start
	url    string
	cmd    *exec.Cmd
	exited chan error
	out    *lockedBuffer
}

var listening = regexp.MustCompile(`listening on (ws://([^/\s"]+)/rpc)`)

func startServe(t *testing.T, bin, natsURL string) *serveProc {
	t.Helper()
	p := &serveProc{t: t, bin: bin, addr: "127.0.0.1:0", args: []string{"serve", "--nats", natsURL, "--drain-timeout", "5s"}}
	p.start()
	t.Cleanup(p.stop)
	return p
}

func (p *serveProc) start() {
	p.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		p.out = &lockedBuffer{}
		p.cmd = exec.Command(p.bin, append(p.args, "--addr", p.addr)...)
		p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
		if err := p.cmd.Start(); err != nil {
			p.t.Fatal(err)
		}
		p.exited = make(chan error, 1)
		cmd, exited := p.cmd, p.exited
		go func() { exited <- cmd.Wait() }() // stop receives it
		for {
			if m := listening.FindStringSubmatch(p.out.String()); m != nil {
				p.url, p.addr = m[1], m[2]
				return
			}
			select {
			case err := <-exited:
				p.cmd, p.exited = nil, nil
				if time.Now().After(deadline) {
					p.t.Fatalf("wsrpc serve exited: %v\n%s", err, p.out.String())
				}
				time.Sleep(100 * time.Millisecond) // the port may still be held
			case <-time.After(20 * time.Millisecond):
				if time.Now().After(deadline) {
					_ = cmd.Process.Kill()
					<-exited
					p.cmd, p.exited = nil, nil
					p.t.Fatalf("wsrpc serve did not listen in 15s:\n%s", p.out.String())
				}
				continue
			}
			break
		}
	}
}

// stop ends the process gracefully (SIGTERM: it refuses new work, tells
// its clients, drains, closes) and waits for it.
func (p *serveProc) stop() {
	if p.cmd == nil {
		return
	}
	if !endProcess(p.cmd.Process, p.exited, syscall.SIGTERM, 15*time.Second) {
		p.t.Errorf("wsrpc serve did not stop on SIGTERM within 15s:\n%s", p.out.String())
	}
	p.cmd, p.exited = nil, nil
}

// endProcess sends sig to proc and waits for its exit on exited, up to
// wait; past it, it kills proc, waits, and reports false.
func endProcess(proc *os.Process, exited <-chan error, sig os.Signal, wait time.Duration) bool {
	_ = proc.Signal(sig)
	select {
	case <-exited:
		return true
	case <-time.After(wait):
		_ = proc.Kill()
		<-exited
		return false
	}
}

// kill ends the process at once, as a crash would.
func (p *serveProc) kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	p.cmd, p.exited = nil, nil
}

func (p *serveProc) restart() {
	p.stop()
	p.start()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func dialClient(t *testing.T, url string, opts ...client.Option) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// load is a publication the test publishes: who and its number.
type load struct {
	From string `json:"from"`
	I    int    `json:"i"`
}

// ledger counts what publishers were told and what the subscriber got.
type ledger struct {
	mu        sync.Mutex
	confirmed map[load]pubsub.Position // published, with the position the publisher was told
	at        map[load]time.Time       // when it was confirmed
	refused   int                      // publish calls refused (unavailable) and made again
	unknown   map[load]bool            // outcome unknown (the connection dropped mid-call)
	delivered map[load]int
	offsets   []uint64
	gaps      int
	lastAt    time.Time     // when the last delivery came
	pause     time.Duration // the longest time between two deliveries
}

func newLedger() *ledger {
	return &ledger{confirmed: map[load]pubsub.Position{}, at: map[load]time.Time{}, unknown: map[load]bool{}, delivered: map[load]int{}}
}

// publisher publishes n numbered publications on topic through c, retrying
// what never started, pausing every between publications.
func (l *ledger) publisher(ctx context.Context, c *client.Client, from, topic string, n int, every time.Duration) error {
	for i := range n {
		ld := load{From: from, I: i}
		for {
			pos, err := c.Publish(ctx, topic, ld)
			var re *rpc.Error
			switch {
			case err == nil:
				l.mu.Lock()
				l.confirmed[ld], l.at[ld] = pos, time.Now()
				l.mu.Unlock()
			case errors.Is(err, rpc.ErrConnectionLost) || errors.As(err, &re) && re.Code == rpc.CodeInternalError:
				l.mu.Lock()
				l.unknown[ld] = true
				l.mu.Unlock()
			case errors.As(err, &re) && re.Code == rpc.CodeUnavailable:
				l.mu.Lock()
				l.refused++
				l.mu.Unlock()
				time.Sleep(20 * time.Millisecond) // refused, not published: again
				continue
			case ctx.Err() != nil:
				return ctx.Err()
			default:
				return fmt.Errorf("publish %+v: %w", ld, err)
			}
			break
		}
		if every > 0 {
			time.Sleep(every)
		}
	}
	return nil
}

// eachLoad calls record with each publication s delivers until ctx ends,
// and the load it carries (one that carries none is passed with bad set).
func eachLoad(ctx context.Context, s *client.Subscription, record func(p pubsub.Publication, ld load, bad bool)) {
	for {
		select {
		case p, ok := <-s.C():
			if !ok {
				return
			}
			var ld load
			err := json.Unmarshal(p.Data, &ld)
			record(p, ld, err != nil)
		case <-ctx.Done():
			return
		}
	}
}

// receive records what s delivers until ctx ends.
func (l *ledger) receive(ctx context.Context, s *client.Subscription) {
	eachLoad(ctx, s, func(p pubsub.Publication, ld load, bad bool) {
		if bad {
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		l.delivered[ld]++
		l.offsets = append(l.offsets, p.Offset)
		if now := time.Now(); !l.lastAt.IsZero() {
			l.pause = max(l.pause, now.Sub(l.lastAt))
			l.lastAt = now
		} else {
			l.lastAt = now
		}
		if p.Gap {
			l.gaps++
		}
	})
}

// settle waits until every confirmed publication was delivered, up to 30 s.
func (l *ledger) settle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		l.mu.Lock()
		missing := 0
		for ld := range l.confirmed {
			if l.delivered[ld] == 0 {
				missing++
			}
		}
		l.mu.Unlock()
		if missing == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// report counts the publications confirmed but not delivered (lost), and
// those delivered more than once (duplicated), and checks offsets grew.
func (l *ledger) report(t *testing.T) (lost, dup int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for ld := range l.confirmed {
		if l.delivered[ld] == 0 {
			lost++
		}
	}
	for _, n := range l.delivered {
		if n > 1 {
			dup += n - 1
		}
	}
	if !sort.SliceIsSorted(l.offsets, func(i, j int) bool { return l.offsets[i] < l.offsets[j] }) {
		t.Errorf("offsets delivered out of order")
	}
	t.Logf("confirmed %d, refused and made again %d, outcome unknown %d, delivered %d distinct, lost %d, duplicated %d, deliveries flagged as after a gap %d, longest pause between deliveries %v",
		len(l.confirmed), l.refused, len(l.unknown), len(l.delivered), lost, dup, l.gaps, l.pause.Round(time.Millisecond))
	return lost, dup
}

// loadRun is one subscriber and its publishers, recording into a ledger.
type loadRun struct {
	t        *testing.T
	l        *ledger
	wg       sync.WaitGroup
	pctx     context.Context
	stopPubs context.CancelFunc
	stopRecv context.CancelFunc
	errs     chan error
	started  int
	forTopic string
}

// startLoad subscribes sub to topic and records what it delivers.
func startLoad(t *testing.T, ctx context.Context, sub *client.Client, topic string) *loadRun {
	t.Helper()
	s, err := sub.Subscribe(ctx, topic, client.Buffer(1024))
	if err != nil {
		t.Fatal(err)
	}
	r := &loadRun{t: t, l: newLedger(), errs: make(chan error, 16), forTopic: topic}
	var rctx context.Context
	rctx, r.stopRecv = context.WithCancel(ctx)
	r.pctx, r.stopPubs = context.WithCancel(ctx)
	r.wg.Go(func() { r.l.receive(rctx, s) })
	return r
}

// publish starts a publisher of n publications through c, every apart.
func (r *loadRun) publish(c *client.Client, from string, n int, every time.Duration) {
	r.started++
	r.wg.Go(func() { r.errs <- r.l.publisher(r.pctx, c, from, r.forTopic, n, every) })
}

// finish stops the publishers (at once if stop is set, else when they are
// done), waits for the subscriber to have every confirmed publication, and
// reports the counts.
func (r *loadRun) finish(stop bool) (lost, dup int) {
	r.t.Helper()
	if stop {
		r.stopPubs()
	}
	for range r.started {
		if err := <-r.errs; err != nil && !errors.Is(err, context.Canceled) {
			r.t.Fatal(err)
		}
	}
	r.stopPubs()
	r.l.settle(r.t)
	r.stopRecv()
	r.wg.Wait()
	return r.l.report(r.t)
}

// Three wsrpc serve processes on one NATS: a subscriber on A receives
// what clients publish on B and C, 10,000 publications in offset order,
// none lost or duplicated, and what each process's own Go code publishes.
func TestThreeServeProcesses(t *testing.T) {
	nats := natstest.Start(t, true)
	bin := wsrpcBinary(t)
	a, b, c := startServe(t, bin, nats.URL), startServe(t, bin, nats.URL), startServe(t, bin, nats.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	sub := dialClient(t, a.url)
	r := startLoad(t, ctx, sub, "chat.load")
	for _, p := range []*serveProc{b, c} {
		for k := range 2 { // two publishing clients per process
			r.publish(dialClient(t, p.url), fmt.Sprintf("%s/%d", p.addr, k), 2500, 0)
		}
	}
	lost, dup := r.finish(false)
	l := r.l
	if len(l.confirmed) != 10_000 || lost != 0 || dup != 0 || len(l.unknown) != 0 {
		t.Fatalf("%d confirmed (want 10000), %d lost, %d duplicated, %d unknown", len(l.confirmed), lost, dup, len(l.unknown))
	}
	// Offsets run 1..10000 with no hole, and each is what its publisher
	// was told.
	for i, off := range l.offsets {
		if off != uint64(i+1) {
			t.Fatalf("delivery %d has offset %d", i, off)
		}
	}
	seen := map[uint64]bool{}
	for _, pos := range l.confirmed {
		if seen[pos.Offset] {
			t.Fatalf("offset %d told to two publishers", pos.Offset)
		}
		seen[pos.Offset] = true
	}

	// Each process's clock (Go code in the server) publishes the time on
	// "time" every second: a subscriber on A sees each second from all
	// three.
	ts, err := sub.Subscribe(ctx, "time")
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for {
		select {
		case p := <-ts.C():
			var when string
			_ = json.Unmarshal(p.Data, &when)
			if count[when]++; count[when] == 3 {
				return
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("no second published by all three processes within 15s: %v", count)
		}
	}
}

// Each process is restarted in turn while clients publish and a subscriber
// listens: clients move to another process, the subscriber recovers from
// JetStream there, and nothing confirmed is lost or duplicated (counted at
// the application, the subscription's channel).
func TestRestartEachProcessUnderLoad(t *testing.T) {
	for _, kill := range []bool{false, true} {
		name := "graceful"
		if kill {
			name = "killed"
		}
		t.Run(name, func(t *testing.T) { restartUnderLoad(t, kill) })
	}
}

// restartUnderLoad restarts each process in turn, by SIGTERM (a rolling
// deployment) or SIGKILL (a crash: the calls it had in flight end with an
// unknown outcome, which the ledger sets apart).
func restartUnderLoad(t *testing.T, kill bool) {
	nats := natstest.Start(t, true)
	bin := wsrpcBinary(t)
	procs := []*serveProc{startServe(t, bin, nats.URL), startServe(t, bin, nats.URL), startServe(t, bin, nats.URL)}
	urls := []string{procs[0].url, procs[1].url, procs[2].url}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	opts := func(first int) []client.Option {
		return []client.Option{
			client.WithEndpoints(urls[(first+1)%3], urls[(first+2)%3]),
			client.WithBackoff(20*time.Millisecond, 200*time.Millisecond),
		}
	}
	r := startLoad(t, ctx, dialClient(t, urls[0], opts(0)...), "chat.roll")
	for k := range 3 {
		r.publish(dialClient(t, urls[k], opts(k)...), fmt.Sprint("p", k), 1<<30, 2*time.Millisecond)
	}
	start := time.Now()
	for _, p := range procs {
		time.Sleep(time.Second)
		if kill {
			p.kill()
			p.start()
		} else {
			p.restart()
		}
	}
	time.Sleep(time.Second)
	t.Logf("load for %v with three restarts", time.Since(start).Round(time.Millisecond))
	if lost, dup := r.finish(true); lost != 0 || dup != 0 {
		t.Fatalf("%d lost, %d duplicated", lost, dup)
	}
	l := r.l
	if len(l.confirmed) < 500 {
		t.Fatalf("only %d publications confirmed: the load did not run", len(l.confirmed))
	}
}

// nats-server is killed mid-stream and started again a second later (its
// store kept): publishing is refused while it is down (CodeUnavailable,
// which the Go client retries by itself), and once it is back the
// subscriber gets everything confirmed, once.
func TestNATSRestartUnderLoad(t *testing.T) {
	nats := natstest.Start(t, true)
	bin := wsrpcBinary(t)
	a, b := startServe(t, bin, nats.URL), startServe(t, bin, nats.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	r := startLoad(t, ctx, dialClient(t, a.url), "chat.nats")
	for k, p := range []*serveProc{a, b} {
		r.publish(dialClient(t, p.url), fmt.Sprint("p", k), 1<<30, 2*time.Millisecond)
	}
	l := r.l
	time.Sleep(time.Second)
	down := time.Now()
	nats.Kill() // a crash, with its store left as it was
	time.Sleep(time.Second)
	nats.StartAgain(t)
	back := time.Now()
	// The time to recover: from nats-server being back to the first
	// publication confirmed after that reaching the subscriber.
	var recovered time.Duration
	for recovered == 0 {
		if time.Since(back) > 30*time.Second {
			t.Fatal("nothing published and delivered within 30s of nats-server's restart")
		}
		time.Sleep(5 * time.Millisecond)
		l.mu.Lock()
		for ld, at := range l.at {
			if at.After(back) && l.delivered[ld] > 0 {
				recovered = time.Since(back)
				break
			}
		}
		l.mu.Unlock()
	}
	time.Sleep(time.Second)
	lost, dup := r.finish(true)
	t.Logf("nats-server was down for %v; deliveries resumed within %v of it being back", back.Sub(down).Round(time.Millisecond), recovered.Round(time.Millisecond))
	if lost != 0 || dup != 0 {
		t.Fatalf("%d lost, %d duplicated", lost, dup)
	}
}

// TestDeploymentDocNATS runs the commands of docs/DEPLOYMENT.md's section
// on NATS, on free loopback ports: two instances on one NATS, a subscriber
// on one, a publisher on the other.
func TestDeploymentDocNATS(t *testing.T) {
	block := codeBlock(t, docSection(t, "Several instances on NATS"), "sh")
	var serves, subscribe, publish []string
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		args := shellWords(t, line)
		switch {
		case args[0] == "nats-server":
			if !slices.Contains(args, "-js") || !slices.Contains(args, "-sd") {
				t.Fatalf("the documented nats-server has no JetStream store: %q", line)
			}
		case args[0] == "go":
			// the binary is built by the test
		case len(args) > 1 && args[1] == "serve":
			serves = append(serves, line)
		case len(args) > 1 && args[1] == "subscribe":
			subscribe = args[1:]
		case len(args) > 1 && args[1] == "publish":
			publish = args[1:]
		default:
			t.Fatalf("unexpected line in the documented commands: %q", line)
		}
	}
	if len(serves) != 2 || subscribe == nil || publish == nil {
		t.Fatalf("want two serves, a subscribe and a publish in:\n%s", block)
	}
	nats := natstest.Start(t, true)
	bin := wsrpcBinary(t)
	// Each documented address maps onto a process on a free port.
	addrs := map[string]string{}
	for _, line := range serves {
		p, docAddr := docServe(t, bin, line, nats.URL)
		addrs[docAddr] = p.addr
	}
	mapURL := func(args []string) []string {
		out := slices.Clone(args)
		for k, a := range out {
			for doc, real := range addrs {
				out[k] = strings.Replace(a, doc, real, 1)
				a = out[k]
			}
		}
		return out
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var subOut, subErr lockedBuffer
	sub := exec.CommandContext(ctx, bin, mapURL(subscribe)...)
	sub.Stdout, sub.Stderr = &subOut, &subErr
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	// The subscription is made when subscribe says so on stderr; publish
	// until the subscriber has one (a publication before is not for it).
	done := make(chan error, 1)
	go func() { done <- sub.Wait() }()
	for {
		out, err := exec.CommandContext(ctx, bin, mapURL(publish)...).CombinedOutput()
		if err != nil {
			t.Fatalf("wsrpc %s: %v\n%s", strings.Join(publish, " "), err, out)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("wsrpc subscribe: %v\n%s", err, subErr.String())
			}
			if !strings.Contains(subOut.String(), "hello from 8082") {
				t.Fatalf("the subscriber printed %q", subOut.String())
			}
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// shellWords splits a documented command line: words, and single-quoted
// strings.
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	var words []string
	for line = strings.TrimSpace(line); line != ""; line = strings.TrimSpace(line) {
		if line[0] == '\'' {
			end := strings.IndexByte(line[1:], '\'')
			if end < 0 {
				t.Fatalf("unclosed quote in %q", line)
			}
			words = append(words, line[1:end+1])
			line = line[end+2:]
			continue
		}
		w, rest, _ := strings.Cut(line, " ")
		words = append(words, w)
		line = rest
	}
	return words
}
