package e2e

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/sim"
)

// TestStopAtOtherMoments: the stop of CONTRACT §5.2 also holds for SIGINT,
// for SIGTERM sent twice, for SIGTERM amid a storm of SIGHUPs (logged in
// and not) or right after one, and while the start-up's RPCs (the
// restore's help.getConfig, the first getDifference) are held by
// Telegram. Each ends calld within 10 s with exit 0 and a daemon.stopping
// line naming the signal.
func TestStopAtOtherMoments(t *testing.T) {
	ready := func(auth bool) func(t *testing.T, e *env, d *daemon) {
		return func(t *testing.T, e *env, d *daemon) {
			e.waitStatus(d, func(st calld.Status) bool { return st.Ready && st.Telegram.Authorized == auth })
		}
	}
	hupStorm := func(auth bool) func(t *testing.T, e *env, d *daemon) {
		return func(t *testing.T, e *env, d *daemon) {
			ready(auth)(t, e, d)
			for i := 0; i < 200; i++ {
				_ = d.cmd.Process.Signal(syscall.SIGHUP)
			}
		}
	}
	// held waits for one more request of method than setup saw (in
	// base) to reach the server.
	base := 0
	held := func(method string) func(t *testing.T, e *env, d *daemon) {
		return func(t *testing.T, e *env, d *daemon) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := e.srv.WaitCount(ctx, method, base+1); err != nil {
				t.Fatalf("%s never reached the server: %v", method, err)
			}
		}
	}
	for _, tc := range []struct {
		name    string
		opts    sim.Options
		setup   func(t *testing.T, e *env)
		reach   func(t *testing.T, e *env, d *daemon)
		signals []syscall.Signal
	}{
		{name: "SIGINT not logged in", opts: sim.Options{Authorized: false}, reach: ready(false),
			signals: []syscall.Signal{syscall.SIGINT}},
		{name: "SIGINT ready", opts: sim.Options{Authorized: true}, reach: ready(true),
			signals: []syscall.Signal{syscall.SIGINT}},
		{name: "SIGTERM twice", opts: sim.Options{Authorized: true}, reach: ready(true),
			signals: []syscall.Signal{syscall.SIGTERM, syscall.SIGTERM}},
		{name: "SIGHUP storm not logged in", opts: sim.Options{Authorized: false}, reach: hupStorm(false),
			signals: []syscall.Signal{syscall.SIGTERM}},
		{name: "SIGHUP storm ready", opts: sim.Options{Authorized: true}, reach: hupStorm(true),
			signals: []syscall.Signal{syscall.SIGTERM}},
		{name: "SIGHUP during the stop", opts: sim.Options{Authorized: true}, reach: ready(true),
			signals: []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP, syscall.SIGHUP}},
		{
			name: "restore's help.getConfig held",
			opts: sim.Options{Authorized: true},
			setup: func(t *testing.T, e *env) {
				base = 0
				t.Cleanup(e.srv.HoldRPC("help.getConfig"))
			},
			reach:   held("help.getConfig"),
			signals: []syscall.Signal{syscall.SIGTERM},
		},
		{
			name: "first getDifference held",
			opts: sim.Options{Authorized: true},
			setup: func(t *testing.T, e *env) {
				// A first run persists an updates state; calld then
				// starts with a getDifference.
				first := e.start()
				if code := first.stop(t, syscall.SIGTERM); code != 0 {
					t.Fatalf("first run: exit %d", code)
				}
				if _, err := e.srv.IncomingCall(e.srv.AddPeer("hal"), false); err != nil {
					t.Fatal(err)
				}
				base = e.srv.Count("updates.getDifference")
				t.Cleanup(e.srv.HoldRPC("updates.getDifference"))
			},
			reach:   held("updates.getDifference"),
			signals: []syscall.Signal{syscall.SIGTERM},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.opts, "")
			if tc.setup != nil {
				tc.setup(t, e)
			}
			d := e.launch()
			tc.reach(t, e, d)
			if d.exited() {
				t.Fatalf("calld exited before the stop:\n%s", d.logs.String())
			}
			start := time.Now()
			for _, sig := range tc.signals {
				_ = d.cmd.Process.Signal(sig)
			}
			select {
			case <-d.done:
			case <-time.After(stopWithin + 20*time.Second):
				t.Fatalf("calld still running %s after %v", time.Since(start), tc.signals)
			}
			if took := time.Since(start); took > stopWithin {
				t.Fatalf("stop took %s, want <= %s", took, stopWithin)
			}
			if code := d.cmd.ProcessState.ExitCode(); code != 0 {
				t.Fatalf("exit %d after %v, want 0", code, tc.signals)
			}
			stopping := false
			for _, l := range logLines(d.logs.String()) {
				if l["event"] == "daemon.stopping" && l["signal"] == tc.signals[0].String() {
					stopping = true
				}
			}
			if !stopping {
				t.Errorf("no daemon.stopping line naming %v", tc.signals[0])
			}
			if strings.Contains(d.logs.String(), `"event":"daemon.failed"`) {
				t.Errorf("a stop logged daemon.failed")
			}
		})
	}
}
