package reliability

import (
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/calld/calld/config"
	"github.com/calld/calld/sim"
)

func heapNow() float64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc)
}

// TestEndedCallsReleased checks that a long-running daemon does not keep
// every call it ever handled in memory: after N calls have ended, the heap
// the daemon still holds per call (the in-process simulator's share,
// measured on a separate simulator, subtracted) must stay under 1 KiB.
//
// KNOWN FAILURE (manager keeps ended calls in Manager.calls for ever:
// about 6 KB per call, see the report of issue 6). It runs only with
// CALLD_KNOWN_BUGS=1 or CALLD_RELIABILITY=full until the manager is fixed.
func TestEndedCallsReleased(t *testing.T) {
	if os.Getenv("CALLD_KNOWN_BUGS") != "1" && !full() {
		t.Skip("known failure (ended calls kept in memory): set CALLD_KNOWN_BUGS=1 to run")
	}
	const n = 2000
	simOnly, err := sim.New(sim.Options{Authorized: true})
	if err != nil {
		t.Fatal(err)
	}
	p := simOnly.AddPeer("mem")
	h0 := heapNow()
	for i := 0; i < n; i++ {
		if _, err := simOnly.IncomingCall(p, false); err != nil {
			t.Fatal(err)
		}
	}
	simPer := (heapNow() - h0) / n
	runtime.KeepAlive(simOnly)

	e := newEnv(t, func(c *config.Config) { c.Policy.Incoming = config.IncomingReject })
	ctx := testCtx(t, 5*time.Minute)
	if _, err := e.load(ctx, 50, 8, false); err != nil { // warm up
		t.Fatal(err)
	}
	h1 := heapNow()
	for i := 0; i < n; i++ {
		if _, err := e.sim.IncomingCall(e.peers[i%len(e.peers)], false); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.tr.WaitEnded(ctx, 50+n); err != nil {
		t.Fatal(err)
	}
	per := (heapNow()-h1)/n - simPer
	t.Logf("heap held per ended call: %.0f B (simulator's own %.0f B subtracted)", per, simPer)
	if per > 1024 {
		t.Fatalf("the daemon holds %.0f B of heap per ended call after %d calls: ended calls are not released", per, n)
	}
}
