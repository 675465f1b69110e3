// Package testclock is a fake clock for tests: gotd/neo's, whose timers
// tell the test each time they are armed (Reset) and can take a planted
// jump, a move of the clock just before the next arming. That jump is a
// test's Travel landing between a goroutine's reading of the clock and
// its arming of a timer, the window a timer loop must survive (it then
// goes round from the new time instead of waiting for a late timer).
package testclock

import (
	"sync"
	"time"

	"github.com/gotd/neo"
	"github.com/gotd/td/clock"
)

// Clock is t with timers that report their arming to OnArm and take a
// planted jump (Plant). Set OnArm before the clock is used.
type Clock struct {
	*neo.Time
	// OnArm, if set, is called after each Reset of a timer of this
	// clock, with its duration, on the goroutine that armed it.
	OnArm func(d time.Duration)

	mu   sync.Mutex
	jump time.Duration
}

// New is a Clock on t.
func New(t *neo.Time) *Clock { return &Clock{Time: t} }

// Timer is neo's timer, reporting its arming.
func (c *Clock) Timer(d time.Duration) clock.Timer {
	return timer{Timer: c.Time.Timer(d), c: c}
}

// Plant makes the next Reset of any of c's timers first move the clock by
// d.
func (c *Clock) Plant(d time.Duration) {
	c.mu.Lock()
	c.jump = d
	c.mu.Unlock()
}

type timer struct {
	clock.Timer
	c *Clock
}

func (t timer) Reset(d time.Duration) {
	t.c.mu.Lock()
	jump := t.c.jump
	t.c.jump = 0
	t.c.mu.Unlock()
	if jump > 0 {
		t.c.Travel(jump)
	}
	t.Timer.Reset(d)
	if t.c.OnArm != nil {
		t.c.OnArm(d)
	}
}
