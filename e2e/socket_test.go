package e2e

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/calld/calld/sim"
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
	cmd := exec.Command(binary, "serve", "--config", second.config)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("second daemon: %v, want exit status 1", err)
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("the second daemon took the socket and kept running:\n%s", logs.String())
	}
	if out := logs.String(); !strings.Contains(out, first.socket) || !strings.Contains(out, "another process is listening") {
		t.Errorf("the refusal does not name the socket %s:\n%s", first.socket, out)
	}
	if _, errOut, code := first.cli("status"); code != 0 {
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
