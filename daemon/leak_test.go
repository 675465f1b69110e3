package daemon

import (
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/calld/calld/sim"
)

// TestRunLeavesNoGoroutine: once Run returned, no goroutine it started
// is left, in each state it can be stopped in. Goroutines of the test and
// of the simulator (those running before Run) are ignored; the
// simulator's per-connection ones end with calld's connection.
func TestRunLeavesNoGoroutine(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts sim.Options
		dead bool // the DC address answers nothing
		call bool // a call is tracked at the stop
	}{
		{"not logged in", sim.Options{Authorized: false}, false, false},
		{"DC unreachable", sim.Options{Authorized: true}, true, false},
		{"ready", sim.Options{Authorized: true}, false, false},
		{"a call ringing", sim.Options{Authorized: true}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newSim(t, tc.opts)
			addr := ""
			if tc.dead {
				addr = deadAddr(t)
			}
			before := goleak.IgnoreCurrent()
			r := start(t, srv, filepath.Join(t.TempDir(), "calld.db"), addr, nil)
			if tc.dead {
				r.logs.waitFor(t, `"event":"telegram.dial"`)
			} else {
				r.waitReady(t)
			}
			if tc.call {
				if _, err := srv.IncomingCall(srv.AddPeer("ann"), false); err != nil {
					t.Fatal(err)
				}
				r.logs.waitFor(t, `"event":"call.state"`)
			}
			_ = r.status(t)
			r.cl.Close()
			if err := r.stop(t); err != nil {
				t.Fatal(err)
			}
			if err := srv.Close(); err != nil {
				t.Logf("sim close: %v", err)
			}
			goleak.VerifyNone(t, before)
		})
	}
}
