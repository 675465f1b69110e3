package manager_test

import (
	"context"
	"testing"
	"time"

	"github.com/gotd/neo"
	"github.com/gotd/td/clock"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/fsm"
	"github.com/calld/calld/internal/manager"
	"github.com/calld/calld/internal/testclock"
)

// A clock jump between the loop's reading of the clock and the arming of
// its timer (a test's Travel landing there: the window that made
// TestBusyPolicyAndRingTimeout flaky under load) must not push the
// deadline back: the ring timeout fires.
func TestDeadlineSurvivesJumpWhileArming(t *testing.T) {
	var jc *testclock.Clock
	h := newHarness(t, harnessOptions{
		policy:   manager.Policy{},
		timeouts: fsm.Timeouts{Ring: 5 * time.Second, Receive: 5 * time.Second},
		clock: func(n *neo.Time) clock.Clock {
			if jc == nil {
				jc = testclock.New(n)
			}
			return jc
		},
	})
	id := h.incoming(false)
	h.waitState(id, calld.StateRinging)
	// The next time round (InMemoryCalls makes it go round), the loop reads the clock, then the clock jumps
	// past the ring deadline, then the loop arms its timer.
	jc.Plant(5*time.Second + time.Millisecond)
	if manager.InMemoryCalls(h.m) < 0 {
		t.Fatal("the loop stopped")
	}
	h.waitState(id, calld.StateEnded)
	c, err := h.m.Call(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if c.Reason != calld.ReasonMissed || c.EndedBy != calld.EndedByTimeout {
		t.Fatalf("timed out call: %+v", c)
	}
	h.requireInStep()
}
