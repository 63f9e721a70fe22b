package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/wstest"
)

// needTool skips a test whose third-party tool is missing, except in CI
// (CI=true), where .ci/run installs every tool and a missing one is a
// failure.
func needTool(t *testing.T, err error, install string) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%v; CI installs it: %s", err, install)
	}
	t.Skipf("%v; to run this test: %s", err, install)
}

// nodeWithWs finds Node.js and Debian's ws package, and returns the node
// binary and the environment that lets it require('ws').
func nodeWithWs(t *testing.T) (node string, env []string) {
	t.Helper()
	node, err := exec.LookPath("node")
	needTool(t, err, "apt-get install -y nodejs node-ws")
	env = append(os.Environ(), "NODE_PATH=/usr/share/nodejs:/usr/lib/nodejs")
	check := exec.Command(node, "-e", "require('ws')")
	check.Env = env
	needTool(t, check.Run(), "apt-get install -y node-ws")
	return node, env
}

// pipelined is how many calls each pipelining client sends without waiting:
// far more than the server's MaxInFlight (100), so most wait in the backlog.
const pipelined = 2000

type pipelineCounts struct{ OK, Refused, Other int }

func checkPipeline(t *testing.T, who string, c pipelineCounts) {
	t.Helper()
	if c.Refused != 0 || c.Other != 0 || c.OK != pipelined {
		t.Errorf("%s: %d ok, %d refused with busy, %d other, of %d pipelined calls; want all ok", who, c.OK, c.Refused, c.Other, pipelined)
	}
}

func runPipeline(t *testing.T, cmd *exec.Cmd) pipelineCounts {
	t.Helper()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", cmd.Path, err)
	}
	var c pipelineCounts
	if err := json.Unmarshal(out, &c); err != nil {
		t.Fatalf("%s printed %q: %v", cmd.Path, out, err)
	}
	return c
}

func TestPipelinedPythonClient(t *testing.T) {
	const python = "/usr/bin/python3"
	needTool(t, exec.Command(python, "-c", "import websockets").Run(), "apt-get install -y python3-websockets")
	url, _, _ := interopServer(t)
	for run := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, python, "testdata/pipeline.py", "ws"+strings.TrimPrefix(url, "http")+"/rpc", fmt.Sprint(pipelined))
		checkPipeline(t, fmt.Sprintf("python run %d", run), runPipeline(t, cmd))
		cancel()
	}
}

func TestPipelinedNodeClient(t *testing.T) {
	node, env := nodeWithWs(t)
	url, _, _ := interopServer(t)
	for run := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, node, "testdata/pipeline.js", "ws"+strings.TrimPrefix(url, "http")+"/rpc", fmt.Sprint(pipelined))
		cmd.Env = env
		checkPipeline(t, fmt.Sprintf("node run %d", run), runPipeline(t, cmd))
		cancel()
	}
}

// TestPipelinedRawSocket writes every call into the socket before reading
// anything, as a raw-socket client does.
func TestPipelinedRawSocket(t *testing.T) {
	url, _, _ := interopServer(t)
	for run := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		p, _, err := wstest.DialPeer(ctx, "ws"+strings.TrimPrefix(url, "http")+"/rpc", nil)
		if err != nil {
			t.Fatal(err)
		}
		p.SetDeadline(time.Now().Add(30 * time.Second))
		var frames []byte
		for i := range pipelined {
			frames = append(frames, p.EncodeFrame(wstest.Frame{Fin: true, Opcode: wstest.OpText,
				Payload: fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"echo","params":["p%d"]}`, i, i)})...)
		}
		// Written from another goroutine: the replies must be read while the
		// calls are still going in, or both sides' socket buffers fill.
		written := make(chan error, 1)
		go func() { written <- p.WriteRaw(frames) }()
		var c pipelineCounts
		for range pipelined {
			f, err := p.ReadFrame()
			if err != nil {
				t.Fatalf("run %d: %v", run, err)
			}
			var msg struct {
				ID     int                 `json:"id"`
				Result []string            `json:"result"`
				Error  *struct{ Code int } `json:"error"`
			}
			json.Unmarshal(f.Payload, &msg)
			switch {
			case len(msg.Result) == 1 && msg.Result[0] == fmt.Sprintf("p%d", msg.ID):
				c.OK++
			case msg.Error != nil && msg.Error.Code == -32003:
				c.Refused++
			default:
				c.Other++
			}
		}
		if err := <-written; err != nil {
			t.Fatal(err)
		}
		checkPipeline(t, fmt.Sprintf("raw socket run %d", run), c)
		p.Close()
		cancel()
	}
}
