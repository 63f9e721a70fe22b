package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
)

// usageError is a mistake in the command line: the command did nothing, and
// wsrpc exits with 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitCode ends a command with a code once it has printed what went wrong
// itself (an RPC error, say).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// failure is an error that ends a command with a status of its class
// (see callHelp): report prints it as one line, as any error.
type failure struct {
	status int
	err    error
}

func (f *failure) Error() string { return f.err.Error() }
func (f *failure) Unwrap() error { return f.err }

// errHelp is returned by a command that printed its help on request.
var errHelp = flag.ErrHelp

// help is what `wsrpc <command> --help` prints.
type help struct {
	usage    string // after "Usage: wsrpc "
	about    string // what the command does; paragraphs separated by blank lines
	examples string // one example a line, without the leading "  "
}

func (h *help) print(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: wsrpc %s\n\n%s\n", h.usage, strings.TrimSpace(h.about))
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprint(w, "\nFlags (before or after the arguments; -- ends the flags):\n")
		printFlags(w, fs)
	}
	if h.examples != "" {
		fmt.Fprint(w, "\nExamples:\n")
		for _, line := range strings.Split(strings.TrimSpace(h.examples), "\n") {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
}

// printFlags lists the flags of fs in an aligned table: -x for one-letter
// names, --name otherwise, the argument's name (in capitals when it is one
// word), the usage and the default when it is not the zero value. A usage
// that starts with a `quoted` name shows that name only as the argument.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fs.VisitAll(func(f *flag.Flag) {
		if f.Usage == "" {
			return // a flag kept only to explain that it is gone
		}
		arg, usage := flag.UnquoteUsage(f)
		if strings.HasPrefix(f.Usage, "`") {
			// "`binary|json` wire codec": the name only names the argument.
			usage = strings.TrimPrefix(strings.TrimPrefix(usage, arg), " ")
		}
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		name := dash + f.Name
		if arg != "" {
			if isWord(arg) {
				arg = strings.ToUpper(arg)
			}
			name += " " + arg
		}
		switch f.DefValue {
		case "", "0", "false", "0s", "[]":
		default:
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(tw, "  %s\t%s\n", name, usage)
	})
	tw.Flush()
}

// isWord reports whether s is made of lowercase letters, digits and
// hyphens: an argument name that help shows in capitals.
func isWord(s string) bool {
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}

// newFlagSet returns a FlagSet that reports nothing itself: parseArgs turns
// its errors into one line.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("wsrpc "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseArgs parses flags given before, between and after the positional
// arguments, and returns the positional ones. Everything after "--" is
// positional. On --help it prints h to stdout and returns errHelp.
func parseArgs(fs *flag.FlagSet, args []string, e *env, h *help) ([]string, error) {
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			h.print(e.stdout, fs)
			return nil, errHelp
		}
		if err != nil {
			return nil, &usageError{msg: err.Error()}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// headerFlag collects -H 'Name: value' flags.
type headerFlag struct{ h http.Header }

func (f *headerFlag) String() string {
	if f == nil || len(f.h) == 0 {
		return ""
	}
	var parts []string
	for name, values := range f.h {
		for _, v := range values {
			parts = append(parts, name+": "+v)
		}
	}
	return strings.Join(parts, ", ")
}

func (f *headerFlag) Set(s string) error {
	name, value, ok := strings.Cut(s, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" || strings.ContainsAny(name, " \t") {
		return fmt.Errorf("want 'Name: value', got %q", s)
	}
	if f.h == nil {
		f.h = http.Header{}
	}
	f.h.Add(name, strings.TrimSpace(value))
	return nil
}

// header returns the headers collected, nil if none.
func (f *headerFlag) header() http.Header { return f.h.Clone() }

// listFlag collects the values of a repeatable flag.
type listFlag []string

func (f *listFlag) String() string { return strings.Join(*f, ",") }

func (f *listFlag) Set(s string) error {
	*f = append(*f, s)
	return nil
}

// oneOf checks that the value of flag name is one of allowed.
func oneOf(name, value string, allowed ...string) error {
	for _, a := range allowed {
		if value == a {
			return nil
		}
	}
	return usagef("--%s must be one of %s, not %q", name, strings.Join(allowed, ", "), value)
}
