package manager_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gotd/neo"
	"github.com/gotd/td/clock"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/fsm"
	"github.com/calld/calld/internal/manager"
)

// jumpClock is the fake clock with one planted jump: the next Reset of a
// timer first moves the clock by jump. That is a test's Travel landing
// between the loop's reading of the clock and its arming of the timer,
// the window that made TestBusyPolicyAndRingTimeout flaky under load.
type jumpClock struct {
	*neo.Time
	mu   sync.Mutex
	jump time.Duration
}

func (c *jumpClock) Timer(d time.Duration) clock.Timer {
	return jumpTimer{Timer: c.Time.Timer(d), c: c}
}

// plant makes the next Reset move the clock by d first.
func (c *jumpClock) plant(d time.Duration) {
	c.mu.Lock()
	c.jump = d
	c.mu.Unlock()
}

type jumpTimer struct {
	clock.Timer
	c *jumpClock
}

func (t jumpTimer) Reset(d time.Duration) {
	t.c.mu.Lock()
	jump := t.c.jump
	t.c.jump = 0
	t.c.mu.Unlock()
	if jump > 0 {
		t.c.Travel(jump)
	}
	t.Timer.Reset(d)
}

// A clock jump between the loop's reading of the clock and the arming of
// its timer must not push the deadline back: the ring timeout fires.
func TestDeadlineSurvivesJumpWhileArming(t *testing.T) {
	var jc *jumpClock
	h := newHarness(t, harnessOptions{
		policy:   manager.Policy{},
		timeouts: fsm.Timeouts{Ring: 5 * time.Second, Receive: 5 * time.Second},
		clock: func(n *neo.Time) clock.Clock {
			if jc == nil {
				jc = &jumpClock{Time: n}
			}
			return jc
		},
	})
	id := h.incoming(false)
	h.waitState(id, calld.StateRinging)
	// The next time round (InMemoryCalls makes it go round), the loop reads the clock, then the clock jumps
	// past the ring deadline, then the loop arms its timer.
	jc.plant(5*time.Second + time.Millisecond)
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
