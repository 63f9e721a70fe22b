package natsbroker_test

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nginxInstall says how to get nginx.
const nginxInstall = "install Debian's nginx package (apt-get install nginx)"

// nginxBinary returns the path of nginx (Debian puts it in /usr/sbin,
// outside a user's PATH). Without it the test skips, or fails when CI is
// set.
func nginxBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("nginx not found: %s (CI is set: the binary is required)", nginxInstall)
	}
	t.Skipf("nginx not found: %s", nginxInstall)
	return ""
}

// nginxProc is a real nginx run by the test: unprivileged-port listener,
// everything it writes (pid, logs, temporary files) in its own directory.
type nginxProc struct {
	t      *testing.T
	dir    string
	addr   string // host:port it listens on
	cmd    *exec.Cmd
	exited chan error
	out    *lockedBuffer
}

// The documented site listens on one port and logs into /var/log/nginx/.
var (
	nginxListen = regexp.MustCompile(`(?m)^(\s*listen\s+)(\S+);`)
	nginxLogDir = "/var/log/nginx/"
)

// startNginx runs nginx with site (the contents of an http block, as a
// conf.d file has) on a free loopback port: the site's listen directive is
// pointed there and its log paths into the test's directory. nginx is
// stopped when t ends.
func startNginx(t *testing.T, site string) *nginxProc {
	t.Helper()
	bin := nginxBinary(t)
	if n := len(nginxListen.FindAllString(site, -1)); n != 1 {
		t.Fatalf("the site has %d listen directives, want 1", n)
	}
	n := &nginxProc{t: t, dir: t.TempDir()}
	main := strings.NewReplacer("DIR", n.dir).Replace(`worker_processes 1;
pid DIR/nginx.pid;
error_log DIR/error.log notice;
events { worker_connections 1024; }
http {
    client_body_temp_path DIR/client_body;
    proxy_temp_path DIR/proxy;
    fastcgi_temp_path DIR/fastcgi;
    uwsgi_temp_path DIR/uwsgi;
    scgi_temp_path DIR/scgi;
    access_log DIR/access.log;
    include DIR/site.conf;
}
`)
	if err := os.WriteFile(filepath.Join(n.dir, "nginx.conf"), []byte(main), 0o600); err != nil {
		t.Fatal(err)
	}
	var lastErr string
	for range 5 { // the free port may be taken before nginx binds it
		n.addr = freeAddr(t)
		conf := nginxListen.ReplaceAllString(site, "${1}"+n.addr+";")
		conf = strings.ReplaceAll(conf, nginxLogDir, n.dir+"/")
		if err := os.WriteFile(filepath.Join(n.dir, "site.conf"), []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		n.out = &lockedBuffer{}
		n.cmd = exec.Command(bin, "-p", n.dir, "-c", filepath.Join(n.dir, "nginx.conf"),
			"-e", filepath.Join(n.dir, "error.log"), "-g", "daemon off;")
		n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
		if err := n.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		n.exited = make(chan error, 1)
		cmd, exited := n.cmd, n.exited
		go func() { exited <- cmd.Wait() }() // stop receives it
		if n.listening() {
			t.Cleanup(n.stop)
			return n
		}
		errLog, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
		lastErr = n.out.String() + string(errLog)
	}
	t.Fatalf("nginx did not start:\n%s", lastErr)
	return nil
}

// listening waits until nginx accepts connections (true), or exits or
// takes more than 10 s (false; it is then stopped).
func (n *nginxProc) listening() bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-n.exited:
			n.cmd = nil
			return false
		default:
		}
		if c, err := net.DialTimeout("tcp", n.addr, time.Second); err == nil {
			c.Close()
			return true
		}
		time.Sleep(10 * time.Millisecond) // polling the port, bounded above
	}
	n.stop()
	return false
}

// stop ends nginx gracefully (SIGQUIT: it closes its listeners and waits
// for the connections open), at most 10 s, then kills it.
func (n *nginxProc) stop() {
	if n.cmd == nil {
		return
	}
	if !endProcess(n.cmd.Process, n.exited, syscall.SIGQUIT, 10*time.Second) {
		n.t.Errorf("nginx did not stop on SIGQUIT within 10s")
	}
	n.cmd = nil
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// handshake is one line of the documented access log: a request, its
// answer, and what each upstream nginx tried answered.
type handshake struct {
	start    time.Time // when nginx received it
	status   int       // nginx's answer (101: upgraded)
	upstream []string  // the upstream answers, in the order tried ("502" when it was unreachable)
}

// The documented log_format: ... "$request" $status $request_time
// upstream=$upstream_addr upstream_status=$upstream_status msec=$msec.
var accessLine = regexp.MustCompile(`"GET [^"]*" (\d{3}) ([\d.]+) upstream=(.*) upstream_status=(.*) msec=([\d.]+)$`)

// handshakes reads the access log of the documented site (once nginx has
// stopped, since a WebSocket's line is written when it closes).
func (n *nginxProc) handshakes(t *testing.T) []handshake {
	t.Helper()
	f, err := os.Open(filepath.Join(n.dir, "wsrpc.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var hs []handshake
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := accessLine.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("an access log line not in the documented format: %q", sc.Text())
		}
		status, _ := strconv.Atoi(m[1])
		took, _ := strconv.ParseFloat(m[2], 64)
		end, _ := strconv.ParseFloat(m[5], 64)
		h := handshake{status: status, start: time.UnixMilli(int64((end - took) * 1000))}
		for s := range strings.SplitSeq(m[4], ", ") {
			if s != "-" {
				h.upstream = append(h.upstream, s)
			}
		}
		hs = append(hs, h)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return hs
}
