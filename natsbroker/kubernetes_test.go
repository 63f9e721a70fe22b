package natsbroker_test

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/natstest"
)

// manifestField returns the first submatch of re in manifest.
func manifestField(t *testing.T, manifest, re string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(manifest)
	if m == nil {
		t.Fatalf("the manifest has no %s", re)
	}
	return m[1]
}

// TestDeploymentDocKubernetes checks docs/DEPLOYMENT.md's Deployment: the
// grace period covers the preStop pause and the drain timeout, and the
// container's arguments, run on free loopback ports, answer the probes on
// the ports they name, and on SIGTERM turn readiness to 503 while
// liveness stays 200, then exit 0 within the drain timeout.
func TestDeploymentDocKubernetes(t *testing.T) {
	manifest := codeBlock(t, docSection(t, "Kubernetes"), "yaml")
	grace, _ := strconv.Atoi(manifestField(t, manifest, `terminationGracePeriodSeconds: (\d+)`))
	preStop, _ := strconv.Atoi(manifestField(t, manifest, `preStop:\s+sleep: \{seconds: (\d+)\}`))
	var args []string
	if err := json.Unmarshal([]byte(manifestField(t, manifest, `args: (\[.*\])`)), &args); err != nil {
		t.Fatalf("the container's args: %v", err)
	}
	ports := map[string]string{}
	for _, m := range regexp.MustCompile(`\{name: (\w+), containerPort: (\d+)\}`).FindAllStringSubmatch(manifest, -1) {
		ports[m[1]] = m[2]
	}
	type probe struct{ path, port string }
	probeOf := func(kind string) probe {
		m := regexp.MustCompile(kind + `:\s+httpGet: \{path: (\S+), port: (\w+)\}`).FindStringSubmatch(manifest)
		if m == nil || ports[m[2]] == "" {
			t.Fatalf("no %s on a declared port in the manifest", kind)
		}
		return probe{m[1], m[2]}
	}
	ready, live := probeOf("readinessProbe"), probeOf("livenessProbe")

	flag := func(name string) string {
		i := slices.Index(args, name)
		if i < 0 || i+1 >= len(args) {
			t.Fatalf("the container's args have no %s", name)
		}
		return args[i+1]
	}
	if args[0] != "serve" {
		t.Fatalf("the container runs %q, want serve", args[0])
	}
	drain, err := time.ParseDuration(flag("--drain-timeout"))
	if err != nil {
		t.Fatal(err)
	}
	if need := time.Duration(preStop)*time.Second + drain + 5*time.Second; time.Duration(grace)*time.Second < need {
		t.Errorf("terminationGracePeriodSeconds %d: want at least preStop %ds + --drain-timeout %v + 5s", grace, preStop, drain)
	}
	// Section 7's rule for the ready delay: a little above the readiness
	// probe's period times its failure threshold, so that a balancer that
	// polls /readyz has stopped sending before handshakes are refused.
	period, _ := strconv.Atoi(manifestField(t, manifest, `readinessProbe:[^}]*\}\s+periodSeconds: (\d+)`))
	failures, _ := strconv.Atoi(manifestField(t, manifest, `readinessProbe:[^}]*\}\s+periodSeconds: \d+\s+failureThreshold: (\d+)`))
	readyDelay, err := time.ParseDuration(flag("--ready-delay"))
	if err != nil {
		t.Fatal(err)
	}
	if polled := time.Duration(period*failures) * time.Second; readyDelay <= polled {
		t.Errorf("--ready-delay %v: want it above the readiness probe's periodSeconds %d × failureThreshold %d", readyDelay, period, failures)
	}
	// Which port is which flag's: the probes must reach the listener
	// that outlives the drain.
	portOf := func(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }
	if portOf(flag("--addr")) != ports["ws"] || portOf(flag("--health-addr")) != ports[live.port] || ready.port != live.port {
		t.Fatalf("--addr %s, --health-addr %s, ports %v, probes on %s and %s", flag("--addr"), flag("--health-addr"), ports, ready.port, live.port)
	}

	nats := natstest.Start(t, true)
	health := freeAddr(t)
	p := &serveProc{t: t, bin: wsrpcBinary(t), addr: "127.0.0.1:0"}
	i := slices.Index(args, "--addr")
	p.args = slices.Concat(args[:i], args[i+2:])
	p.args[slices.Index(p.args, "--health-addr")+1] = health
	p.args[slices.Index(p.args, "--nats")+1] = nats.URL
	p.start()
	t.Cleanup(p.stop)

	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	status := func(path string) int {
		resp, err := hc.Get("http://" + health + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if r, l := status(ready.path), status(live.path); r != http.StatusOK || l != http.StatusOK {
		t.Fatalf("before SIGTERM: %s %d, %s %d, want 200 and 200", ready.path, r, live.path, l)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(drain)
	for status(ready.path) != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatalf("%s still not 503 %v after SIGTERM", ready.path, drain)
		}
		time.Sleep(10 * time.Millisecond) // polling the probe, bounded above
	}
	if l := status(live.path); l != http.StatusOK {
		t.Errorf("draining: %s %d, want 200", live.path, l)
	}
	select {
	case err := <-p.exited:
		p.cmd = nil
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.out.String())
		}
	case <-time.After(drain + 5*time.Second):
		t.Fatalf("still running %v after SIGTERM (--drain-timeout %v)", drain+5*time.Second, drain)
	}
}
