package e2e

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/calld/calld/internal/sim"
)

// signalPending reports whether sig is pending for process pid (not yet
// delivered to its handler), from /proc/PID/status.
func signalPending(t *testing.T, pid int, sig syscall.Signal) bool {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		for _, key := range []string{"SigPnd:", "ShdPnd:"} {
			if v, ok := strings.CutPrefix(line, key); ok {
				mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
				if err != nil {
					t.Fatal(err)
				}
				if mask&(1<<(sig-1)) != 0 {
					return true
				}
			}
		}
	}
	return false
}

// signalDelivered sends sig to the daemon and waits until the kernel
// delivered it (another process: polled).
func (d *daemon) signalDelivered(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for signalPending(t, d.cmd.Process.Pid, sig) {
		if time.Now().After(deadline) {
			t.Fatalf("%v never delivered", sig)
		}
		time.Sleep(time.Millisecond) // another process: poll
	}
}

// TestStopDuringReloadStorm: SIGTERM is never lost behind SIGHUPs. The
// config file is replaced by a FIFO so that a reload blocks reading it;
// meanwhile more SIGHUPs than calld buffers arrive, then SIGTERM. Once the
// reloads can read the config again, calld stops, exit 0.
func TestStopDuringReloadStorm(t *testing.T) {
	e := newEnv(t, sim.Options{Authorized: true}, "")
	d := e.start()
	content, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(e.config); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(e.config, 0o600); err != nil {
		t.Fatal(err)
	}
	d.signalDelivered(t, syscall.SIGHUP)
	// The open returns once calld opened the FIFO to read: it is inside
	// the reload, blocked until this end is written and closed.
	w, err := os.OpenFile(e.config, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 8; i++ {
		d.signalDelivered(t, syscall.SIGHUP)
	}
	d.signalDelivered(t, syscall.SIGTERM)
	stopped := time.Now()
	if _, err := w.Write(content); err != nil {
		t.Fatal(err)
	}
	w.Close()
	// Feed every later reload until calld exits.
	for !d.exited() {
		if time.Since(stopped) > stopWithin+20*time.Second {
			t.Fatalf("calld still running %s after SIGTERM (lost behind SIGHUPs?)", time.Since(stopped))
		}
		w, err := os.OpenFile(e.config, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if errors.Is(err, syscall.ENXIO) { // no reader now
			time.Sleep(5 * time.Millisecond) // another process: poll
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(content)
		w.Close()
	}
	if took := time.Since(stopped); took > stopWithin {
		t.Errorf("stop took %s after the reload unblocked, want <= %s", took, stopWithin)
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
}
