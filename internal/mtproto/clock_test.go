package mtproto

import (
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/gotd/neo"
	"github.com/gotd/td/clock"
)

var testEpoch = time.Unix(1_700_000_000, 0)

// fakeClock is gotd's neo fake clock (timers fire only on Advance) that
// reports the duration of every new timer on waits (as middleware's test
// clock does), so a test can wait for the code under test to start waiting
// (a channel receive, no sleep) and then advance.
//
// On a loopback client, other RPCs share the clock: gotd itself sends
// users.getUsers (Client.Self) through the middlewares after every
// reconnection, and its retry waits too. Set from to the function whose
// timers a test is about ("(*Client).DiscardCall"): only timers created
// under it (on its goroutine's stack) are reported on waits.
type fakeClock struct {
	*neo.Time
	waits chan time.Duration
	from  string
}

func newFakeClock() *fakeClock {
	return &fakeClock{Time: neo.NewTime(testEpoch), waits: make(chan time.Duration, 100)}
}

func (c *fakeClock) Timer(d time.Duration) clock.Timer {
	t := c.Time.Timer(d)
	if c.from == "" || calledFrom(c.from) {
		c.waits <- d
	}
	return t
}

// Advance moves the clock and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) { c.Travel(d) }

// calledFrom reports whether a function whose name ends in fn is on the
// calling goroutine's stack.
func calledFrom(fn string) bool {
	pcs := make([]uintptr, 64)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	for {
		f, more := frames.Next()
		if strings.HasSuffix(f.Function, fn) {
			return true
		}
		if !more {
			return false
		}
	}
}

// instantClock is gotd's neo fake clock that travels by each new timer's
// duration at once, so the timer fires at once; it records the durations.
// For loopback tests where the retry must happen but no real time should
// pass.
type instantClock struct {
	*neo.Time
	mu    sync.Mutex
	waits []time.Duration
}

func newInstantClock() *instantClock { return &instantClock{Time: neo.NewTime(testEpoch)} }

func (c *instantClock) Timer(d time.Duration) clock.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.Time.Timer(d)
	c.Travel(d)
	c.waits = append(c.waits, d)
	return t
}

func (c *instantClock) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

func secs(n ...int) []time.Duration {
	out := make([]time.Duration, len(n))
	for i, x := range n {
		out[i] = time.Duration(x) * time.Second
	}
	return out
}
