package daemon

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/gotd/neo"

	"github.com/calld/calld/internal/sim"
)

// TestPruneOnTheClock: the journal is pruned every hour of the daemon's
// clock (a fake one here), not of the wall clock.
func TestPruneOnTheClock(t *testing.T) {
	srv := newSim(t, sim.Options{Authorized: true})
	clk := neo.NewTime(time.Now())
	r := start(t, srv, filepath.Join(t.TempDir(), "calld.db"), "", func(m *Main) {
		m.Clock = clk
		m.Config.State.JournalMaxEvents = 1
	})
	r.waitReady(t)
	if _, err := srv.IncomingCall(srv.AddPeer("ann"), false); err != nil {
		t.Fatal(err)
	}
	// Two journal events, committed before the line: one too many.
	r.logs.waitFor(t, `"to":"ringing"`)
	clk.Travel(pruneEvery)
	r.logs.waitFor(t, `"message":"journal pruned"`)
}
