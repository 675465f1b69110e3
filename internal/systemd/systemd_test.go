package systemd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotd/neo"
	"github.com/gotd/td/clock"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// notifySocket listens on a unixgram socket in a temporary directory and
// points NOTIFY_SOCKET at it.
func notifySocket(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "n")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return c
}

// recv reads one datagram; the deadline only guards against a hang.
func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no notify message: %v", err)
	}
	return string(buf[:n])
}

// pending returns the datagrams already queued, without waiting. (A read
// deadline in the past would not do: Go reports the timeout before looking
// at the socket.)
func pending(t *testing.T, c *net.UnixConn) []string {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	buf := make([]byte, 4096)
	for {
		var n int
		var rerr error
		err := raw.Read(func(fd uintptr) bool {
			n, _, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		if errors.Is(rerr, unix.EAGAIN) {
			return out
		}
		if rerr != nil {
			t.Fatal(rerr)
		}
		out = append(out, string(buf[:n]))
	}
}

func TestNotifyMessages(t *testing.T) {
	c := notifySocket(t)
	tests := []struct {
		name string
		send func() (bool, error)
		want string // regexp of the whole message
	}{
		{"ready", func() (bool, error) { return Ready("") }, `READY=1`},
		{"ready with status", func() (bool, error) { return Ready("connected dc=2\n1 live call") }, `READY=1\nSTATUS=connected dc=2 1 live call`},
		{"status", func() (bool, error) { return Status("connecting") }, `STATUS=connecting`},
		{"stopping", Stopping, `STOPPING=1`},
		{"reloading", Reloading, `RELOADING=1\nMONOTONIC_USEC=[1-9][0-9]*\n`},
		{"raw", func() (bool, error) { return Notify("ERRNO=5") }, `ERRNO=5`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := tc.send()
			if !ok || err != nil {
				t.Fatalf("sent=%v err=%v", ok, err)
			}
			got := recv(t, c)
			if !regexp.MustCompile(`^` + tc.want + `$`).MatchString(got) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	if p := pending(t, c); len(p) != 0 {
		t.Fatalf("extra messages %q", p)
	}
	if os.Getenv("NOTIFY_SOCKET") == "" {
		t.Fatal("NOTIFY_SOCKET was unset: later messages would be lost")
	}
}

func TestNotifyWithoutSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	for _, f := range []func() (bool, error){func() (bool, error) { return Ready("x") }, Stopping, Reloading, func() (bool, error) { return Status("s") }} {
		if ok, err := f(); ok || err != nil {
			t.Fatalf("outside systemd: sent=%v err=%v", ok, err)
		}
	}
}

func TestNotifyDeadSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "gone"))
	if ok, err := Ready(""); ok || err == nil || !strings.Contains(err.Error(), "READY=1") {
		t.Fatalf("sent=%v err=%v", ok, err)
	}
}

// The loop pings exactly once per tick whose check passed, and logs only
// the changes between passing and failing.
func TestWatchdogPingsOnlyWhileHealthy(t *testing.T) {
	c := notifySocket(t)
	// Each check takes its verdict from the test, so that the test knows
	// which tick it is judging.
	verdicts := make(chan bool)
	var checks atomic.Int32
	check := func(ctx context.Context) error {
		checks.Add(1)
		if _, ok := ctx.Deadline(); !ok {
			return errors.New("check got no deadline")
		}
		if <-verdicts {
			return nil
		}
		return errors.New("event loop stuck")
	}
	var logBuf bytes.Buffer
	log := zerolog.New(&logBuf)
	clk := neo.NewTime(time.Now())
	waiting := clk.Observe() // closed when the loop waits for its next beat
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		runWatchdog(ctx, clk, time.Minute, check, Notify, log)
		close(done)
	}()
	verdicts <- true // the immediate beat
	if got := recv(t, c); got != "WATCHDOG=1" {
		t.Fatalf("got %q", got)
	}
	pattern := []bool{true, false, false, true, true, false, true}
	for _, h := range pattern {
		<-waiting // the previous beat is over
		waiting = clk.Observe()
		clk.Travel(time.Minute)
		verdicts <- h
		if h {
			// A ping from an earlier failing tick would be read here
			// and this tick's ping would then be left over below.
			if got := recv(t, c); got != "WATCHDOG=1" {
				t.Fatalf("got %q", got)
			}
		}
	}
	cancel()
	<-done
	if p := pending(t, c); len(p) != 0 {
		t.Fatalf("pings while failing: %q", p)
	}
	if n := checks.Load(); n != int32(len(pattern)+1) {
		t.Fatalf("%d checks, want %d", n, len(pattern)+1)
	}
	var results []string
	sc := bufio.NewScanner(&logBuf)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, `"event":"daemon.watchdog"`) {
			t.Fatalf("line without event: %s", line)
		}
		results = append(results, regexp.MustCompile(`"result":"(\w+)"`).FindStringSubmatch(line)[1])
	}
	if got := strings.Join(results, ","); got != "failing,ok,failing,ok" {
		t.Fatalf("logged %s", got)
	}
}

func TestWatchdogEnvironment(t *testing.T) {
	log := zerolog.Nop()
	never := func(context.Context) error { t.Error("check called"); return nil }
	tests := []struct {
		name    string
		usec    string
		pid     string
		wantErr bool
	}{
		{"disabled", "", "", false},
		{"another process", "1000000", "1", false},
		{"malformed", "soon", "", true},
		{"zero", "0", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("WATCHDOG_USEC", tc.usec)
			t.Setenv("WATCHDOG_PID", tc.pid)
			err := Watchdog(context.Background(), clock.System, never, log) // returns at once: the context never ends
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

// End to end with the real ticker: WATCHDOG_USEC of 2 ms gives a ping per
// millisecond; read three, then stop.
func TestWatchdogRealTicker(t *testing.T) {
	c := notifySocket(t)
	t.Setenv("WATCHDOG_USEC", "2000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Watchdog(ctx, clock.System, func(context.Context) error { return nil }, zerolog.Nop()) }()
	for i := 0; i < 3; i++ {
		if got := recv(t, c); got != "WATCHDOG=1" {
			t.Fatalf("got %q", got)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestListenersNotActivated(t *testing.T) {
	tests := []struct{ fds, pid string }{
		{"", ""},
		{"1", "1"}, // for another process
		{"0", strconv.Itoa(os.Getpid())},
	}
	for _, tc := range tests {
		t.Setenv("LISTEN_FDS", tc.fds)
		t.Setenv("LISTEN_PID", tc.pid)
		ls, err := Listeners()
		if ls != nil || err != nil {
			t.Fatalf("LISTEN_FDS=%q LISTEN_PID=%q: %v, %v", tc.fds, tc.pid, ls, err)
		}
		ul, err := UnixListener()
		if ul != nil || err != nil {
			t.Fatalf("UnixListener: %v, %v", ul, err)
		}
	}
}

const helperEnv = "CALLD_SYSTEMD_TEST_HELPER"

// TestActivationHelper runs in a child process started by TestActivation,
// with descriptor 3 passed the way systemd passes it.
func TestActivationHelper(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("helper process only")
	}
	l, err := UnixListener()
	if mode == "bad" {
		fmt.Printf("err=%v\n", err)
		return
	}
	if err != nil || l == nil {
		fmt.Printf("err=%v listener=%v\n", err, l)
		return
	}
	conn, err := l.Accept()
	if err != nil {
		fmt.Printf("accept: %v\n", err)
		return
	}
	fmt.Fprintf(conn, "hello from %d via %s; LISTEN_FDS=%q\n", os.Getpid(), l.Addr(), os.Getenv("LISTEN_FDS"))
	conn.Close()
	l.Close()
	fmt.Println("served")
}

// startHelper execs this test binary with f as descriptor 3 and LISTEN_PID
// set to the child's own pid (sh's exec keeps the pid), as systemd does.
func startHelper(t *testing.T, mode string, f *os.File) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" -test.run='^TestActivationHelper$' -test.v`, os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "LISTEN_FDS=1", "LISTEN_FDNAMES=calld.socket")
	cmd.ExtraFiles = []*os.File{f}
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out
}

func TestActivation(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("needs /bin/sh to set LISTEN_PID to the child's pid")
	}
	path := filepath.Join(t.TempDir(), "calld.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f, err := l.File() // a duplicate, inherited by the child as fd 3
	if err != nil {
		t.Fatal(err)
	}
	cmd, out := startHelper(t, "serve", f)
	f.Close()

	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v; child output:\n%s", err, out)
	}
	want := fmt.Sprintf("hello from %d via %s; LISTEN_FDS=\"\"\n", cmd.Process.Pid, path)
	if line != want {
		t.Fatalf("got %q\nwant %q", line, want)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(out.String(), "served") {
		t.Fatalf("child output:\n%s", out)
	}
	// systemd owns the file: the child's Close left it in place.
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("socket file removed: %v", err)
	}
}

// TestActivationWrongSocketType: a passed socket that is not a Unix
// stream socket (TCP, SOCK_SEQPACKET) is refused, naming what it is.
func TestActivationWrongSocketType(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("needs /bin/sh")
	}
	tests := []struct {
		name, network, addr, want string
	}{
		{"tcp", "tcp", "127.0.0.1:0", "got a tcp socket (127.0.0.1:"},
		{"seqpacket", "unixpacket", filepath.Join(t.TempDir(), "p.sock"), "got a unixpacket socket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := net.Listen(tt.network, tt.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			f, err := l.(interface{ File() (*os.File, error) }).File()
			if err != nil {
				t.Fatal(err)
			}
			cmd, out := startHelper(t, "bad", f)
			f.Close()
			if err := cmd.Wait(); err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			if !strings.Contains(out.String(), tt.want) || !strings.Contains(out.String(), "want a Unix stream socket") {
				t.Fatalf("child output:\n%s\nwant %q", out, tt.want)
			}
		})
	}
}

func TestActivationNotASocket(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("needs /bin/sh")
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "plain"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd, out := startHelper(t, "bad", f)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(out.String(), "err=socket activation: descriptor 3 (calld.socket) is not a listening socket") {
		t.Fatalf("child output:\n%s", out)
	}
}
