package manager

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gotd/neo"
	"github.com/gotd/td/clock"
)

// rearmClock is the fake clock reporting each arming of a timer (Reset) on
// armed, so that a test knows rpcDeadlines.run went round. A planted jump
// moves the clock just before the next arming: a test's Travel landing
// between run's reading of the clock and its arming.
type rearmClock struct {
	*neo.Time
	armed chan time.Duration

	mu   sync.Mutex
	jump time.Duration
}

func (c *rearmClock) Timer(d time.Duration) clock.Timer {
	return rearmTimer{Timer: c.Time.Timer(d), c: c}
}

type rearmTimer struct {
	clock.Timer
	c *rearmClock
}

func (t rearmTimer) Reset(d time.Duration) {
	t.c.mu.Lock()
	jump := t.c.jump
	t.c.jump = 0
	t.c.mu.Unlock()
	if jump > 0 {
		t.c.Travel(jump)
	}
	t.Timer.Reset(d)
	t.c.armed <- d
}

// TestRPCDeadlines: each context is cancelled with errRPCTimeout once its
// deadline passes, in deadline order also when one is added ahead of the
// others; a removed one never is; the queue ends empty; a clock that
// moves while run arms does not make a deadline late; run returns when
// its context ends.
func TestRPCDeadlines(t *testing.T) {
	clk := &rearmClock{Time: neo.NewTime(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)), armed: make(chan time.Duration, 16)}
	d := newRPCDeadlines(clk)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan struct{})
	go func() { defer close(done); d.run(ctx) }()
	deadline, cancelWait := context.WithTimeout(context.Background(), time.Minute)
	defer cancelWait()

	armed := func(want time.Duration) {
		t.Helper()
		select {
		case got := <-clk.armed:
			if got != want {
				t.Fatalf("armed for %s, want %s", got, want)
			}
		case <-deadline.Done():
			t.Fatalf("not armed (want %s)", want)
		}
	}
	type rpc struct {
		ctx    context.Context
		remove func()
	}
	add := func(in time.Duration) rpc {
		ctx, cancel := context.WithCancelCause(context.Background())
		return rpc{ctx, d.add(clk.Now().Add(in), cancel)}
	}
	timedOut := func(name string, r rpc, want bool) {
		t.Helper()
		if got := errors.Is(context.Cause(r.ctx), errRPCTimeout); got != want {
			t.Fatalf("%s: timed out %v, want %v (cause %v)", name, got, want, context.Cause(r.ctx))
		}
	}

	armed(time.Hour) // nothing queued
	a := add(10 * time.Second)
	armed(10 * time.Second) // a is the front: run woke
	b := add(20 * time.Second)
	c := add(30 * time.Second)
	b.remove()

	clk.Travel(15 * time.Second)
	armed(15 * time.Second) // a expired; c is next
	timedOut("a", a, true)
	timedOut("b", b, false)
	timedOut("c", c, false)

	e := add(time.Second) // ahead of c
	armed(time.Second)
	clk.Travel(20 * time.Second)
	armed(time.Hour)
	timedOut("e", e, true)
	timedOut("c", c, true)
	timedOut("b", b, false)
	a.remove() // after it expired, and b a second time: no-ops
	b.remove()
	if n := d.len(); n != 0 {
		t.Fatalf("%d deadlines queued, want 0", n)
	}

	// The clock jumps past f's deadline while run arms for it.
	clk.mu.Lock()
	clk.jump = 10 * time.Second
	clk.mu.Unlock()
	f := add(10 * time.Second)
	armed(10 * time.Second) // the jump, then the late timer: run goes round
	armed(time.Hour)
	timedOut("f", f, true)

	stop()
	select {
	case <-done:
	case <-deadline.Done():
		t.Fatal("run did not return when its context ended")
	}
}
