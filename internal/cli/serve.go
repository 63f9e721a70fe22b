package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
)

var serveHelp = help{
	usage: "serve [flags]",
	about: `
Runs a wsrpc server with the demo services until SIGINT or SIGTERM, then shuts
down gracefully: readiness goes off (/readyz answers 503) while handshakes are
still accepted for --ready-delay, then new connections are refused, clients
are told to go elsewhere (spread over --goodbye-window), calls in flight
finish (the streams countdown and tail end at once, saying so), and the
connections close with 1012. --drain-timeout bounds all of it, from the
signal to the exit. The exit status is 0 when nothing was cut short, 1
otherwise.

Health checks: GET /readyz answers 200 "ready" while the server is ready, 503
"draining" from the signal on; GET /livez answers 200 until the server has
stopped. Both are served on the main listener, which closes once the ready
delay is over, and with --health-addr on a listener of their own, which keeps
answering until the process exits: point a liveness probe there. With
--handshake-rate, handshakes beyond that many a second (bursts of
--handshake-burst) get 503 with a Retry-After that spreads the refused
clients over time, so that a reconnect storm does not swamp the server.

The RPC endpoint speaks both wire codecs (wsrpc.v1 and jsonrpc2.0; JSON-RPC 2.0
also without a subprotocol). Services:
  echo       returns its params unchanged
  add        [1, 2, 3] → 6; anything but an array of numbers → -32602
  sleep      {"ms": N} waits N ms (cancellable) → {"slept_ms": N}
  time       the server's time (RFC 3339)
  whoami     connection id, remote address, subprotocol, principal and
             the call's metadata
  callback   {"method": M, "params": P} calls M on the calling client and
             returns its answer (a server→client call)
  countdown  a stream: {"from": N, "interval_ms": M} sends N, N-1, ..., 1,
             one every M ms (default 1000), then ends with "liftoff" one
             interval after 1 (N ≤ 10000, M ≤ 10000); a plain call waits
             it out and gets "liftoff" alone. See 'wsrpc call --help'
  tail       a stream: {"topic": T, "max": N} sends the publications on
             topic or pattern T as they come (as 'wsrpc subscribe --format
             json' prints them), until cancelled or N of them (a plain call
             must give max, and gets one array). It holds 64 for a caller
             that reads slowly and drops the rest, giving the count in
             "dropped" of the next one. Only with pub/sub (see below)
  broadcast  only with --demo-broadcast: sends the notification "broadcast"
             with the params (an array or an object) to every connection;
             returns how many got it. Off by default, because it lets any
             client make the server send to every other one.
  rpc.discover  the OpenRPC document of these services, with the JSON
             Schema of their params and results ('wsrpc call URL rpc.discover')

Publish/subscribe topics (--demo-topics=false: no pub/sub, unless --nats):
  time       the server publishes its time (RFC 3339) every second and keeps
             the last 60 (a minute), so that a subscriber that reconnects
             recovers what it missed; clients may not publish on it
  chat.>     any client may publish on the topics under chat. (chat.room,
             chat.team.dev), up to 4096 bytes of JSON a publication; the
             last 1000 of each topic are kept
Other topics and patterns may be subscribed to; nothing publishes there.
See 'wsrpc subscribe --help' and 'wsrpc publish --help'.

With --nats URL (only in the NATS build of wsrpc:
go install github.com/wsrpc/wsrpc/natsbroker/cmd/wsrpc@latest), the topics
go through the NATS server at URL instead of staying in this process, so
that every server given the same URL shares them: a subscriber on one gets
what is published on another. With --demo-topics=false as well, pub/sub has
no rules: clients may subscribe to any topic but not publish, and get what
other processes on the same NATS publish.

By default only handshakes whose Origin is the server's own host (or absent)
pass, and on a loopback address only those naming a loopback Host
(localhost, 127.0.0.1, [::1]), so that a page whose DNS name was re-pointed
at 127.0.0.1 (DNS rebinding) cannot reach the server. Behind a reverse proxy
on this machine, list the public host names with --allowed-hosts, and the
proxy's address with --trusted-proxies so that the client's address is read
from X-Forwarded-For or Forwarded (never believed from others). The proxy
must pass the Host the client sent, with its port (nginx: proxy_set_header
Host $http_host, not $host), or browsers' handshakes fail the Origin check
(403; the log line says which Host and Origin it saw). Every
refused handshake (403, 426, 503...) closes its connection; idle HTTP
connections are closed after --idle-timeout.

With --metrics-addr host:port, a second listener serves the server's figures
at /metrics in the Prometheus text format (connections, handshakes refused by
reason, messages and bytes, calls by method and code with their durations,
pub/sub; docs/OBSERVABILITY.md lists them), and with --pprof also Go's profiles at
/debug/pprof/ (net/http/pprof). Neither is ever served on --addr. The
listener stays up through the graceful shutdown, so that the drain can be
watched, and closes last.

Logs go to stderr; the first line says where the server listens
("listening on ws://127.0.0.1:8080/rpc", with the real port when --addr ends
in :0), and with --metrics-addr a line says where the metrics are
("metrics on http://127.0.0.1:9090/metrics"). Every record about a
connection carries its conn id, remote address and principal.`,
	examples: `
wsrpc serve
wsrpc serve --addr :9000 --log-format json --log-level warn
wsrpc serve --static ./web --origin 'localhost:*'
wsrpc serve --allowed-hosts rpc.example.com --addr 127.0.0.1:8080
wsrpc serve --allowed-hosts rpc.example.com --trusted-proxies 127.0.0.1,::1
wsrpc serve --health-addr :8081 --ready-delay 5s --goodbye-window 10s --drain-timeout 30s
wsrpc serve --handshake-rate 200 --handshake-burst 400
wsrpc serve --metrics-addr 127.0.0.1:9090 --pprof
wsrpc serve --demo-broadcast
wsrpc serve --demo-topics=false
wsrpc serve --nats nats://127.0.0.1:4222
wsrpc serve --tls-cert cert.pem --tls-key key.pem --addr 0.0.0.0:8443`,
}

// serveConfig says where and how a server listens.
type serveConfig struct {
	addr    string
	path    string
	tlsCert string
	tlsKey  string
	static  string
	logger  *slog.Logger // nil: none
	// wrap, if set, wraps the RPC endpoint's handler (the demo's gate).
	wrap func(http.Handler) http.Handler
}

func runServe(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("serve")
	var (
		cfg             serveConfig
		origins         listFlag
		hosts           listFlag
		proxies         listFlag
		forwardedHeader string
		maxConns        int
		drainTimeout    time.Duration
		idleTimeout     time.Duration
		demoBroadcast   bool
		demoTopics      bool
		natsURL         string
		natsWait        time.Duration
		logFormat       string
		logLevel        string
		healthAddr      string
		readyDelay      time.Duration
		goodbyeWindow   time.Duration
		handshakeRate   float64
		handshakeBurst  int
		metricsAddr     string
		withPprof       bool
	)
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:8080", "`host:port` address to listen on (port 0 picks a free port)")
	fs.StringVar(&cfg.path, "path", "/rpc", "URL `path` of the RPC endpoint")
	fs.StringVar(&cfg.tlsCert, "tls-cert", "", "TLS certificate `file` (PEM); with --tls-key, serves wss://")
	fs.StringVar(&cfg.tlsKey, "tls-key", "", "TLS private key `file` (PEM)")
	fs.Var(&origins, "origin", "also accept handshakes from this origin host `pattern` (path.Match syntax, repeatable); other origins get 403")
	fs.Var(&proxies, "trusted-proxies", "believe X-Forwarded-For and Forwarded from these proxy `cidrs` (or addresses; comma-separated, repeatable) for the client's address; otherwise they are ignored")
	fs.StringVar(&forwardedHeader, "forwarded-header", "X-Forwarded-For", "with --trusted-proxies, the `header` they set: X-Forwarded-For or Forwarded (the other is never read)")
	fs.Var(&hosts, "allowed-hosts", "accept handshakes whose Host is one of these `hosts` (names or path.Match patterns, comma-separated, repeatable; port ignored) or, on loopback, a loopback name; others get 403")
	fs.IntVar(&maxConns, "max-conns", server.DefaultMaxConns, "refuse connections beyond `n` with 503")
	fs.DurationVar(&idleTimeout, "idle-timeout", server.DefaultIdleTimeout, "close HTTP keep-alive connections idle for this `duration`")
	fs.BoolVar(&demoBroadcast, "demo-broadcast", false, "offer the broadcast service (any client can then notify every connection)")
	fs.BoolVar(&demoTopics, "demo-topics", true, "serve pub/sub with the demo topics time and chat.> (see above)")
	fs.StringVar(&natsURL, "nats", "", "use the NATS server at `url` as the pub/sub broker, shared with the other servers using it (serves pub/sub even with --demo-topics=false; NATS build only)")
	fs.DurationVar(&natsWait, "nats-wait", 0, "with --nats, keep trying to reach NATS for up to this `duration` at start (with backoff) before giving up; 0: one try")
	fs.DurationVar(&drainTimeout, "drain-timeout", 25*time.Second, "bound on the whole shutdown after SIGTERM: ready delay, goodbye window and calls in flight")
	fs.StringVar(&healthAddr, "health-addr", "", "also serve /readyz and /livez on this `host:port`, until the process exits (they are on --addr too)")
	fs.DurationVar(&readyDelay, "ready-delay", 0, "on SIGTERM, answer /readyz with 503 but keep accepting handshakes for this `duration` before refusing them")
	fs.DurationVar(&goodbyeWindow, "goodbye-window", 0, "spread the shutdown notices to the connections over this `duration` (0: all at once)")
	fs.Float64Var(&handshakeRate, "handshake-rate", 0, "accept at most `n` handshakes a second on average, 503 with Retry-After beyond (0: no limit)")
	fs.IntVar(&handshakeBurst, "handshake-burst", 0, "with --handshake-rate, the burst of handshakes accepted at once (0: the rate rounded up)")
	fs.StringVar(&logFormat, "log-format", "text", "`text|json` log format")
	fs.StringVar(&logLevel, "log-level", "info", "`debug|info|warn|error` lowest level logged")
	fs.StringVar(&cfg.static, "static", "", "serve the files of `dir` at / (the RPC endpoint stays at --path)")
	fs.StringVar(&metricsAddr, "metrics-addr", "", "serve Prometheus metrics at /metrics on a listener of their own at `host:port` (off by default)")
	fs.BoolVar(&withPprof, "pprof", false, "with --metrics-addr, serve net/http/pprof at /debug/pprof/ on the metrics listener (never on --addr)")
	pos, err := parseArgs(fs, args, e, &serveHelp)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if err := oneOf("log-format", logFormat, "text", "json"); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return usagef("--log-level must be debug, info, warn or error, not %q", logLevel)
	}
	if (cfg.tlsCert == "") != (cfg.tlsKey == "") {
		return usagef("--tls-cert and --tls-key go together")
	}
	if err := checkPath(cfg.path); err != nil {
		return err
	}
	if cfg.static != "" && cfg.path == "/" {
		return usagef("--static serves /, so --path must be another path")
	}
	if drainTimeout <= 0 {
		return usagef("--drain-timeout must be positive")
	}
	if readyDelay < 0 || goodbyeWindow < 0 {
		return usagef("--ready-delay and --goodbye-window must not be negative")
	}
	if readyDelay+goodbyeWindow >= drainTimeout {
		return usagef("--ready-delay (%s) and --goodbye-window (%s) must leave time within --drain-timeout (%s) for the calls in flight", readyDelay, goodbyeWindow, drainTimeout)
	}
	if math.IsNaN(handshakeRate) || math.IsInf(handshakeRate, 0) || handshakeRate < 0 {
		return usagef("--handshake-rate must be a number of handshakes a second, 0 (no limit) or more, not %v", handshakeRate)
	}
	if handshakeBurst < 0 {
		return usagef("--handshake-burst must not be negative")
	}
	if handshakeBurst > 0 && handshakeRate == 0 {
		return usagef("--handshake-burst needs --handshake-rate")
	}
	if cfg.path == readyPath || cfg.path == livePath {
		return usagef("--path %s is where the health checks are served; choose another path", cfg.path)
	}
	if healthAddr != "" {
		if _, _, err := net.SplitHostPort(healthAddr); err != nil {
			return usagef("--health-addr must be host:port, not %q", healthAddr)
		}
	}
	if maxConns < 1 {
		return usagef("--max-conns must be at least 1")
	}
	if idleTimeout <= 0 {
		return usagef("--idle-timeout must be positive")
	}
	if withPprof && metricsAddr == "" {
		return usagef("--pprof needs --metrics-addr: profiles are served on the metrics listener only")
	}
	nats := false
	fs.Visit(func(f *flag.Flag) { nats = nats || f.Name == "nats" })
	if nats && e.ext.Broker == nil {
		// Not a mistake in the line but in the build: no "(run --help)",
		// so that the line ends with the command to run.
		fmt.Fprintln(e.stderr, "wsrpc serve: --nats needs the NATS build of wsrpc: go install github.com/wsrpc/wsrpc/natsbroker/cmd/wsrpc@latest")
		return exitCode(exitUsage)
	}
	if nats && natsURL == "" {
		return usagef("--nats needs a URL")
	}
	if natsWait < 0 {
		return usagef("--nats-wait must not be negative")
	}
	if natsWait > 0 && !nats {
		return usagef("--nats-wait needs --nats")
	}
	allowed, trusted := commaList(hosts), commaList(proxies)
	cfg.logger = newLogger(e.stderr, logFormat, level)
	// The listening line goes out whatever --log-level says: scripts wait
	// for it to learn the address.
	announce := newLogger(e.stderr, logFormat, slog.LevelInfo)

	opts := []server.Option{
		rpc.WithLogger(cfg.logger),
		server.WithMaxConns(maxConns),
		server.WithIdleTimeout(idleTimeout),
		server.WithAllowedHosts(allowed...),
		server.WithReadyDelay(readyDelay),
		server.WithGoodbyeWindow(goodbyeWindow),
		server.WithHandshakeRate(handshakeRate, handshakeBurst),
	}
	if len(trusted) == 0 && forwardedHeader != "X-Forwarded-For" {
		return usagef("--forwarded-header needs --trusted-proxies")
	}
	if len(trusted) > 0 {
		opts = append(opts, server.WithTrustedProxies(trusted...), server.WithForwardedHeader(forwardedHeader))
	}
	if len(origins) > 0 {
		opts = append(opts, server.WithOriginPatterns(origins...))
	}
	var (
		hub *pubsub.Hub
		tap *brokerTap
	)
	if demoTopics || nats {
		if hub, tap, err = serveHub(ctx, e.ext, natsURL, natsWait, demoTopics, cfg.logger); err != nil {
			return err
		}
		// Closed, with its broker, once the server has shut down (the
		// defer runs after it).
		defer hub.Close()
		opts = append(opts, server.WithHub(hub))
	}
	// The streams end before the graceful shutdown below: a tail never
	// ends by itself, and would hold the drain up.
	streams := newStreaming(hub, tap)
	defer streams.Stop()
	mux := services(demoBroadcast, cfg.logger, streams)
	var figs *figures
	if metricsAddr != "" {
		figs = newFigures()
		figs.hub = hub
		mux.Use(handler.Instrument(figs.incoming))
		opts = append(opts, rpc.WithOutgoingMiddleware(handler.Instrument(figs.out)))
	}
	srv, err := server.New(mux, opts...)
	if err != nil { // a bad flag value: New checks --allowed-hosts and --trusted-proxies
		return usagef("%s", strings.TrimPrefix(err.Error(), "wsrpc: "))
	}
	r, err := listen(srv, &cfg)
	if err != nil {
		return err
	}
	var health *healthServer
	if healthAddr != "" {
		if health, err = listenHealth(srv, healthAddr, cfg.logger); err != nil {
			r.srv.Close()
			<-r.served
			return fmt.Errorf("--health-addr: %w", err)
		}
		// Closed once the server has stopped, so that probes see it drain.
		defer health.close()
	}
	announce.Info("listening on " + r.url)
	if health != nil {
		announce.Info("health checks on " + health.url + readyPath + " and " + livePath)
	}
	if figs != nil {
		figs.srv = srv
		ml, err := listenMetrics(metricsAddr, figs, withPprof)
		if err != nil {
			r.srv.Close()
			<-r.served
			return fmt.Errorf("--metrics-addr: %w", err)
		}
		defer ml.close() // after the graceful shutdown: the drain can be watched
		announce.Info("metrics on " + ml.url)
		if withPprof {
			cfg.logger.Info("pprof on " + strings.TrimSuffix(ml.url, "/metrics") + "/debug/pprof/")
			if !ml.loopback {
				cfg.logger.Warn("pprof is served on a non-loopback address: anyone who reaches it can profile the process")
			}
		}
	}
	if demoBroadcast {
		cfg.logger.Warn("the broadcast service is on: any client can make the server notify every connection")
	}
	if cfg.static != "" {
		cfg.logger.Info("serving files", "dir", cfg.static, "at", r.base+"/")
	}
	var clk *clock
	if hub != nil && demoTopics {
		clk = startClock(srv, cfg.logger)
		defer clk.Stop() // on every path; stopped before the shutdown below
		cfg.logger.Info("pub/sub topics: time (the server's time every second), chat.> (clients may publish)")
	}
	if nats {
		cfg.logger.Info("pub/sub broker: NATS " + redactURL(natsURL))
	}

	var serveErr error
	select {
	case <-ctx.Done():
		cfg.logger.Info("shutting down", "ready_delay", readyDelay, "goodbye_window", goodbyeWindow, "timeout", drainTimeout)
	case serveErr = <-r.served:
		r.served = nil
		cfg.logger.Error("server failed; shutting down", "err", serveErr)
	}
	if clk != nil {
		clk.Stop()
	}
	streams.Stop()
	sctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	if err := r.shutdown(sctx); err != nil {
		// "wsrpc serve: shutdown cut short on 1 connections (...)"
		return errors.New(strings.TrimPrefix(err.Error(), "wsrpc: "))
	}
	if serveErr != nil {
		return serveErr
	}
	cfg.logger.Info("stopped; every call finished")
	return nil
}

// brokerTimeout bounds the making of the --nats broker.
const brokerTimeout = 10 * time.Second

// serveHub returns serve's pub/sub hub: with the demo topics if demo (with
// no rules otherwise: clients subscribe, only Go code publishes), and with
// the broker ext.Broker makes for natsURL when natsURL is set, with the
// tap the tail service reads through. The hub owns the broker: its Close
// closes it.
func serveHub(ctx context.Context, ext Extensions, natsURL string, wait time.Duration, demo bool, logger *slog.Logger) (*pubsub.Hub, *brokerTap, error) {
	if natsURL == "" {
		if !demo {
			return newHub(logger, nil)
		}
		return demoHub(logger, nil)
	}
	shown := redactURL(natsURL)
	b, err := connectBroker(ctx, ext, natsURL, wait, logger)
	if err != nil {
		return nil, nil, err
	}
	var (
		hub *pubsub.Hub
		tap *brokerTap
	)
	if demo {
		hub, tap, err = demoHub(logger, b)
	} else {
		hub, tap, err = newHub(logger, b)
	}
	if err != nil {
		b.Close() // the hub did not take it
		return nil, nil, fmt.Errorf("--nats %s: %s", shown, strings.TrimPrefix(err.Error(), "wsrpc: "))
	}
	return hub, tap, nil
}

// connectBroker makes the --nats broker, trying again with backoff
// (natsRetryFirst doubling to natsRetryMax) for up to wait after the first
// failure, so that a server started beside its NATS (a pod, a compose
// file) waits for it rather than exiting. ctx ending (SIGTERM) stops the
// wait.
func connectBroker(ctx context.Context, ext Extensions, natsURL string, wait time.Duration, logger *slog.Logger) (pubsub.Broker, error) {
	shown := redactURL(natsURL)
	giveUp := time.Now().Add(wait)
	pause := natsRetryFirst
	for attempt := 1; ; attempt++ {
		bctx, cancel := context.WithTimeout(ctx, brokerTimeout)
		b, err := ext.Broker(bctx, natsURL)
		cancel()
		switch {
		case err == nil && b == nil:
			return nil, fmt.Errorf("--nats %s: the broker func returned no broker", shown)
		case err == nil:
			return b, nil
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			err = fmt.Errorf("no broker within %s: %w", brokerTimeout, err)
		}
		if ctx.Err() != nil || time.Now().Add(pause).After(giveUp) {
			if attempt > 1 {
				return nil, fmt.Errorf("--nats %s: %d attempts over %s: %w", shown, attempt, wait, err)
			}
			return nil, fmt.Errorf("--nats %s: %w", shown, err)
		}
		if logger != nil {
			logger.Warn("NATS not reachable yet; trying again", "url", shown, "attempt", attempt, "in", pause, "err", err)
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("--nats %s: stopped while waiting for NATS: %w", shown, context.Cause(ctx))
		}
		pause = min(2*pause, natsRetryMax)
	}
}

// The pauses between tries of --nats-wait.
const (
	natsRetryFirst = 250 * time.Millisecond
	natsRetryMax   = 5 * time.Second
)

// redactURL is the comma-separated list of URLs s (a NATS URL may name
// several servers) without the passwords and tokens it holds, for logs and
// errors.
func redactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || u.User == nil {
			continue
		}
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		} else {
			u.User = url.User("xxxxx") // a token
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}

func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// checkPath makes sure p can be an http.ServeMux pattern of one path.
func checkPath(p string) error {
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, " \t{}") {
		return usagef("--path must start with / and hold no spaces or braces, not %q", p)
	}
	return nil
}

// running is a server listening on a port of its own.
type running struct {
	srv    *server.Server
	hs     *http.Server
	url    string     // of the RPC endpoint
	base   string     // scheme://host:port
	served chan error // Serve's result; nil once received
}

// listen starts serving srv at cfg.path of cfg.addr (and cfg.static at /) on
// one goroutine, which shutdown waits for.
func listen(srv *server.Server, cfg *serveConfig) (*running, error) {
	var tlsConfig *tls.Config
	if cfg.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.tlsCert, cfg.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("TLS: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	mux := http.NewServeMux()
	var endpoint http.Handler = srv
	if cfg.wrap != nil {
		endpoint = cfg.wrap(srv)
	}
	mux.Handle(cfg.path, endpoint)
	mountHealth(mux, srv)
	if cfg.static != "" {
		fi, err := os.Stat(cfg.static)
		if err != nil {
			return nil, fmt.Errorf("--static: %w", err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("--static: %s is not a directory", cfg.static)
		}
		mux.Handle("/", http.FileServer(http.Dir(cfg.static)))
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return nil, err
	}
	// The server's own settings (timeouts, header limit, error log); its
	// Shutdown stops this http.Server too.
	hs := srv.HTTPServer(mux)
	hs.TLSConfig = tlsConfig
	scheme := "ws"
	if tlsConfig != nil {
		scheme = "wss"
	}
	base := scheme + "://" + displayAddr(ln.Addr())
	r := &running{srv: srv, hs: hs, url: base + cfg.path, base: base, served: make(chan error, 1)}
	go func() { // owned: shutdown waits for it
		var err error
		if tlsConfig != nil {
			err = hs.ServeTLS(ln, "", "")
		} else {
			err = hs.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		r.served <- err
	}()
	return r, nil
}

// shutdown stops listening (the server's Shutdown stops the http.Server it
// made), drains and closes every connection, and waits for the serving
// goroutine. It returns a *server.ShutdownError when ctx ended before every
// call finished.
func (r *running) shutdown(ctx context.Context) error {
	err := r.srv.Shutdown(ctx)
	if r.served != nil {
		<-r.served
	}
	return err
}

// displayAddr is the address to dial to reach a listener on a: the
// loopback name when it listens on every interface.
func displayAddr(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	host := ta.IP.String()
	if ta.IP.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, strconv.Itoa(ta.Port))
}

// commaList splits the values of a repeatable flag at commas, dropping
// blanks.
func commaList(values listFlag) []string {
	var out []string
	for _, v := range values {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}
