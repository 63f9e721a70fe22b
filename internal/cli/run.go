package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/wsrpc/wsrpc/pubsub"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed
	exitUsage   = 2 // the command line is wrong; nothing was done
	// exitInterrupted is the status of a command that SIGINT stopped
	// (128 + 2, as shells report it); see interruptedStatus.
	exitInterrupted = 130
)

// Extensions are what a build of the command adds to it.
type Extensions struct {
	// Broker, when set, makes `serve --nats URL` work: it returns the pub/sub broker for URL.
	// The returned broker is handed to pubsub.WithBroker and closed by the Hub when serve ends.
	// ctx bounds the making of the broker only (serve gives it brokerTimeout
	// and cancels it on SIGINT or SIGTERM); the broker must not keep it.
	Broker func(ctx context.Context, url string) (pubsub.Broker, error)
}

// Main runs the command with os.Args, stdin/stdout/stderr and SIGINT/SIGTERM, and exits.
// It is all a build's main function calls: cmd/wsrpc with zero Extensions,
// natsbroker/cmd/wsrpc with a NATS broker.
func Main(ext Extensions) {
	ctx, stop := notifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runWith(ctx, ext, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// signalCause is the cause of the end of Main's context: the signal
// received.
type signalCause struct{ sig os.Signal }

func (s signalCause) Error() string { return s.sig.String() + " signal received" }

// notifyContext is signal.NotifyContext with the signal as the context's
// cause, so that a command may exit with 128 + its number. After the first
// signal the process's default handling is back: a second Ctrl-C kills a
// command that does not stop. stop releases the signals and waits for the
// goroutine watching them.
func notifyContext(parent context.Context, sigs ...os.Signal) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // owned: stop waits for it
		defer wg.Done()
		select {
		case s := <-ch:
			signal.Stop(ch)
			cancel(signalCause{s})
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		wg.Wait()
		cancel(nil)
	}
}

// interruptedStatus is the exit status of a command that the end of ctx
// stopped: 128 + the number of the signal that ended it (130 for SIGINT,
// 143 for SIGTERM), and 130 when ctx ended otherwise (in tests).
func interruptedStatus(ctx context.Context) int {
	var s signalCause
	if errors.As(context.Cause(ctx), &s) {
		if n, ok := s.sig.(syscall.Signal); ok {
			return 128 + int(n)
		}
	}
	return exitInterrupted
}

// env is what a command may touch of the process: its standard streams,
// and what the build adds. stdout and stderr are safe for concurrent use.
type env struct {
	ext    Extensions
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// stdoutTTY reports whether stdout is a terminal, where output is
	// for people rather than programs.
	stdoutTTY bool
	// stderrTTY reports whether stderr is a terminal, where live progress
	// lines may be redrawn.
	stderrTTY bool
}

// command is one subcommand of wsrpc.
type command struct {
	name    string
	summary string // one line for the top-level usage
	run     func(ctx context.Context, e *env, args []string) error
}

// commands lists the subcommands in the order the usage shows them.
var commands = []command{
	{"serve", "run a wsrpc server with the demo services", runServe},
	{"call", "call a method and print its result as JSON", runCall},
	{"notify", "send a notification (a call without a reply)", runNotify},
	{"subscribe", "subscribe to topics and print their publications", runSubscribe},
	{"publish", "publish a JSON value on a topic", runPublish},
	{"connect", "interactive raw WebSocket client for any WebSocket server", runConnect},
	{"bench", "load-test a method: throughput, latency percentiles, histogram", runBench},
	{"demo", "start a server and walk through what wsrpc does, in one process", runDemo},
	{"version", "print the version", runVersion},
	// help is added by init: it looks commands up.
}

func init() {
	commands = append(commands, command{"help", "show the help of a command ('wsrpc help call')", runHelp})
}

var helpHelp = help{
	usage: "help [COMMAND]",
	about: `
Without COMMAND, lists the commands; with one, shows its help, as
'wsrpc COMMAND --help' does.`,
	examples: `
wsrpc help
wsrpc help bench`,
}

func runHelp(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("help")
	pos, err := parseArgs(fs, args, e, &helpHelp)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 0:
		printUsage(e.stdout)
		return nil
	case len(pos) > 1:
		return usagef("want at most one COMMAND, got %d", len(pos))
	}
	c := lookup(pos[0])
	if c == nil {
		return usagef("unknown command %q", pos[0])
	}
	return c.run(ctx, e, []string{"--help"})
}

// run is the whole program of the core build (no Extensions): it runs the
// command args name and returns the process's exit code. ctx ends on SIGINT
// or SIGTERM.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runWith(ctx, Extensions{}, args, stdin, stdout, stderr)
}

// runWith is run with what the build adds.
func runWith(ctx context.Context, ext Extensions, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{
		ext:       ext,
		stdin:     stdin,
		stdout:    &lockedWriter{w: stdout},
		stderr:    &lockedWriter{w: stderr},
		stdoutTTY: isTerminal(stdout),
		stderrTTY: isTerminal(stderr),
	}
	if len(args) == 0 {
		printUsage(e.stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help":
		printUsage(e.stdout)
		return exitOK
	}
	c := lookup(name)
	if c == nil {
		fmt.Fprintf(e.stderr, "wsrpc: unknown command %q (run 'wsrpc help')\n", name)
		return exitUsage
	}
	return report(e, c.name, c.run(ctx, e, rest))
}

func lookup(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

// report turns what a command returned into an exit code, printing the
// error as one line on stderr.
func report(e *env, name string, err error) int {
	var ue *usageError
	var ec exitCode
	var f *failure
	switch {
	case err == nil, errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, &ec):
		return int(ec)
	case errors.As(err, &f):
		fmt.Fprintf(e.stderr, "wsrpc %s: %v\n", name, err)
		return f.status
	case errors.As(err, &ue):
		fmt.Fprintf(e.stderr, "wsrpc %s: %s (run 'wsrpc %s --help')\n", name, ue.msg, name)
		return exitUsage
	default:
		fmt.Fprintf(e.stderr, "wsrpc %s: %v\n", name, err)
		return exitFailure
	}
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `wsrpc is the command-line tool of wsrpc, a channel-based RPC runtime over WebSocket.

Usage:
  wsrpc <command> [flags] [arguments]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s  %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run 'wsrpc <command> --help' for a command's flags and examples.
New here? Run 'wsrpc demo'.
`)
}

// lockedWriter serialises writes, so that several goroutines (a logger,
// a progress line, a printer) may share one stream.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// isTerminal reports whether v (a stream) is a terminal: a character
// device with terminal attributes (/dev/null is a character device too).
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	sc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	tty := false
	if sc.Control(func(fd uintptr) { tty = isTTY(fd) }) != nil {
		return false
	}
	return tty
}
