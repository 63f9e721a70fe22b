package cli

import (
	"context"
	"fmt"
	"runtime/debug"
)

// version is the version of wsrpc.
const version = "0.1.0-dev"

var versionHelp = help{
	usage: "version",
	about: `
Prints the version of wsrpc and, when the binary carries build information,
the Go version it was built with and the source revision.`,
	examples: `wsrpc version`,
}

func runVersion(_ context.Context, e *env, args []string) error {
	fs := newFlagSet("version")
	pos, err := parseArgs(fs, args, e, &versionHelp)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	fmt.Fprintln(e.stdout, versionLine())
	return nil
}

// versionLine is "wsrpc 0.1.0-dev (go1.26.0, revision 3bf6cf5+dirty)",
// with what the build information offers.
func versionLine() string {
	s := "wsrpc " + version
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return s
	}
	extra := bi.GoVersion
	var rev, dirty string
	for _, kv := range bi.Settings {
		switch kv.Key {
		case "vcs.revision":
			rev = kv.Value
		case "vcs.modified":
			if kv.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev != "" {
		extra += ", revision " + rev[:min(len(rev), 12)] + dirty
	}
	return s + " (" + extra + ")"
}
