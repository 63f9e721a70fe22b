package natsbroker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/internal/natstest"
	"github.com/wsrpc/wsrpc/natsbroker"
	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
)

// docSection returns the text of docs/DEPLOYMENT.md from the heading that
// contains title to the next heading of the same level.
func docSection(t *testing.T, title string) string {
	t.Helper()
	doc, err := os.ReadFile("../docs/DEPLOYMENT.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, level := range []string{"\n## ", "\n### "} {
		parts := strings.Split(string(doc), level)
		for _, p := range parts[1:] {
			if head, _, _ := strings.Cut(p, "\n"); strings.Contains(head, title) {
				return p
			}
		}
	}
	t.Fatalf("DEPLOYMENT.md has no section %q", title)
	return ""
}

// codeBlock returns the first fenced block of language lang in section.
func codeBlock(t *testing.T, section, lang string) string {
	t.Helper()
	_, block, ok := strings.Cut(section, "```"+lang+"\n")
	if !ok {
		t.Fatalf("no ```%s block in the section", lang)
	}
	block, _, _ = strings.Cut(block, "```")
	return block
}

// docServe starts the documented `wsrpc serve` command line on a free
// loopback port, its --nats pointed at natsURL, and returns it with the
// address the line gave.
func docServe(t *testing.T, bin, line, natsURL string) (p *serveProc, docAddr string) {
	t.Helper()
	args := shellWords(t, line)[1:]
	i := slices.Index(args, "--addr")
	j := slices.Index(args, "--nats")
	if i < 0 || i+1 >= len(args) || j < 0 {
		t.Fatalf("a documented serve without --addr or --nats: %q", line)
	}
	p = &serveProc{t: t, bin: bin, addr: "127.0.0.1:0"}
	p.args = slices.Concat(args[:i], args[i+2:])
	p.args[slices.Index(p.args, "--nats")+1] = natsURL
	p.start()
	t.Cleanup(p.stop)
	return p, args[i+1]
}

// The rounds of the rolling restart: each restarts the three instances
// one after another.
var rollingRounds = []struct {
	name string
	kill bool
}{{"SIGTERM 1", false}, {"SIGTERM 2", false}, {"SIGKILL", true}}

// pubCall is one non-idempotent call: a publication with its own id,
// made again (with the same id) only when the server said it never
// started it.
type pubCall struct {
	topic      string
	round      int // when it ended
	start, end time.Time
	outcome    string // "ok", "unknown" (the connection dropped mid-call), or the error
	refused    int    // answers CodeUnavailable, after which it was made again
}

// roundCounts are what the clients saw in one round.
type roundCounts struct {
	idemOK, idemLost int
	idemErr          error // the first idempotent call lost
	longestIdem      time.Duration
}

// subLedger is what one subscriber was delivered.
type subLedger struct {
	mu       sync.Mutex
	got      map[load][]uint64 // the offsets each publication was delivered at
	last     uint64
	lastAt   time.Time
	pause    []time.Duration // the longest time between two deliveries, by the round it ended in
	gaps     []int           // deliveries flagged Gap, by round
	disorder int             // offsets that did not grow
}

// audit reads what JetStream stored, with a broker of its own: each
// publication is one execution of its call, so a call that ran twice is
// stored twice.
type audit struct {
	b      *natsbroker.Broker
	pos    map[string]pubsub.Position
	stored map[load][]uint64
	missed uint64 // offsets the audit could not read (fell out of the history window)
}

// chatHistory is what serve's demo rule keeps of a chat.> topic.
const chatHistory = 1000

func (a *audit) read(ctx context.Context, topic string) error {
	pos := a.pos[topic]
	if pos.Epoch == "" {
		h, err := a.b.History(ctx, topic, pubsub.HistoryRequest{HistorySize: chatHistory})
		if err != nil || h.Top.Epoch == "" {
			return err
		}
		pos = pubsub.Position{Epoch: h.Top.Epoch}
	}
	h, err := a.b.History(ctx, topic, pubsub.HistoryRequest{Since: &pos, HistorySize: chatHistory})
	if err != nil {
		return err
	}
	if h.Top.Epoch != pos.Epoch {
		return fmt.Errorf("%s: the epoch changed from %s to %s", topic, pos.Epoch, h.Top.Epoch)
	}
	for _, p := range h.Publications {
		if p.Offset != pos.Offset+1 {
			a.missed += p.Offset - pos.Offset - 1
		}
		var ld load
		if err := json.Unmarshal(p.Data, &ld); err != nil {
			return fmt.Errorf("%s: offset %d holds %q", topic, p.Offset, p.Data)
		}
		a.stored[ld] = append(a.stored[ld], p.Offset)
		pos.Offset = p.Offset
	}
	a.pos[topic] = pos
	return nil
}

// rollingRun is the load of the rolling restart and what it recorded.
type rollingRun struct {
	round  atomic.Int32
	idemN  atomic.Int64 // idempotent calls answered, for progress
	feedN  atomic.Int64 // feed publications confirmed, for progress
	mu     sync.Mutex
	starts []time.Time // when each round began
	kills  []time.Time
	counts []roundCounts
	calls  map[load]*pubCall
	subs   []*subLedger
	drain  []time.Duration // SIGTERM to exit, longest per round
	errs   []string
}

func (r *rollingRun) fail(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) < 10 {
		r.errs = append(r.errs, fmt.Sprintf(format, args...))
	}
}

// callIdempotent calls sleep (10 ms) as idempotent until stop is closed.
func (r *rollingRun) callIdempotent(c *client.Client, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var out struct {
			SleptMS int `json:"slept_ms"`
		}
		err := c.Call(ctx, "sleep", map[string]int{"ms": 10}, &out, client.Idempotent())
		cancel()
		if err == nil && out.SleptMS != 10 {
			err = fmt.Errorf("sleep answered %+v", out)
		}
		took, round := time.Since(start), int(r.round.Load())
		r.mu.Lock()
		rc := &r.counts[round]
		rc.longestIdem = max(rc.longestIdem, took)
		if err != nil {
			rc.idemLost++
			if rc.idemErr == nil {
				rc.idemErr = err
			}
		} else {
			rc.idemOK++
		}
		r.mu.Unlock()
		r.idemN.Add(1)
	}
}

// publish publishes numbered publications from `from` on topic, every
// apart, until stop is closed.
func (r *rollingRun) publish(c *client.Client, topic, from string, every time.Duration, stop <-chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		if r.publishOnce(c, topic, load{From: from, I: i}) && topic == feedTopic {
			r.feedN.Add(1)
		}
		time.Sleep(every) // the steady rate
	}
}

// publishOnce makes one non-idempotent call, again only after refusals.
func (r *rollingRun) publishOnce(c *client.Client, topic string, ld load) bool {
	pc := &pubCall{topic: topic, start: time.Now()}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := c.Publish(ctx, topic, ld)
		cancel()
		var re *rpc.Error
		switch {
		case err == nil:
			pc.outcome = "ok"
		case errors.As(err, &re) && re.Code == rpc.CodeUnavailable && pc.refused < 100:
			pc.refused++ // never started: the same call again
			time.Sleep(20 * time.Millisecond)
			continue
		case errors.Is(err, rpc.ErrConnectionLost) || errors.As(err, &re) && re.Code == rpc.CodeInternalError:
			pc.outcome = "unknown"
		default:
			pc.outcome = err.Error()
			r.fail("publish %+v: %v", ld, err)
		}
		break
	}
	pc.end, pc.round = time.Now(), int(r.round.Load())
	r.mu.Lock()
	r.calls[ld] = pc
	r.mu.Unlock()
	return pc.outcome == "ok"
}

// receive records what s delivers until ctx ends.
func (r *rollingRun) receive(ctx context.Context, l *subLedger, s *client.Subscription) {
	eachLoad(ctx, s, func(p pubsub.Publication, ld load, bad bool) {
		if bad {
			r.fail("a feed publication %q", p.Data)
			return
		}
		round, now := int(r.round.Load()), time.Now()
		l.mu.Lock()
		defer l.mu.Unlock()
		l.got[ld] = append(l.got[ld], p.Offset)
		if p.Offset <= l.last {
			l.disorder++
		}
		l.last = p.Offset
		if !l.lastAt.IsZero() {
			l.pause[round] = max(l.pause[round], now.Sub(l.lastAt))
		}
		l.lastAt = now
		if p.Gap {
			l.gaps[round]++
		}
	})
}

// waitProgress waits until n idempotent calls were answered and m feed
// publications confirmed from now on, or fails after 30 s.
func (r *rollingRun) waitProgress(t *testing.T, n, m int64) {
	t.Helper()
	idem, feed := r.idemN.Load()+n, r.feedN.Load()+m
	deadline := time.Now().Add(30 * time.Second)
	for r.idemN.Load() < idem || r.feedN.Load() < feed {
		if time.Now().After(deadline) {
			t.Fatalf("the load stalled: %d idempotent calls (want %d), %d feed publications (want %d)", r.idemN.Load(), idem, r.feedN.Load(), feed)
		}
		time.Sleep(10 * time.Millisecond) // polling counters, bounded above
	}
}

const feedTopic = "chat.feed"

// TestRollingRestartBehindNginx is docs/DEPLOYMENT.md's section "Behind nginx" run for
// real: the documented nginx in front of the three documented `wsrpc
// serve --nats` processes on one nats-server with JetStream. Under a
// bounded load (idempotent calls, non-idempotent publishes whose
// executions JetStream records, a feed published at a steady rate with
// three subscribers, every client through nginx), the three are restarted
// one after another by SIGTERM twice, then killed one after another. It
// prints the table the doc shows.
func TestRollingRestartBehindNginx(t *testing.T) {
	nginxBinary(t) // skips early when missing
	section := docSection(t, "Behind nginx")
	var serveLines []string
	for _, line := range strings.Split(strings.TrimSpace(codeBlock(t, section, "sh")), "\n") {
		if args := shellWords(t, line); len(args) > 1 && args[1] == "serve" {
			serveLines = append(serveLines, line)
		}
	}
	if len(serveLines) != 3 {
		t.Fatalf("want three documented serve lines, got %d", len(serveLines))
	}
	site := codeBlock(t, section, "nginx")

	nats := natstest.Start(t, true)
	bin := wsrpcBinary(t)
	procs := make([]*serveProc, 3)
	for k, line := range serveLines {
		var docAddr string
		procs[k], docAddr = docServe(t, bin, line, nats.URL)
		if !strings.Contains(site, "server "+docAddr+" ") {
			t.Fatalf("the nginx site has no upstream %s", docAddr)
		}
		site = strings.ReplaceAll(site, "server "+docAddr+" ", "server "+procs[k].addr+" ")
	}
	ngx := startNginx(t, site)
	url := "ws://" + ngx.addr + "/rpc"

	t.Run("proxy", func(t *testing.T) { checkProxy(t, url, ngx.addr, site) })
	t.Run("next upstream on 503", func(t *testing.T) { checkNextUpstream503(t, bin, site, procs[0].addr) })

	// The load, every client through nginx.
	rounds := len(rollingRounds)
	r := &rollingRun{counts: make([]roundCounts, rounds), drain: make([]time.Duration, rounds), calls: map[load]*pubCall{}}
	r.starts = append(r.starts, time.Now())
	var clients []*client.Client
	dial := func() *client.Client {
		c := dialClient(t, url)
		clients = append(clients, c)
		return c
	}
	subCtx, cancelSubs := context.WithCancel(context.Background())
	var subWG, loadWG sync.WaitGroup
	stopSubs := sync.OnceFunc(func() { cancelSubs(); subWG.Wait() })
	defer stopSubs() // on every path: the load's goroutines end before the test
	for range 3 {
		s, err := dial().Subscribe(subCtx, feedTopic, client.Buffer(1024))
		if err != nil {
			t.Fatal(err)
		}
		l := &subLedger{got: map[load][]uint64{}, pause: make([]time.Duration, rounds), gaps: make([]int, rounds)}
		r.subs = append(r.subs, l)
		subWG.Go(func() { r.receive(subCtx, l, s) })
	}
	stop := make(chan struct{})
	stopLoad := sync.OnceFunc(func() { close(stop); loadWG.Wait() })
	defer stopLoad()
	feeder := dial()
	loadWG.Go(func() { r.publish(feeder, feedTopic, "feed", 20*time.Millisecond, stop) })
	for k := range 3 {
		c := dial()
		loadWG.Go(func() { r.publish(c, fmt.Sprint("chat.calls.", k), fmt.Sprint("calls", k), 5*time.Millisecond, stop) })
		for range 3 {
			loadWG.Go(func() { r.callIdempotent(c, stop) })
		}
	}

	// The audit reads every topic's store as the load runs (a topic keeps
	// its last 1000), and once more at the end.
	b, err := natsbroker.Connect(nats.URL, natsbroker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	au := &audit{b: b, pos: map[string]pubsub.Position{}, stored: map[load][]uint64{}}
	topics := []string{feedTopic, "chat.calls.0", "chat.calls.1", "chat.calls.2"}
	auditAll := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, topic := range topics {
			if err := au.read(ctx, topic); err != nil {
				r.fail("audit: %v", err)
			}
		}
	}
	auditStop, audited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(audited)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				auditAll()
			case <-auditStop:
				return
			}
		}
	}()
	defer func() { // on every path
		select {
		case <-auditStop:
		default:
			close(auditStop)
		}
		<-audited
	}()

	began := time.Now()
	r.waitProgress(t, 100, 20)
	for k, rd := range rollingRounds {
		if k > 0 {
			r.mu.Lock()
			r.starts = append(r.starts, time.Now())
			r.mu.Unlock()
			r.round.Store(int32(k))
		}
		for _, p := range procs {
			if rd.kill {
				r.mu.Lock()
				r.kills = append(r.kills, time.Now())
				r.mu.Unlock()
				p.kill()
			} else {
				sent := time.Now()
				p.stop()
				r.drain[k] = max(r.drain[k], time.Since(sent))
			}
			p.start()
			restarted := time.Now()
			r.waitProgress(t, 100, 20)
			// At least a second between two restarts: the clients that
			// moved settle on the others.
			time.Sleep(time.Until(restarted.Add(time.Second)))
		}
	}
	stopLoad()
	loadTime := time.Since(began)

	// Every confirmed feed publication reaches every subscriber, up to 30 s.
	deadline := time.Now().Add(30 * time.Second)
	for !r.allDelivered() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // polling the ledgers, bounded above
	}
	close(auditStop)
	<-audited
	auditAll()
	stopSubs()
	for _, c := range clients {
		_ = c.Close()
	}
	ngx.stop() // its access log is complete once the connections are closed
	hs := ngx.handshakes(t)

	table, fails := r.table(au, hs)
	t.Logf("%d s of load through nginx, 9 restarts:\n%s", int(loadTime.Seconds()+0.5), table)
	for _, e := range r.errs {
		t.Error(e)
	}
	for _, f := range fails {
		t.Error(f)
	}
}

// allDelivered says whether every confirmed feed publication reached every
// subscriber.
func (r *rollingRun) allDelivered() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for ld, pc := range r.calls {
		if pc.topic != feedTopic || pc.outcome != "ok" {
			continue
		}
		for _, l := range r.subs {
			l.mu.Lock()
			n := len(l.got[ld])
			l.mu.Unlock()
			if n == 0 {
				return false
			}
		}
	}
	return true
}

// roundOf is the round during which at happened, -1 before the load.
func (r *rollingRun) roundOf(at time.Time) int {
	k := -1
	for i, s := range r.starts {
		if !at.Before(s) {
			k = i
		}
	}
	return k
}

// table tallies the run by round, as a Markdown table, and lists what
// breaks the targets.
func (r *rollingRun) table(au *audit, hs []handshake) (string, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(rollingRounds)
	type tally struct {
		pubOK, refused, unknown, unknownRan, twice, notStored, unknownNotAtKill int
		feedOK, feedLost, feedDup                                               int
		hs, hsRetried, hsRefused                                                int
	}
	ts := make([]tally, n)
	var fails []string
	for ld, pc := range r.calls {
		tl := &ts[pc.round]
		runs := len(au.stored[ld])
		tl.refused += pc.refused
		if runs > 1 {
			tl.twice++
		}
		switch pc.outcome {
		case "ok":
			tl.pubOK++
			if runs == 0 {
				tl.notStored++
			}
		case "unknown":
			tl.unknown++
			if runs > 0 {
				tl.unknownRan++
			}
			// In flight on a killed instance: it ended after a kill,
			// before the client could have noticed (sent before the kill,
			// or after it on the connection nginx had not closed yet).
			atKill := false
			for _, k := range r.kills {
				atKill = atKill || pc.end.After(k) && pc.end.Sub(k) < 2*time.Second
			}
			if !rollingRounds[pc.round].kill || !atKill {
				tl.unknownNotAtKill++
				fails = append(fails, fmt.Sprintf("%s: %+v, %s, started %v after the round, ended %v after (kills at %v)", rollingRounds[pc.round].name, ld, pc.topic,
					pc.start.Sub(r.starts[pc.round]), pc.end.Sub(r.starts[pc.round]), r.kills))
			}
		}
		if pc.topic != feedTopic || pc.outcome != "ok" {
			continue
		}
		tl.feedOK++
		for _, l := range r.subs {
			l.mu.Lock()
			got := l.got[ld]
			l.mu.Unlock()
			if len(got) == 0 {
				tl.feedLost++
			}
			tl.feedDup += max(len(got)-1, 0)
		}
	}
	for _, h := range hs {
		k := r.roundOf(h.start)
		if k < 0 {
			continue // the proxy checks
		}
		tl := &ts[k]
		tl.hs++
		if len(h.upstream) > 1 {
			tl.hsRetried++
		}
		if h.status != http.StatusSwitchingProtocols {
			tl.hsRefused++
		}
	}
	var b strings.Builder
	row := func(what string, cell func(k int) string) {
		fmt.Fprintf(&b, "| %s |", what)
		for k := range n {
			fmt.Fprintf(&b, " %s |", cell(k))
		}
		b.WriteString("\n")
	}
	num := func(f func(k int) int) func(int) string {
		return func(k int) string { return fmt.Sprint(f(k)) }
	}
	b.WriteString("| |")
	for _, rd := range rollingRounds {
		fmt.Fprintf(&b, " %s |", rd.name)
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", n) + "\n")
	row("idempotent calls answered", num(func(k int) int { return r.counts[k].idemOK }))
	row("idempotent calls lost", num(func(k int) int { return r.counts[k].idemLost }))
	row("longest idempotent call", func(k int) string { return r.counts[k].longestIdem.Round(time.Millisecond).String() })
	row("non-idempotent calls (publishes) answered", num(func(k int) int { return ts[k].pubOK }))
	row("refused as not started, made again", num(func(k int) int { return ts[k].refused }))
	row("executed twice", num(func(k int) int { return ts[k].twice }))
	row("answered but not executed", num(func(k int) int { return ts[k].notStored }))
	row("outcome unknown (of them executed)", func(k int) string { return fmt.Sprintf("%d (%d)", ts[k].unknown, ts[k].unknownRan) })
	row("feed publications confirmed", num(func(k int) int { return ts[k].feedOK }))
	row("lost, summed over 3 subscribers", num(func(k int) int { return ts[k].feedLost }))
	row("duplicated, summed over 3 subscribers", num(func(k int) int { return ts[k].feedDup }))
	row("deliveries after a gap", num(func(k int) int {
		g := 0
		for _, l := range r.subs {
			g += l.gaps[k]
		}
		return g
	}))
	row("longest gap a subscriber saw", func(k int) string {
		var p time.Duration
		for _, l := range r.subs {
			p = max(p, l.pause[k])
		}
		return p.Round(time.Millisecond).String()
	})
	row("handshakes through nginx", num(func(k int) int { return ts[k].hs }))
	row("refused by an instance, retried by nginx", num(func(k int) int { return ts[k].hsRetried }))
	row("refused to the client, retried by it", num(func(k int) int { return ts[k].hsRefused }))
	row("longest drain (SIGTERM to exit)", func(k int) string {
		if rollingRounds[k].kill {
			return "-"
		}
		return r.drain[k].Round(time.Millisecond).String()
	})

	for k, rd := range rollingRounds {
		tl, rc := ts[k], r.counts[k]
		if rc.idemLost != 0 {
			fails = append(fails, fmt.Sprintf("%s: %d idempotent calls lost (first: %v)", rd.name, rc.idemLost, rc.idemErr))
		}
		if rc.idemOK < 200 {
			fails = append(fails, fmt.Sprintf("%s: only %d idempotent calls: the load did not run", rd.name, rc.idemOK))
		}
		if tl.twice != 0 || tl.notStored != 0 {
			fails = append(fails, fmt.Sprintf("%s: %d non-idempotent calls executed twice, %d answered but not executed", rd.name, tl.twice, tl.notStored))
		}
		if tl.unknownNotAtKill != 0 {
			fails = append(fails, fmt.Sprintf("%s: %d outcomes unknown that were not in flight at a SIGKILL", rd.name, tl.unknownNotAtKill))
		}
		if tl.feedLost != 0 || tl.feedDup != 0 {
			fails = append(fails, fmt.Sprintf("%s: feed publications lost %d, duplicated %d", rd.name, tl.feedLost, tl.feedDup))
		}
		for _, l := range r.subs {
			if l.gaps[k] != 0 {
				fails = append(fails, fmt.Sprintf("%s: a subscriber was told of a gap %d times", rd.name, l.gaps[k]))
			}
		}
	}
	for _, l := range r.subs {
		if l.disorder != 0 {
			fails = append(fails, fmt.Sprintf("a subscriber got %d publications out of offset order", l.disorder))
		}
	}
	if au.missed != 0 {
		fails = append(fails, fmt.Sprintf("the audit could not read %d stored publications (out of the history window)", au.missed))
	}
	return b.String(), fails
}

// checkProxy checks what the documented nginx passes on: the client's
// address (X-Forwarded-For, with --trusted-proxies), and the Host with its
// port, so that a browser's same-origin handshake passes the Origin check
// while another origin's is refused; with `$host` instead (site with that
// one line changed, on a second nginx) the same-origin handshake is
// refused.
func checkProxy(t *testing.T, url, addr, site string) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := dialClient(t, url, client.WithHeader(http.Header{"X-Forwarded-For": {"203.0.113.7"}}))
	var who struct {
		RemoteAddr string `json:"remote_addr"`
	}
	if err := c.Call(ctx, "whoami", nil, &who); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(who.RemoteAddr, "203.0.113.7") {
		t.Errorf("behind nginx the server saw the client at %q, want 203.0.113.7", who.RemoteAddr)
	}
	_ = c.Close()

	browser := func(url, origin string) error {
		c, err := client.Dial(ctx, url, client.WithHeader(http.Header{"Origin": {origin}}))
		if err == nil {
			_ = c.Close()
		}
		return err
	}
	if err := browser(url, "http://"+addr); err != nil {
		t.Errorf("a same-origin browser handshake through nginx: %v", err)
	}
	if err := browser(url, "http://evil.example"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("a cross-origin browser handshake through nginx: %v, want 403", err)
	}
	const hostLine = "proxy_set_header Host $http_host;"
	if !strings.Contains(site, hostLine) {
		t.Fatalf("the site has no %q", hostLine)
	}
	bad := startNginx(t, strings.Replace(site, hostLine, "proxy_set_header Host $host;", 1))
	defer bad.stop()
	if err := browser("ws://"+bad.addr+"/rpc", "http://"+bad.addr); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("with Host $host, a same-origin browser handshake: %v, want 403", err)
	}
}

// checkNextUpstream503 checks the site's proxy_next_upstream on a 503: an
// instance at its connection limit (--max-conns 1, its one connection
// held) answers handshakes 503, and nginx, given it in place of the first
// upstream (site's own nginx is left alone), sends them on to the next
// instance: the client never sees the refusal.
func checkNextUpstream503(t *testing.T, bin, site, first string) {
	full := &serveProc{t: t, bin: bin, addr: "127.0.0.1:0", args: []string{"serve", "--max-conns", "1"}}
	full.start()
	defer full.stop()
	held := dialClient(t, full.url)
	defer held.Close()
	ngx := startNginx(t, strings.Replace(site, "server "+first+" ", "server "+full.addr+" ", 1))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for range 6 { // round robin: at least two of them go to the full one first
		c, err := client.Dial(ctx, "ws://"+ngx.addr+"/rpc")
		if err != nil {
			t.Fatalf("a handshake through nginx with one instance full: %v", err)
		}
		_ = c.Close()
	}
	ngx.stop()
	retried := 0
	for _, h := range ngx.handshakes(t) {
		if h.status == http.StatusSwitchingProtocols && slices.Equal(h.upstream, []string{"503", "101"}) {
			retried++
		}
	}
	if retried == 0 {
		t.Errorf("no handshake refused with 503 and retried by nginx on the next instance")
	}
}
