package manager

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gotd/neo"

	"github.com/calld/calld/internal/testclock"
)

// len is how many deadlines are queued.
func (d *rpcDeadlines) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.queue.Len()
}

// TestRPCDeadlines: each context is cancelled with errRPCTimeout once its
// deadline passes, in deadline order also when one is added ahead of the
// others; a removed one never is; the queue ends empty; a clock that
// moves while run arms does not make a deadline late; run returns when
// its context ends.
func TestRPCDeadlines(t *testing.T) {
	// Each arming of run's timer is reported on armed, so that the test
	// knows run went round.
	clk := testclock.New(neo.NewTime(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)))
	armings := make(chan time.Duration, 16)
	clk.OnArm = func(d time.Duration) { armings <- d }
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
		case got := <-armings:
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
	clk.Plant(10 * time.Second)
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
