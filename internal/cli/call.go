package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

var callHelp = help{
	usage: "call [flags] URL METHOD [PARAMS]\n       wsrpc call --list URL",
	about: `
Calls METHOD on the wsrpc server at URL and prints the result as indented JSON
on stdout. PARAMS is JSON (an array or an object for --codec json), or - to
read it from stdin; put -- before PARAMS that start with '-'.

When the server answers with an error, "error CODE: MESSAGE" goes to stderr,
and the exit status tells the error's class:
  0    the call succeeded
  1    another error: an application's own code, or another failure
  2    usage: the command line is wrong; nothing was dialed
  3    no connection: dial, TLS, proxy or handshake failed, or the connection
       was lost before the reply came (-32006: the outcome is unknown)
  4    timed out: --timeout passed, or the server answered -32002
  5    method not found (-32601)
  6    invalid params or request (-32602, -32600, -32700)
  7    the handler failed: internal error (-32603)
  8    refused for now, safe to retry: unavailable or busy (-32000, -32003)
  9    not allowed: unauthenticated or permission denied (-32004, -32005, or
       HTTP 401 or 403 at the handshake)
  10   cancelled on the server's side (-32001)
  130  interrupted by SIGINT (143: SIGTERM)

-v prints the handshake on stderr: the request's and the response's headers
(credentials in Authorization, Proxy-Authorization and Cookie hidden), then
how long the TCP connection, the TLS handshake, the WebSocket handshake and the
call took.

--list asks the server for its methods (the reserved method rpc.discover,
which answers an OpenRPC document) and prints one a line: name, params and
result, from their JSON Schema, and the summary. 'wsrpc call URL
rpc.discover' prints the whole document.

The server may call back while the call is in flight: --answer names a JSON
file mapping method names to the results to answer with; other methods are
answered with method-not-found (-32601).

With --stream, METHOD is called as a stream (serve's countdown and tail are
streams): each result is printed on stdout as it arrives, as compact JSON on
a line of its own (JSON Lines, for jq), and the final result, unless null,
goes to stderr as "end: RESULT". An error ends a stream as it ends a call,
after the results it sent. SIGINT cancels the stream on the server too and
exits with 130 ("interrupted after N results"). --window is the initial
credit: how many results the server may send ahead of those printed; it is
held back beyond (the window grows for small results, to about 1 MiB of
them, and up to 4 MiB while the printing keeps up). --timeout bounds the dial only, unless given: then the whole stream
too. A method that does not stream just answers: that is the final result.`,
	examples: `
wsrpc call ws://127.0.0.1:8080/rpc add '[1,2,3]'
wsrpc call ws://127.0.0.1:8080/rpc sleep '{"ms":500}' --timeout 2s
echo '{"hello":"world"}' | wsrpc call ws://127.0.0.1:8080/rpc echo -
wsrpc call -H 'Authorization: Bearer xyz' wss://api.example.com/rpc whoami
wsrpc call --answer answers.json ws://127.0.0.1:8080/rpc callback '{"method":"ping"}'
wsrpc call --stream ws://127.0.0.1:8080/rpc countdown '{"from":5}'
wsrpc call --stream --window 8 ws://127.0.0.1:8080/rpc tail '{"topic":"time"}' | jq -r .data
wsrpc call --list ws://127.0.0.1:8080/rpc
wsrpc call -v --ca ca.pem wss://api.example.com/rpc whoami`,
}

// rpcFlags are the flags call and notify share.
type rpcFlags struct {
	dial    dialFlags
	codec   codecFlag
	timeout time.Duration
}

func (f *rpcFlags) register(fs *flag.FlagSet) {
	f.dial.register(fs)
	f.codec.register(fs)
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "give up after this `duration` (dialing included; 0: never)")
}

// options returns the options of client.Dial for command name: the flags',
// then extra. A one-shot command does not reconnect: a connection lost
// fails it.
func (f *rpcFlags) options(e *env, name string, extra ...client.Option) ([]client.Option, error) {
	opts, err := f.dial.clientOptions(e, name)
	if err != nil {
		return nil, err
	}
	opts = append(opts, f.codec.options()...)
	opts = append(opts, client.WithReconnect(false))
	return append(opts, extra...), nil
}

// rpcTarget is what call and notify are asked to do.
type rpcTarget struct {
	url    string
	method string
	params any // nil or rpc.Raw
}

// parseTarget reads URL METHOD [PARAMS] and checks them, so that a mistake
// is reported before anything is dialed.
func parseTarget(e *env, pos []string, codec *codecFlag) (*rpcTarget, error) {
	if err := codec.check(); err != nil {
		return nil, err
	}
	switch {
	case len(pos) < 2:
		return nil, usagef("want URL METHOD [PARAMS], got %d argument(s)", len(pos))
	case len(pos) > 3:
		return nil, usagef("unexpected argument %q (quote PARAMS as one argument)", pos[3])
	}
	t := &rpcTarget{url: pos[0], method: pos[1]}
	if err := checkURL(t.url); err != nil {
		return nil, err
	}
	if t.method == "" {
		return nil, usagef("METHOD is empty")
	}
	if len(pos) == 3 {
		raw, err := readParams(e, pos[2])
		if err != nil {
			return nil, err
		}
		if codec.name == "json" {
			if c := firstByte(raw); c != '[' && c != '{' {
				return nil, usagef("JSON-RPC params must be an array or an object, not %s", raw)
			}
		}
		t.params = rpc.Raw(raw)
	}
	return t, nil
}

// readParams returns PARAMS as compact JSON, read from stdin for "-".
func readParams(e *env, arg string) ([]byte, error) {
	src := []byte(arg)
	from := "PARAMS"
	if arg == "-" {
		b, err := io.ReadAll(e.stdin)
		if err != nil {
			return nil, fmt.Errorf("read PARAMS from stdin: %w", err)
		}
		src, from = b, "PARAMS from stdin"
		if len(bytes.TrimSpace(src)) == 0 {
			return nil, usagef("%s is empty", from)
		}
	}
	var v json.RawMessage
	if err := json.Unmarshal(src, &v); err != nil {
		return nil, usagef("%s is not valid JSON: %v", from, err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, v); err != nil {
		return nil, usagef("%s is not valid JSON: %v", from, err)
	}
	return buf.Bytes(), nil
}

func firstByte(b []byte) byte {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

func runCall(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("call")
	var f rpcFlags
	f.register(fs)
	answerFile := fs.String("answer", "", "answer the server's callbacks from this JSON `file`: {\"method\": result, ...}")
	stream := fs.Bool("stream", false, "call METHOD as a stream: print each result as it arrives, one JSON value a line (see above)")
	window := fs.Int("window", rpc.DefaultStreamWindow, fmt.Sprintf("with --stream, the initial credit window: the `n` results (1 to %d) the server may send ahead of those printed (it grows for small results)", rpc.MaxStreamWindow))
	verbose := fs.Bool("v", false, "print the handshake's headers and the timing of dial, handshake and call on stderr")
	list := fs.Bool("list", false, "list the server's methods (rpc.discover) instead of calling one; takes only URL")
	pos, err := parseArgs(fs, args, e, &callHelp)
	if err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	if given["window"] && !*stream {
		return usagef("--window needs --stream")
	}
	if *window < 1 || *window > rpc.MaxStreamWindow {
		return usagef("--window must be between 1 and %d, not %d", rpc.MaxStreamWindow, *window)
	}
	if *list {
		if *stream {
			return usagef("--list and --stream exclude each other")
		}
		if len(pos) != 1 {
			return usagef("--list takes URL alone, got %d argument(s)", len(pos))
		}
		pos = append(pos, discoverMethod)
	}
	t, err := parseTarget(e, pos, &f.codec)
	if err != nil {
		return err
	}
	answers, err := loadAnswers(*answerFile)
	if err != nil {
		return err
	}
	var trace *handshakeTrace
	if *verbose {
		trace = newHandshakeTrace(e.stderr)
		f.dial.wrap = trace.wrap
	}
	opts, err := f.options(e, "call", rpc.WithHandler(answerHandler(answers)))
	if err != nil {
		return err
	}

	callCtx, cancel := withTimeout(ctx, f.timeout)
	defer cancel()
	dctx := callCtx
	if trace != nil {
		dctx = trace.context(callCtx)
	}
	c, err := dialClient(dctx, t.url, opts...)
	if trace != nil {
		trace.dialed(c, err)
	}
	if err != nil {
		return dialFailure(ctx, err, f.timeout)
	}
	defer c.Close()
	if *stream {
		if !given["timeout"] {
			// A stream may run for long (a tail until SIGINT): the default
			// timeout bounds the dial only.
			cancel()
			callCtx, cancel = context.WithCancel(ctx)
			defer cancel()
		}
		return callStream(ctx, callCtx, e, c, t, *window, f.timeout)
	}
	var out rpc.Raw
	t0 := time.Now()
	err = c.Call(callCtx, t.method, t.params, &out)
	if trace != nil {
		trace.called(t.method, time.Since(t0), err)
	}
	if err != nil {
		if *list && rpc.CodeOf(err) == rpc.CodeMethodNotFound && isRPCError(err) {
			return &failure{status: exitMethodNotFound, err: errors.New("the server does not list its methods: rpc.discover: method not found")}
		}
		return rpcFailure(ctx, e, err, f.timeout)
	}
	if *list {
		return printMethods(e.stdout, out)
	}
	printJSON(e.stdout, out)
	return nil
}

// callStream calls t as a stream on c and prints its results as they
// arrive, one compact JSON value a line on stdout, then the final result
// (unless null) on stderr as "end: RESULT". parent is the command's
// context (it ends on SIGINT), ctx the stream's.
func callStream(parent, ctx context.Context, e *env, c *client.Client, t *rpcTarget, window int, timeout time.Duration) error {
	s, err := c.Stream(ctx, t.method, t.params, rpc.WithWindow(window))
	if err != nil {
		return rpcFailure(parent, e, err, timeout)
	}
	defer s.Close()
	n := 0
	for {
		it, err := s.Recv()
		switch {
		case err == nil:
			n++
			printLine(e.stdout, it)
			continue
		case errors.Is(err, io.EOF):
			var final rpc.Raw
			if err := s.Result(&final); err != nil {
				return rpcFailure(parent, e, err, timeout)
			}
			if len(final) > 0 && !bytes.Equal(bytes.TrimSpace(final), []byte("null")) {
				fmt.Fprintf(e.stderr, "end: %s\n", oneLineJSON(final))
			}
			return nil
		case parent.Err() != nil:
			msg := fmt.Sprintf("interrupted after %d results", n)
			if n == 1 {
				msg = "interrupted after 1 result"
			}
			return &failure{status: interruptedStatus(parent), err: errors.New(msg)}
		default:
			return rpcFailure(parent, e, err, timeout)
		}
	}
}

// printLine prints a result as compact JSON on one line.
func printLine(w io.Writer, b []byte) {
	fmt.Fprintf(w, "%s\n", oneLineJSON(b))
}

// oneLineJSON returns a result as compact JSON ("null" for none), or as it
// came when it is not JSON (a binary value codec).
func oneLineJSON(b []byte) []byte {
	if len(b) == 0 {
		return []byte("null")
	}
	c, err := compactJSON(b)
	if err != nil {
		return b
	}
	return c
}

// withTimeout is context.WithTimeout, with 0 meaning no timeout.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// timeoutError rewords an error caused by the command's own timeout or by
// an interrupt; an interrupt exits with 130 (SIGINT) or 143 (SIGTERM), a
// timeout with exitTimeout.
func timeoutError(parent context.Context, err error, timeout time.Duration) error {
	switch {
	case parent.Err() != nil:
		return &failure{status: interruptedStatus(parent), err: errors.New("interrupted")}
	case errors.Is(err, context.DeadlineExceeded) && !isRPCError(err):
		var de *dialErr
		if errors.As(err, &de) {
			return &failure{status: exitTimeout, err: err} // "dial URL: timed out"
		}
		return &failure{status: exitTimeout, err: fmt.Errorf("timed out after %s", timeout)}
	}
	return err
}

// dialFailure is timeoutError for a failed dial: the connection could not
// be made (exitNoConnection), or the server refused the credentials
// (exitNotAllowed).
func dialFailure(parent context.Context, err error, timeout time.Duration) error {
	err = timeoutError(parent, err, timeout)
	var f *failure
	if errors.As(err, &f) {
		return err
	}
	var he *transport.HandshakeError
	if errors.As(err, &he) && (he.StatusCode == http.StatusUnauthorized || he.StatusCode == http.StatusForbidden) {
		return &failure{status: exitNotAllowed, err: err}
	}
	return &failure{status: exitNoConnection, err: err}
}

func isRPCError(err error) bool {
	var e *rpc.Error
	return errors.As(err, &e)
}

// Exit statuses of call (and notify, publish) beyond 0, 1 and 2: the class
// of what went wrong. callHelp lists them.
const (
	exitNoConnection   = 3
	exitTimeout        = 4
	exitMethodNotFound = 5
	exitInvalid        = 6
	exitServerError    = 7
	exitRetryLater     = 8
	exitNotAllowed     = 9
	exitCancelled      = 10
)

// exitStatusOf returns the exit status of an error code.
func exitStatusOf(code rpc.Code) int {
	switch code {
	case rpc.CodeConnectionLost:
		return exitNoConnection
	case rpc.CodeDeadlineExceeded:
		return exitTimeout
	case rpc.CodeMethodNotFound:
		return exitMethodNotFound
	case rpc.CodeInvalidParams, rpc.CodeInvalidRequest, rpc.CodeParseError:
		return exitInvalid
	case rpc.CodeInternalError:
		return exitServerError
	case rpc.CodeUnavailable, rpc.CodeBusy:
		return exitRetryLater
	case rpc.CodeUnauthenticated, rpc.CodePermissionDenied:
		return exitNotAllowed
	case rpc.CodeCanceled:
		return exitCancelled
	}
	return exitFailure
}

// rpcFailure reports a failed call: "error CODE: MESSAGE" for an error from
// the wire, one line with the cause otherwise; the exit status is the
// error's class.
func rpcFailure(parent context.Context, e *env, err error, timeout time.Duration) error {
	var re *rpc.Error
	if !errors.As(err, &re) || parent.Err() != nil {
		err = timeoutError(parent, err, timeout)
		var f *failure
		if !errors.As(err, &f) && rpc.CodeOf(err) == rpc.CodeConnectionLost {
			return &failure{status: exitNoConnection, err: err}
		}
		return err
	}
	fmt.Fprintln(e.stderr, errorLine(re))
	return exitCode(exitStatusOf(re.Code))
}

// errorLine is an error from the wire on one line: "error CODE: MESSAGE".
func errorLine(re *rpc.Error) string {
	line := fmt.Sprintf("error %d: %s", int32(re.Code), re.Message)
	if re.Message == "" {
		line = fmt.Sprintf("error %d: %s", int32(re.Code), re.Code)
	}
	if len(re.Data) > 0 {
		line += " (data: " + string(re.Data) + ")"
	}
	return line
}

// printJSON prints a result as indented JSON ("null" for none).
func printJSON(w io.Writer, b []byte) {
	if len(b) == 0 {
		b = []byte("null")
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		buf.Reset()
		buf.Write(b) // not JSON (a binary value codec): as it came
	}
	buf.WriteByte('\n')
	w.Write(buf.Bytes())
}

// loadAnswers reads the --answer file: a JSON object of method → result.
func loadAnswers(file string) (map[string]json.RawMessage, error) {
	if file == "" {
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, usagef("--answer: %v", err)
	}
	var answers map[string]json.RawMessage
	if err := json.Unmarshal(b, &answers); err != nil {
		return nil, usagef("--answer %s: want a JSON object mapping method names to results: %v", file, err)
	}
	return answers, nil
}

// answerHandler answers the server's calls from answers; other methods get
// method-not-found.
func answerHandler(answers map[string]json.RawMessage) rpc.Handler {
	return rpc.HandlerFunc(func(_ context.Context, req *rpc.Request) ([]byte, error) {
		if a, ok := answers[req.Method]; ok {
			return a, nil
		}
		return nil, rpc.Errorf(rpc.CodeMethodNotFound, "method not found: %s (no --answer for it)", req.Method)
	})
}
