package reliability

import (
	"testing"
	"time"

	"github.com/calld/calld/bench"
	"github.com/calld/calld/internal/config"
)

// TestEndedCallsReleased checks that a long-running daemon does not keep
// the calls it handled in memory: after N calls have ended, the heap
// allocated by calld's own packages (not the simulator's) and still in use
// must grow by less than 1 KiB per call.
func TestEndedCallsReleased(t *testing.T) {
	t.Cleanup(bench.ProfileHeap())
	const n = 2000
	srv := bench.NewSim(t)
	cfg := bench.Config(t.TempDir())
	cfg.Policy.Incoming = config.IncomingReject
	cfg.Log.Level = config.LevelError
	e := startEnv(t, srv, cfg)
	ctx := testCtx(t, 5*time.Minute)
	if _, err := e.load(ctx, 50, 8, false); err != nil { // warm up
		t.Fatal(err)
	}
	h1 := bench.CalldHeap()
	for i := 0; i < n; i++ {
		if _, err := e.sim.IncomingCall(e.peers[i%len(e.peers)], false); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.tr.WaitEnded(ctx, 50+n); err != nil {
		t.Fatal(err)
	}
	per := float64(bench.CalldHeap()-h1) / n
	t.Logf("heap allocated by calld's packages and still held, per ended call: %.0f B", per)
	if per > 1024 {
		t.Fatalf("the daemon holds %.0f B of heap per ended call after %d calls: ended calls are not released", per, n)
	}
}
