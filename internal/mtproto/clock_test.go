package mtproto

import (
	"runtime"
	"strings"
	"sync"
	"time"
)

// fakeClock is a manual clock: timers fire only on Advance. Every NewTimer
// reports its duration on waits, so a test can wait for the code under test
// to start waiting (a channel receive, no sleep) and then advance.
//
// On a loopback client, other RPCs share the clock: gotd itself sends
// users.getUsers (Client.Self) through the middlewares after every
// reconnection, and its retry waits too. Set from to the function whose
// timers a test is about ("(*Client).DiscardCall"): only timers created
// under it (on its goroutine's stack) are reported on waits.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	waits  chan time.Duration
	from   string
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Unix(1_700_000_000, 0), waits: make(chan time.Duration, 100)}
}

type fakeTimer struct {
	at  time.Time
	c   chan time.Time
	clk *fakeClock
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	t := &fakeTimer{at: c.now.Add(d), c: make(chan time.Time, 1), clk: c}
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	if c.from == "" || calledFrom(c.from) {
		c.waits <- d
	}
	return t
}

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

// Advance moves the clock and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			t.c <- c.now
			continue
		}
		kept = append(kept, t)
	}
	c.timers = kept
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	for i, x := range t.clk.timers {
		if x == t {
			t.clk.timers = append(t.clk.timers[:i], t.clk.timers[i+1:]...)
			return true
		}
	}
	return false
}

// instantClock fires every timer at once and moves its time forward by the
// timer's duration; it records the durations. For loopback tests where the
// retry must happen but no real time should pass.
type instantClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func newInstantClock() *instantClock { return &instantClock{now: time.Unix(1_700_000_000, 0)} }

func (c *instantClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *instantClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.waits = append(c.waits, d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return instantTimer{ch}
}

func (c *instantClock) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

type instantTimer struct{ c chan time.Time }

func (t instantTimer) C() <-chan time.Time { return t.c }
func (t instantTimer) Stop() bool          { return false }
