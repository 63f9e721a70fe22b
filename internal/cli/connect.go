package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
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
binary message, the line being hex, or base64 with --base64).

On a terminal, connect shows a prompt; a message that arrives is printed above
the line being typed, which is drawn again below it, as it was (arrows, Home,
End, Backspace and the history work; Ctrl-D on an empty line ends the input).
Every message is printed with what it is:
  < 15:04:05.000 text: {"jsonrpc":"2.0","id":1,"result":6}
  < 15:04:05.001 binary (3 bytes): 0a0b0c

When stdout is not a terminal (a pipe into jq, a file), stdout gets the
messages alone, one a line: text as it came, binary in hex (base64 with
--base64); the rest (pongs, how the connection closed) goes to stderr. --raw
writes each message's payload exactly, even on a terminal: text followed by
a newline, binary as its bytes.

With --jsonrpc, a line is 'METHOD [PARAMS]' (PARAMS a JSON array or object),
sent as a JSON-RPC 2.0 request with the next id (1, 2, ...); a line starting
with { or [ is sent as it is (a batch, say). JSON messages that arrive are
pretty-printed (--pretty does that without --jsonrpc).

Commands (lines starting with /; start a line with // to send a literal /):
  /ping                    send a ping and print the round trip
  /close [code] [reason]   close with that code (default 1000) and reason
  /notify METHOD [PARAMS]  with --jsonrpc: send a notification (no id)

When stdin ends, connect waits until the connection has been quiet for
--linger (so replies to what was just sent are printed), then closes with 1000.
When the connection ends, it prints how ("closed: 1000 normal closure "bye"")
and exits with 0, or 1 if it ended abnormally (no closing handshake, or a
protocol error). SIGINT (Ctrl-C) closes with 1000.

Changed: without a terminal, stdout used to get the messages with their
"< text: " prefix, and the pongs and the close; it now gets the messages alone.`,
	examples: `
wsrpc connect ws://127.0.0.1:8080/rpc
wsrpc connect --jsonrpc ws://127.0.0.1:8080/rpc
echo '{"jsonrpc":"2.0","id":1,"method":"add","params":[1,2]}' | wsrpc connect ws://127.0.0.1:8080/rpc | jq .result
wsrpc connect --subprotocol chat.v2 --origin https://example.com wss://example.com/socket
wsrpc connect --ca ca.pem --cert me.pem --key me-key.pem --proxy http://proxy.internal:3128 wss://example.com/socket
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
		raw          bool
		jsonrpc      bool
		pretty       bool
		linger       time.Duration
		timeout      time.Duration
	)
	d.register(fs)
	fs.Var(&subprotocols, "subprotocol", "offer this `subprotocol` (repeatable, in order of preference)")
	fs.StringVar(&origin, "origin", "", "send this `origin` in the Origin header")
	fs.BoolVar(&binary, "binary", false, "send each line as a binary message, decoded from hex")
	fs.BoolVar(&b64, "base64", false, "with --binary (implied), decode each line from base64 instead of hex; print binary messages in base64")
	fs.BoolVar(&noTime, "no-time", false, "print no timestamps (stable output, for scripts and tests)")
	fs.BoolVar(&raw, "raw", false, "print the payloads only, exactly as they came, even on a terminal")
	fs.BoolVar(&jsonrpc, "jsonrpc", false, "type 'METHOD [PARAMS]': sent as JSON-RPC 2.0 requests with ids; replies pretty-printed")
	fs.BoolVar(&pretty, "pretty", false, "pretty-print the JSON messages that arrive")
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
	if jsonrpc && (binary || b64) {
		return usagef("--jsonrpc sends text: it excludes --binary and --base64")
	}
	// connect stays on package transport, not client: it speaks raw
	// WebSocket messages to any server, wsrpc or not, and shows what arrives
	// and how the connection closes, which an RPC client would hide.
	o, err := d.transportOptions(e, "connect", subprotocols)
	if err != nil {
		return err
	}
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
	hint := "type messages"
	if jsonrpc {
		hint = "type METHOD [PARAMS], /notify METHOD [PARAMS]"
	}
	fmt.Fprintf(e.stderr, "connected to %s (subprotocol: %s); %s, /ping, /close [code] [reason]; EOF closes\n", redact(u), sub, hint)

	s := &session{
		e:       e,
		conn:    conn,
		binary:  binary || b64,
		b64:     b64,
		noTime:  noTime,
		events:  e.stdoutTTY && !raw,
		raw:     raw,
		jsonrpc: jsonrpc,
		pretty:  pretty || jsonrpc,
		linger:  linger,
		pongs:   make(chan string),
	}
	return s.run(ctx)
}

// session is one interactive connection. Only run's goroutine prints on
// stdout; the stdin reader and the pings hand it what they have.
type session struct {
	e       *env
	conn    *transport.Conn
	binary  bool
	b64     bool
	noTime  bool
	events  bool // print each message with what it is ("< text: ..."), and the events, on stdout
	raw     bool // print the payloads exactly
	jsonrpc bool
	pretty  bool
	linger  time.Duration

	nextID int64       // the last JSON-RPC id sent
	prompt *lineEditor // on a terminal; nil otherwise

	quit  <-chan struct{} // closed when run is done: helpers stop
	pongs chan string     // results of /ping, printed by run
	pings sync.WaitGroup
}

// terminal returns the terminal connect reads keys from and draws its
// prompt on (stdin and stdout both one), or nil.
func (s *session) terminal() *os.File {
	in, ok := s.e.stdin.(*os.File)
	if !ok || !isTerminal(in) || !s.e.stdoutTTY {
		return nil
	}
	return in
}

func (s *session) run(parent context.Context) error {
	// ctx ends when run is done, which stops the helpers: the stdin reader
	// and the pings.
	ctx, stop := context.WithCancel(parent)
	defer stop()
	s.quit = ctx.Done()
	lines := make(chan string) // closed by the stdin reader at EOF
	var keys chan []byte       // the same, on a terminal in raw mode
	var reader sync.WaitGroup
	reader.Add(1)
	var term *rawTerm
	if tty := s.terminal(); tty != nil {
		fd := tty.Fd() // the reader reads it itself, with a timeout
		if t, err := makeRaw(fd); err == nil {
			term = t
			defer term.restore()
			s.prompt = newLineEditor(s.e.stdout, "> ", term.width)
			s.prompt.draw()
			keys, lines = make(chan []byte), nil
			go s.readKeys(&reader, fd, keys)
		}
	}
	if term == nil {
		go s.readLines(&reader, lines)
	}

	recv := s.conn.Recv()
	inLines, inKeys := lines, keys
	var quiet *time.Timer // after EOF: fires when the connection has been quiet for linger
	var quietC <-chan time.Time
	interrupted := parent.Done()
	eof := func() {
		inLines, inKeys = nil, nil
		if s.linger == 0 {
			s.close(transport.StatusNormalClosure, "")
			return
		}
		quiet = time.NewTimer(s.linger)
		quietC = quiet.C
	}
	defer func() {
		if quiet != nil {
			quiet.Stop()
		}
	}()
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
		case line, ok := <-inLines:
			if !ok {
				eof()
				break
			}
			s.handle(ctx, line)
		case k, ok := <-inKeys:
			entered, end := s.prompt.Feed(k)
			for _, line := range entered {
				s.handle(ctx, line)
			}
			if !ok || end {
				eof()
			}
		case p := <-s.pongs:
			s.event(p)
		case <-quietC:
			s.close(transport.StatusNormalClosure, "")
		case <-interrupted:
			interrupted = nil
			s.close(transport.StatusNormalClosure, "")
		}
	}
	s.conn.CloseNow() // the connection has ended: wait for its goroutines
	err := s.conn.Err()
	s.event("closed: " + closeText(err))
	if s.prompt != nil {
		s.prompt.Close()
	}

	stop()
	s.pings.Wait()
	if term != nil {
		reader.Wait() // it reads with a timeout: it sees quit
	} else {
		s.stopReader(&reader)
	}
	if abnormal(err) {
		return exitCode(exitFailure)
	}
	return nil
}

// readKeys sends what is typed on the terminal fd, in raw mode, on keys,
// and closes it when the terminal fails (hung up). Its reads time out after
// a tenth of a second, so that it sees quit.
func (s *session) readKeys(wg *sync.WaitGroup, fd uintptr, keys chan<- []byte) {
	defer wg.Done()
	defer close(keys)
	for {
		buf := make([]byte, 256)
		n, err := readTerm(fd, buf)
		if n > 0 {
			select {
			case keys <- buf[:n]:
			case <-s.quit:
				return
			}
		}
		if err != nil {
			return
		}
		select {
		case <-s.quit:
			return
		default:
		}
	}
}

// note prints a diagnostic on stderr, above the prompt when there is one
// on the same terminal.
func (s *session) note(format string, args ...any) {
	msg := "wsrpc connect: " + fmt.Sprintf(format, args...)
	if s.prompt != nil && s.e.stderrTTY {
		s.prompt.Above(msg)
		return
	}
	fmt.Fprintln(s.e.stderr, msg)
}

// event prints what happened (a pong, the close): on stdout with the
// messages when they are printed with what they are, on stderr otherwise,
// so that stdout holds only the messages.
func (s *session) event(text string) {
	switch {
	case s.prompt != nil && (s.events || s.e.stderrTTY):
		s.prompt.Above(text)
	case s.events:
		fmt.Fprintln(s.e.stdout, text)
	default:
		fmt.Fprintln(s.e.stderr, text)
	}
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
		s.note("%v", err)
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
			fmt.Fprintf(s.e.stderr, "wsrpc connect: reading stdin: %v\n", err) // not the session's goroutine: no prompt here
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
	switch {
	case s.binary:
		data, err := s.decode(line)
		if err != nil {
			s.note("not sent: %v", err)
			return
		}
		m = transport.Message{Type: transport.Binary, Data: data}
	case !utf8.ValidString(line):
		s.note("not sent: the line is not valid UTF-8 (use --binary)")
		return
	case s.jsonrpc:
		data, err := s.request(line, true)
		if err != nil {
			s.note("not sent: %v", err)
			return
		}
		if data == nil {
			return // an empty line
		}
		m.Data = data
	}
	s.send(ctx, m)
}

func (s *session) send(ctx context.Context, m transport.Message) {
	if err := s.conn.Send(ctx, m); err != nil {
		s.note("not sent: %v", err)
	}
}

// request turns a --jsonrpc line, 'METHOD [PARAMS]', into a JSON-RPC 2.0
// request (a notification when call is false); a line starting with { or [
// is sent as it is, an empty line not at all (nil).
func (s *session) request(line string, call bool) ([]byte, error) {
	line = strings.TrimSpace(line)
	switch {
	case line == "":
		return nil, nil
	case call && (line[0] == '{' || line[0] == '['):
		return []byte(line), nil
	}
	method, params, _ := strings.Cut(line, " ")
	params = strings.TrimSpace(params)
	req := struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      *int64          `json:"id,omitempty"`
		Method  string          `json:"method"`
		Params  json.RawMessage `json:"params,omitempty"`
	}{JSONRPC: "2.0", Method: method}
	if params != "" {
		if c := params[0]; c != '[' && c != '{' {
			return nil, fmt.Errorf("PARAMS must be a JSON array or object, not %s", params)
		}
		if !json.Valid([]byte(params)) {
			return nil, fmt.Errorf("PARAMS is not valid JSON: %s", params)
		}
		req.Params = json.RawMessage(params)
	}
	if call {
		s.nextID++
		id := s.nextID
		req.ID = &id
	}
	return json.Marshal(req)
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
	case "/notify":
		if !s.jsonrpc {
			s.note("/notify needs --jsonrpc")
			return
		}
		data, err := s.request(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "/notify")), false)
		switch {
		case err != nil:
			s.note("not sent: %v", err)
		case data == nil:
			s.note("/notify: want /notify METHOD [PARAMS]")
		default:
			s.send(ctx, transport.Message{Type: transport.Text, Data: data})
		}
	case "/close":
		code := transport.StatusNormalClosure
		reason := ""
		if len(fields) > 1 {
			n, err := strconv.Atoi(fields[1])
			if err != nil || !sendableCode(n) {
				s.note("/close: %q is not a close code one may send (1000-1003, 1007-1014, 3000-4999)", fields[1])
				return
			}
			code = transport.StatusCode(n)
			_, rest, _ := strings.Cut(strings.TrimSpace(line), fields[1])
			reason = strings.TrimSpace(rest)
		}
		s.close(code, reason)
	default:
		s.note("unknown command %s: use /ping, /close [code] [reason], /notify METHOD [PARAMS] (--jsonrpc), or // to send a line starting with /", fields[0])
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

// print prints a message that arrived: with what it is (events), its
// payload on a line (for pipes), or its payload exactly (--raw).
func (s *session) print(m transport.Message) {
	var out string
	data := m.Data
	if m.Type == transport.Text && s.pretty && !s.raw {
		var buf bytes.Buffer
		if json.Indent(&buf, data, "", "  ") == nil {
			data = buf.Bytes()
		}
	}
	switch {
	case s.raw && m.Type == transport.Binary:
		out = string(data)
	case s.raw:
		out = string(data) + "\n"
	case m.Type == transport.Binary && s.events:
		out = fmt.Sprintf("%sbinary (%d bytes): %s\n", s.stamp(), len(data), s.encode(data))
	case m.Type == transport.Binary:
		out = s.encode(data) + "\n"
	case s.events:
		out = fmt.Sprintf("%stext: %s\n", s.stamp(), data)
	default:
		out = string(data) + "\n"
	}
	if s.prompt != nil {
		s.prompt.Above(out)
		return
	}
	io.WriteString(s.e.stdout, out)
}

// encode is a binary payload for people: hex, or base64 with --base64.
func (s *session) encode(b []byte) string {
	if s.b64 {
		return base64.StdEncoding.EncodeToString(b)
	}
	return hex.EncodeToString(b)
}
