package cli

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/wsrpc/wsrpc/transport"
)

var connectHelp = help{
	usage: "connect [flags] URL",
	about: `
A raw interactive WebSocket client for any WebSocket server, wsrpc or not.
Each line read from stdin is sent as one text message (with --binary, as one
binary message, the line being hex, or base64 with --base64). Every message
received is printed on stdout:
  < 15:04:05.000 text: {"jsonrpc":"2.0","id":1,"result":6}
  < 15:04:05.001 binary (3 bytes): 0a0b0c

Commands (lines starting with /; start a line with // to send a literal /):
  /ping                    send a ping and print the round trip
  /close [code] [reason]   close with that code (default 1000) and reason

When stdin ends, connect waits until the connection has been quiet for
--linger (so replies to what was just sent are printed), then closes with 1000.
When the connection ends, it prints how ("closed: 1000 normal closure "bye"")
and exits with 0, or 1 if it ended abnormally (no closing handshake, or a
protocol error). Messages go to stdout; the banner and errors to stderr.`,
	examples: `
wsrpc connect ws://127.0.0.1:8080/rpc
echo '{"jsonrpc":"2.0","id":1,"method":"add","params":[1,2]}' | wsrpc connect --no-time ws://127.0.0.1:8080/rpc
wsrpc connect --subprotocol chat.v2 --origin https://example.com wss://example.com/socket
echo 'aGVsbG8=' | wsrpc connect --base64 wss://echo.example.com`,
}

func runConnect(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("connect")
	var (
		d            dialFlags
		subprotocols listFlag
		origin       string
		binary       bool
		b64          bool
		noTime       bool
		linger       time.Duration
		timeout      time.Duration
	)
	d.register(fs)
	fs.Var(&subprotocols, "subprotocol", "offer this `subprotocol` (repeatable, in order of preference)")
	fs.StringVar(&origin, "origin", "", "send this `origin` in the Origin header")
	fs.BoolVar(&binary, "binary", false, "send each line as a binary message, decoded from hex")
	fs.BoolVar(&b64, "base64", false, "with --binary (implied), decode each line from base64 instead of hex")
	fs.BoolVar(&noTime, "no-time", false, "print no timestamps (stable output, for scripts and tests)")
	fs.DurationVar(&linger, "linger", time.Second, "after stdin ends, close once nothing has arrived for this `duration`")
	fs.DurationVar(&timeout, "timeout", 10*time.Second, "bound the opening handshake by this `duration`")
	pos, err := parseArgs(fs, args, e, &connectHelp)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one URL, got %d arguments", len(pos))
	}
	u := pos[0]
	if err := checkURL(u); err != nil {
		return err
	}
	if linger < 0 {
		return usagef("--linger must not be negative")
	}
	// connect stays on package transport, not client: it speaks raw
	// WebSocket messages to any server, wsrpc or not, and shows what arrives
	// and how the connection closes, which an RPC client would hide.
	o := d.transportOptions(e, "connect", subprotocols)
	if origin != "" {
		if o.Header == nil {
			o.Header = http.Header{}
		}
		o.Header.Set("Origin", origin)
	}
	dctx, cancel := withTimeout(ctx, timeout)
	conn, err := transport.Dial(dctx, u, o)
	cancel()
	if err != nil {
		return timeoutError(ctx, dialError(u, err), timeout)
	}
	sub := conn.Subprotocol()
	if sub == "" {
		sub = "none"
	}
	fmt.Fprintf(e.stderr, "connected to %s (subprotocol: %s); type messages, /ping, /close [code] [reason]; EOF closes\n", redact(u), sub)

	s := &session{
		e:      e,
		conn:   conn,
		binary: binary || b64,
		b64:    b64,
		noTime: noTime,
		linger: linger,
		pongs:  make(chan string),
	}
	return s.run(ctx)
}

// session is one interactive connection. Only run's goroutine prints on
// stdout; the stdin reader and the pings hand it what they have.
type session struct {
	e      *env
	conn   *transport.Conn
	binary bool
	b64    bool
	noTime bool
	linger time.Duration

	quit  <-chan struct{} // closed when run is done: helpers stop
	pongs chan string     // results of /ping, printed by run
	pings sync.WaitGroup
}

func (s *session) run(parent context.Context) error {
	// ctx ends when run is done, which stops the helpers: the stdin reader
	// and the pings.
	ctx, stop := context.WithCancel(parent)
	defer stop()
	s.quit = ctx.Done()
	lines := make(chan string) // closed by the stdin reader at EOF
	var reader sync.WaitGroup
	reader.Add(1)
	go s.readLines(&reader, lines)

	recv := s.conn.Recv()
	in := lines
	var quiet *time.Timer // after EOF: fires when the connection has been quiet for linger
	var quietC <-chan time.Time
	interrupted := parent.Done()
	for recv != nil {
		select {
		case m, ok := <-recv:
			if !ok {
				recv = nil
				break
			}
			s.print(m)
			if quiet != nil {
				quiet.Reset(s.linger)
			}
		case line, ok := <-in:
			if !ok {
				in = nil
				if s.linger == 0 {
					s.close(transport.StatusNormalClosure, "")
				} else {
					quiet = time.NewTimer(s.linger)
					defer quiet.Stop()
					quietC = quiet.C
				}
				break
			}
			s.handle(ctx, line)
		case p := <-s.pongs:
			fmt.Fprintln(s.e.stdout, p)
		case <-quietC:
			s.close(transport.StatusNormalClosure, "")
		case <-interrupted:
			interrupted = nil
			s.close(transport.StatusNormalClosure, "")
		}
	}
	s.conn.CloseNow() // the connection has ended: wait for its goroutines
	err := s.conn.Err()
	fmt.Fprintf(s.e.stdout, "closed: %s\n", closeText(err))

	stop()
	s.pings.Wait()
	s.stopReader(&reader)
	if abnormal(err) {
		return exitCode(exitFailure)
	}
	return nil
}

// closeTimeout bounds the closing handshake: a peer that does not answer
// the close frame in time is dropped.
const closeTimeout = 3 * time.Second

// close performs the closing handshake, dropping the connection if the peer
// does not answer within closeTimeout; what arrived before is still on Recv,
// which run drains.
func (s *session) close(code transport.StatusCode, reason string) {
	done := make(chan error, 1)
	go func() { done <- s.conn.Close(code, reason) }() // owned: received below
	t := time.NewTimer(closeTimeout)
	defer t.Stop()
	var err error
	select {
	case err = <-done:
	case <-t.C:
		s.conn.CloseNow() // cuts the Close above short
		err = <-done
		if err == nil {
			err = fmt.Errorf("the server did not answer the close within %s; dropped the connection", closeTimeout)
		}
	}
	if err != nil {
		fmt.Fprintf(s.e.stderr, "wsrpc connect: %v\n", err)
	}
}

// readLines sends each line of stdin on lines, and closes it at EOF.
func (s *session) readLines(wg *sync.WaitGroup, lines chan<- string) {
	defer wg.Done()
	defer close(lines)
	sc := bufio.NewScanner(s.e.stdin)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		select {
		case lines <- strings.TrimSuffix(sc.Text(), "\r"):
		case <-s.quit:
			return
		}
	}
	if err := sc.Err(); err != nil {
		select {
		case <-s.quit:
		default:
			fmt.Fprintf(s.e.stderr, "wsrpc connect: reading stdin: %v\n", err)
		}
	}
}

// stopReader ends the stdin reader and waits for it.
func (s *session) stopReader(reader *sync.WaitGroup) { stopReader(s.e.stdin, reader) }

// stopReader ends a reader of stdin (connect's, publish's) and waits for
// it. A read from a terminal cannot be interrupted: for the process's own
// stdin the reader is left blocked in it, holding nothing, and ends with
// the process when main returns. Any other reader is closed if it can be (a
// pipe, in tests) and waited for.
func stopReader(stdin io.Reader, reader *sync.WaitGroup) {
	if f, ok := stdin.(*os.File); ok {
		f.Close()
		return
	}
	if c, ok := stdin.(io.Closer); ok {
		c.Close()
	}
	reader.Wait()
}

// handle sends one line, or runs it as a command.
func (s *session) handle(ctx context.Context, line string) {
	switch {
	case strings.HasPrefix(line, "//"):
		line = line[1:]
	case strings.HasPrefix(line, "/"):
		s.command(ctx, line)
		return
	}
	m := transport.Message{Type: transport.Text, Data: []byte(line)}
	if s.binary {
		data, err := s.decode(line)
		if err != nil {
			fmt.Fprintf(s.e.stderr, "wsrpc connect: not sent: %v\n", err)
			return
		}
		m = transport.Message{Type: transport.Binary, Data: data}
	} else if !utf8.ValidString(line) {
		fmt.Fprintln(s.e.stderr, "wsrpc connect: not sent: the line is not valid UTF-8 (use --binary)")
		return
	}
	if err := s.conn.Send(ctx, m); err != nil {
		fmt.Fprintf(s.e.stderr, "wsrpc connect: not sent: %v\n", err)
	}
}

func (s *session) decode(line string) ([]byte, error) {
	line = strings.Join(strings.Fields(line), "")
	if s.b64 {
		b, err := base64.StdEncoding.DecodeString(line)
		if err != nil {
			return nil, fmt.Errorf("bad base64: %v", err)
		}
		return b, nil
	}
	b, err := hex.DecodeString(line)
	if err != nil {
		return nil, fmt.Errorf("bad hex: %v", err)
	}
	return b, nil
}

func (s *session) command(ctx context.Context, line string) {
	fields := strings.Fields(line)
	switch fields[0] {
	case "/ping":
		s.pings.Add(1)
		go s.ping(ctx)
	case "/close":
		code := transport.StatusNormalClosure
		reason := ""
		if len(fields) > 1 {
			n, err := strconv.Atoi(fields[1])
			if err != nil || !sendableCode(n) {
				fmt.Fprintf(s.e.stderr, "wsrpc connect: /close: %q is not a close code one may send (1000-1003, 1007-1014, 3000-4999)\n", fields[1])
				return
			}
			code = transport.StatusCode(n)
			_, rest, _ := strings.Cut(strings.TrimSpace(line), fields[1])
			reason = strings.TrimSpace(rest)
		}
		s.close(code, reason)
	default:
		fmt.Fprintf(s.e.stderr, "wsrpc connect: unknown command %s: use /ping, /close [code] [reason], or // to send a line starting with /\n", fields[0])
	}
}

// sendableCode reports whether RFC 6455 lets an endpoint send close code n.
func sendableCode(n int) bool {
	return (n >= 1000 && n <= 1003) || (n >= 1007 && n <= 1014) || (n >= 3000 && n <= 4999)
}

// ping runs one /ping on its own goroutine and hands the result to run.
func (s *session) ping(ctx context.Context) {
	defer s.pings.Done()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rtt, err := s.conn.Ping(pctx)
	msg := s.stamp() + fmt.Sprintf("pong after %s", rtt)
	if err != nil {
		msg = s.stamp() + fmt.Sprintf("ping failed: %v", err)
	}
	select {
	case s.pongs <- msg:
	case <-s.quit:
	}
}

// stamp is the prefix of a printed event: "< 15:04:05.000 ".
func (s *session) stamp() string {
	if s.noTime {
		return "< "
	}
	return "< " + time.Now().Format("15:04:05.000") + " "
}

func (s *session) print(m transport.Message) {
	if m.Type == transport.Binary {
		fmt.Fprintf(s.e.stdout, "%sbinary (%d bytes): %s\n", s.stamp(), len(m.Data), hex.EncodeToString(m.Data))
		return
	}
	fmt.Fprintf(s.e.stdout, "%stext: %s\n", s.stamp(), m.Data)
}
