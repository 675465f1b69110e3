package reliability

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/gotd/td/tgerr"

	"github.com/calld/calld/internal/gotdrace"
)

// TestLoad drives calls of every kind (incoming discarded through the API,
// hung up by the caller, accepted on another device; outgoing answered,
// keys exchanged, hung up) through the simulator at full speed and checks
// that none is lost.
func TestLoad(t *testing.T) {
	n := size(300, 10000)
	e := newEnv(t, nil)
	ctx := testCtx(t, 10*time.Minute)
	start := time.Now()
	res, err := e.load(ctx, n, 16, false)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	rep := e.checkConsistent(ctx, res)
	t.Logf("%d calls (%d outgoing) in %s (%.0f calls/s); journal %d events, %d calls ended; stream drops %d",
		res.calls.Load(), res.outgoing.Load(), took.Round(time.Millisecond), float64(n)/took.Seconds(),
		rep.Events, rep.Ended, e.tr.Drops())
}

// TestLoadFaults runs the load while faults are injected.
func TestLoadFaults(t *testing.T) {
	tests := []struct {
		name string
		n    int
		// knownBug: fails on a bug outside this package (see the
		// report of issue 6); runs with CALLD_KNOWN_BUGS=1 or full.
		knownBug bool
		// inject runs during the load until ctx ends; it returns what it
		// did, for the log.
		inject func(ctx context.Context, e *env) string
	}{
		{"FLOOD_WAIT storm on discardCall", size(40, 1000), false, func(ctx context.Context, e *env) string {
			// 8 FLOOD_WAIT_1 answers armed again every 3 s.
			tick := time.NewTicker(3 * time.Second)
			defer tick.Stop()
			storms := 0
			for {
				e.sim.FailRPC("phone.discardCall", tgerr.New(420, "FLOOD_WAIT_1"), 8)
				storms++
				select {
				case <-ctx.Done():
					e.sim.FailRPC("phone.discardCall", nil, 0)
					return itoa(storms) + " storms of 8 FLOOD_WAIT_1"
				case <-tick.C:
				}
			}
		}},
		{"repeated CALL_OCCUPY_FAILED", size(40, 1000), false, func(ctx context.Context, e *env) string {
			tick := time.NewTicker(3 * time.Second)
			defer tick.Stop()
			rounds := 0
			for {
				e.sim.FailRPC("phone.discardCall", tgerr.New(500, "CALL_OCCUPY_FAILED"), 4)
				rounds++
				// armed again every 3 s
				select {
				case <-ctx.Done():
					e.sim.FailRPC("phone.discardCall", nil, 0)
					return itoa(rounds) + " rounds of 4 CALL_OCCUPY_FAILED"
				case <-tick.C:
				}
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.knownBug && os.Getenv("CALLD_KNOWN_BUGS") != "1" && !full() {
				t.Skip("known failure (an incoming call pushed around a cut is sometimes never seen): set CALLD_KNOWN_BUGS=1 to run")
			}
			loadWithFault(t, tc.n, tc.inject)
		})
	}
}

// TestLoadCuts runs the load while every connection to the simulator is
// cut every 100 ms.
func TestLoadCuts(t *testing.T) {
	gotdrace.CutsConnections(t)
	loadWithFault(t, size(120, 2000), func(ctx context.Context, e *env) string {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		cuts := 0
		for {
			select {
			case <-ctx.Done():
				return itoa(cuts) + " cuts"
			case <-tick.C:
				e.sim.Cut()
				cuts++
			}
		}
	})
}

// loadWithFault runs n calls of load while inject runs (until the load is
// over), then checks that none is lost.
func loadWithFault(t *testing.T, n int, inject func(ctx context.Context, e *env) string) {
	t.Helper()
	e := newEnv(t, nil)
	ctx := testCtx(t, 10*time.Minute)
	fctx, stop := context.WithCancel(ctx)
	injected := make(chan string, 1)
	go func() { injected <- inject(fctx, e) }()
	start := time.Now()
	res, err := e.load(ctx, n, 16, true)
	stop()
	did := <-injected
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	rep := e.checkConsistent(ctx, res)
	t.Logf("%d calls in %s with %s; %d API errors tolerated %v; %d discardCall requests; journal %d events, %d calls ended",
		res.calls.Load(), took.Round(time.Millisecond), did, res.apiErrs.Load(), res.errKinds, e.sim.Count("phone.discardCall"),
		rep.Events, rep.Ended)
}
