// Package integration holds end-to-end tests: third-party clients (Python
// websockets, Node ws, a browser) against the server, and restarts under
// load. Tests that need a tool that is not installed skip with a message
// naming the package to install; .ci/run installs them.
package integration

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		for _, d := range sharedDirs {
			os.RemoveAll(d)
		}
		os.Exit(code)
	}))
}
