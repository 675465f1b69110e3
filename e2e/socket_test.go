package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/calld/calld"
	"github.com/calld/calld/client"
	"github.com/calld/calld/internal/sim"
)

// TestSocketTakeover: a second daemon (another state file) configured
// with the socket of a running one refuses to start, naming the path, and
// the first stays reachable; a dead socket file left behind is replaced.
func TestSocketTakeover(t *testing.T) {
	first := newEnv(t, sim.Options{Authorized: true}, "")
	d := first.start()

	second := newEnv(t, sim.Options{Authorized: true}, "")
	cfg, err := os.ReadFile(second.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg = []byte(strings.Replace(string(cfg), second.socket, first.socket, 1))
	if err := os.WriteFile(second.config, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	d2 := second.spawn(exec.Command(binary, "serve", "--config", second.config))
	select {
	case err := <-d2.done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("second daemon: %v, want exit status 1", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the second daemon took the socket and kept running:\n%s", d2.logs.String())
	}
	if out := d2.logs.String(); !strings.Contains(out, first.socket) || !strings.Contains(out, "another process is listening") {
		t.Errorf("the refusal does not name the socket %s:\n%s", first.socket, out)
	}
	// (Exit 3 is a daemon that answers but is not connected or
	// authorized at the moment; 1 is one that cannot be reached.)
	if _, errOut, code := first.cli("status"); code != 0 && code != 3 {
		t.Fatalf("the first daemon is unreachable after the second one exited: %d %s", code, errOut)
	}

	// A clean stop removes the daemon's own socket file.
	if code := d.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("first daemon exit %d", code)
	}
	if _, err := os.Lstat(first.socket); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file left after a clean stop: %v", err)
	}

	// A dead socket file (a crashed daemon's) is replaced.
	l, err := net.Listen("unix", first.socket)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	first.start()
	if _, errOut, code := first.cli("status"); code != 0 {
		t.Fatalf("status after replacing a dead socket: %d %s", code, errOut)
	}
}

// floodSocketEnv, when set, makes the test binary a flooder (see
// floodMain) instead of running tests.
const floodSocketEnv = "CALLD_E2E_FLOOD_SOCKET"

// floodConns is how many connections each of the two flooders holds:
// 20,000 together, each process within the machine's descriptor limit.
const floodConns = 10000

func init() {
	if socket := os.Getenv(floodSocketEnv); socket != "" {
		floodMain(socket)
	}
}

// floodMain runs as an unprivileged uid: it opens floodConns connections
// to the socket (blocking connects: a full backlog waits for the daemon),
// sends one status request on each and never reads (idle keep-alive
// connections, or refused ones), prints the first line the daemon wrote
// on the last connection, then "ready", and holds everything until its
// stdin closes.
func floodMain(socket string) {
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
		os.Exit(1)
	}
	req := []byte("GET /v1/status HTTP/1.1\r\nHost: calld\r\n\r\n")
	fds := make([]int, 0, floodConns)
	for len(fds) < floodConns {
		fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			fail("socket after %d connections: %v", len(fds), err)
		}
		if err := syscall.Connect(fd, &syscall.SockaddrUnix{Name: socket}); err != nil {
			fail("connect after %d connections: %v", len(fds), err)
		}
		// A connection over the cap is answered 503 and closed as soon as
		// it is accepted, which can be before this write: the write then
		// meets a closed peer (EPIPE, ECONNRESET). The refusal is still
		// in the socket to read; the test checks it on the last one.
		if _, err := syscall.Write(fd, req); err != nil && err != syscall.EPIPE && err != syscall.ECONNRESET {
			fail("write after %d connections: %v", len(fds), err)
		}
		fds = append(fds, fd)
	}
	last := fds[len(fds)-1]
	tv := syscall.Timeval{Sec: 10}
	if err := syscall.SetsockoptTimeval(last, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		fail("SO_RCVTIMEO: %v", err)
	}
	buf := make([]byte, 4096)
	n, err := syscall.Read(last, buf)
	if err != nil {
		fmt.Printf("no answer: %v\nready\n", err)
		n = 0
	}
	answer, _, _ := strings.Cut(string(buf[:n]), "\r\n\r\n")
	status, _, _ := strings.Cut(answer, "\r\n")
	if err == nil {
		fmt.Printf("%s|%v\nready\n", status, strings.Contains(answer, "Content-Type: application/json"))
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// TestConnectionFlood: 20,000 idle connections from an unprivileged uid
// do not keep root's `calld status` from answering within a second; the
// flooders' excess connections are refused with a JSON 503, the daemon's
// descriptors stay bounded, and the refusals are not logged one by one.
func TestConnectionFlood(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run the flooders under another uid")
	}
	const nobody = 65534
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Max < floodConns+100 {
		t.Skipf("RLIMIT_NOFILE hard limit %d is below %d", lim.Max, floodConns+100)
	}
	e := newEnv(t, sim.Options{Authorized: true}, "")
	// Anyone may open the socket; one uid may use every unprivileged
	// connection, so that the flood meets the global cap and root is
	// answered from the reserved share.
	cfg, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg = []byte(strings.Replace(string(cfg), "[control]\n",
		"[control]\nsocket_mode = \"0666\"\nmax_connections = 1024\nmax_connections_per_uid = 1024\n", 1))
	if err := os.WriteFile(e.config, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Dir(e.dir), e.dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	d := e.start()

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(e.dir, "flood.test")
	copyBinary(t, self, bin)
	type flooder struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		lines chan string
	}
	var flooders []flooder
	for range 2 {
		cmd := exec.Command(bin)
		cmd.Env = []string{floodSocketEnv + "=" + e.socket}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		f := flooder{cmd: cmd, stdin: stdin, lines: make(chan string, 4)}
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				f.lines <- sc.Text()
			}
			close(f.lines)
		}()
		t.Cleanup(func() {
			stdin.Close()
			if err := cmd.Wait(); err != nil {
				t.Errorf("flooder: %v", err)
			}
		})
		flooders = append(flooders, f)
	}
	timeout := time.After(120 * time.Second)
	for i, f := range flooders {
		var got []string
		for len(got) < 2 {
			select {
			case line, ok := <-f.lines:
				if !ok {
					t.Fatalf("flooder %d ended after %q", i, got)
				}
				got = append(got, line)
			case <-timeout:
				t.Fatalf("flooder %d did not get its %d connections in 2 minutes (the daemon stopped accepting?); daemon logs:\n%s",
					i, floodConns, tail(d.logs.String(), 20))
			}
		}
		if got[0] != "HTTP/1.1 503 Service Unavailable|true" {
			t.Errorf("flooder %d: a connection past the cap got %q, want a JSON 503", i, got[0])
		}
	}

	// 20,000 connections are open: root is still answered, at once,
	// through the client library and by `calld status`. (GORACE: a -race
	// binary otherwise sleeps 1 s at exit.)
	cl := client.New(e.socket)
	defer cl.Close()
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		start := time.Now()
		_, err := cl.Status(ctx)
		took := time.Since(start)
		if err != nil || took > time.Second {
			cancel()
			t.Fatalf("status as root under the flood: %v after %v (want an answer within 1s)", err, took)
		}
		cl.Close() // a new connection each time
		cmd := exec.CommandContext(ctx, binary, "status")
		cmd.Env = append(os.Environ(), "CALLD_SOCKET="+e.socket, "GORACE=atexit_sleep_ms=0")
		start = time.Now()
		out, err := cmd.CombinedOutput()
		took = time.Since(start)
		cancel()
		if err != nil || took > time.Second {
			t.Fatalf("calld status under the flood: %v after %v (want exit 0 within 1s): %s", err, took, out)
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if len(fds) > 1024+64 {
		t.Errorf("the daemon holds %d descriptors under the flood, want at most max_connections (1024) and a few", len(fds))
	}
	logs := d.logs.String()
	if n := strings.Count(logs, "too many open files"); n > 0 {
		t.Errorf("%d lines about exhausted descriptors", n)
	}
	if n := strings.Count(logs, `"event":"control.refused"`); n < 1 || n > 20 {
		t.Errorf("%d control.refused lines, want a few (rate-limited)", n)
	}
	for _, f := range flooders {
		f.stdin.Close()
	}
	if code := d.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// copyBinary copies an executable where another uid can run it.
func copyBinary(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestEventsSinceAhead: /v1/events?since= beyond the last seq is a 400
// naming the last seq, not a stream that silently never delivers.
func TestEventsSinceAhead(t *testing.T) {
	e := newEnv(t, sim.Options{Authorized: true}, "")
	e.start()
	c := &http.Client{Timeout: 10 * time.Second, Transport: apiTransport(t, &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", e.socket)
	}})}
	for _, path := range []string{"/v1/events?since=1000000", "/v1/events?since=1000000&follow=0"} {
		resp, err := c.Get("http://calld" + path)
		if err != nil {
			t.Errorf("GET %s: %v (want a 400 at once)", path, err)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var body calld.ErrorBody
		_ = json.Unmarshal(b, &body)
		if resp.StatusCode != 400 || body.Error.Code != "invalid" || !strings.Contains(body.Error.Message, "last event's seq is") {
			t.Errorf("GET %s: %d %s, want 400 invalid naming the last seq", path, resp.StatusCode, b)
		}
	}
	if status, _ := e.http("GET", "/v1/events?since=0&follow=0", ""); status != 200 {
		t.Errorf("since=0: %d", status)
	}
}

// startActivated runs `calld serve` with f passed as systemd does
// (descriptor 3, LISTEN_FDS=1, LISTEN_PID the daemon's own pid).
func (e *env) startActivated(f *os.File) *daemon {
	e.t.Helper()
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" serve --config "$1"`, binary, e.config)
	cmd.Env = append(os.Environ(), "LISTEN_FDS=1", "LISTEN_FDNAMES=calld.socket")
	cmd.ExtraFiles = []*os.File{f}
	return e.spawn(cmd)
}

// TestSocketActivation: a passed Unix stream socket is served and logged
// under its real path (not the configured one); any other kind of socket
// is refused at start-up with exit status 1.
func TestSocketActivation(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("needs /bin/sh to set LISTEN_PID to the daemon's pid")
	}
	t.Run("tcp refused", func(t *testing.T) {
		e := newEnv(t, sim.Options{Authorized: true}, "")
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		f, err := l.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		d := e.startActivated(f)
		f.Close()
		select {
		case <-d.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("calld serves a TCP socket passed by socket activation")
		}
		if code := d.cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(d.logs.String(), "want a Unix stream socket") {
			t.Fatalf("exit %d, want 1 and a message refusing the TCP socket:\n%s", code, d.logs.String())
		}
	})
	t.Run("real path", func(t *testing.T) {
		e := newEnv(t, sim.Options{Authorized: true}, "")
		path := filepath.Join(e.dir, "activated.sock")
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		f, err := l.File()
		if err != nil {
			t.Fatal(err)
		}
		d := e.startActivated(f)
		f.Close()
		cl := client.New(path)
		defer cl.Close()
		deadline := time.Now().Add(60 * time.Second)
		for !strings.Contains(d.logs.String(), `"event":"daemon.ready"`) {
			if time.Now().After(deadline) {
				t.Fatal("not ready after 60s")
			}
			select {
			case err := <-d.done:
				t.Fatalf("calld exited: %v", err)
			case <-time.After(20 * time.Millisecond): // polling another process's log
			}
		}
		if _, err := cl.Status(t.Context()); err != nil {
			t.Fatalf("status on the activated socket: %v", err)
		}
		for _, line := range strings.Split(d.logs.String(), "\n") {
			if strings.Contains(line, `"event":"daemon.ready"`) && !strings.Contains(line, `"socket":"`+path+`"`) {
				t.Errorf("daemon.ready does not name the socket really served, %s:\n%s", path, line)
			}
		}
		if code := d.stop(t, syscall.SIGTERM); code != 0 {
			t.Fatalf("exit %d", code)
		}
		if _, err := os.Lstat(path); err != nil {
			t.Errorf("the activated socket file (systemd's) was removed: %v", err)
		}
	})
}

// TestEventsCorruptJournal: a malformed journal entry in the state file
// makes /v1/events answer an error naming it, not a handler panic ("index
// out of range").
func TestEventsCorruptJournal(t *testing.T) {
	e := newEnv(t, sim.Options{Authorized: true}, "")
	d := e.start()
	alice := e.srv.AddPeer("alice")
	id, err := e.srv.IncomingCall(alice, false)
	if err != nil {
		t.Fatal(err)
	}
	e.waitCall(id, calld.StateRinging)
	if code := d.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
	db, err := bolt.Open(e.state, 0o600, &bolt.Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("journal")).Put([]byte{0xff, 1, 2}, []byte("garbage"))
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	d = e.start()
	status, body := e.http("GET", "/v1/events?since=0&follow=0", "")
	msg, _ := body["error"].(map[string]any)["message"].(string)
	if status != 500 || errCode(body) != "internal" || !strings.Contains(msg, "journal key ff0102") || strings.Contains(msg, "index out of range") {
		t.Errorf("events on a corrupt journal: %d %v, want 500 naming the corrupt key", status, body)
	}
	if logs := d.logs.String(); strings.Contains(logs, `"event":"control.panic"`) {
		t.Error("the handler panicked")
	}
}
