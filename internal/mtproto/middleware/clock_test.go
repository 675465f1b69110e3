package middleware

import (
	"time"

	"github.com/gotd/neo"
	"github.com/gotd/td/clock"
)

// fakeClock is gotd's neo fake clock (timers fire only on Advance) that
// reports the duration of every new timer on waits, so a test can wait for
// Retry to start waiting (a channel receive, no sleep) and then advance.
type fakeClock struct {
	*neo.Time
	waits chan time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{Time: neo.NewTime(time.Unix(1_700_000_000, 0)), waits: make(chan time.Duration, 100)}
}

func (c *fakeClock) Timer(d time.Duration) clock.Timer {
	t := c.Time.Timer(d)
	c.waits <- d
	return t
}

// Advance moves the clock and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) { c.Travel(d) }
