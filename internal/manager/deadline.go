package manager

import (
	"container/list"
	"context"
	"sync"
	"time"

	"github.com/gotd/td/clock"
)

// rpcDeadlines ends each RPC's context when its deadline passes on the
// manager's clock, with one goroutine (run) for all the RPCs in flight
// instead of a goroutine and a timer per RPC: a burst of 5,000 discards
// had 5,000 watchers. Every RPC gets the same timeout, so deadlines are
// added in about the order they fall; the queue is kept in that order
// and its front is the next to pass.
//
// The zero value is not usable: newRPCDeadlines.
type rpcDeadlines struct {
	clock clock.Clock
	// wake tells run that the front of the queue changed (a deadline was
	// added ahead of every other one). Buffered: add never waits.
	wake chan struct{}

	mu    sync.Mutex
	queue list.List // of *rpcDeadline, by at
}

type rpcDeadline struct {
	at     time.Time
	cancel context.CancelCauseFunc
}

func newRPCDeadlines(c clock.Clock) *rpcDeadlines {
	return &rpcDeadlines{clock: c, wake: make(chan struct{}, 1)}
}

// add has cancel called with errRPCTimeout once the clock reaches at,
// unless the returned remove is called before run takes the deadline off
// the queue (a remove at the deadline itself may come too late: the
// context is then cancelled with errRPCTimeout all the same). remove may
// be called any number of times, also after the deadline passed.
func (d *rpcDeadlines) add(at time.Time, cancel context.CancelCauseFunc) (remove func()) {
	r := &rpcDeadline{at: at, cancel: cancel}
	d.mu.Lock()
	// From the back: a later deadline is the usual case. A clock set
	// back (a test's) can make one earlier than some already queued.
	e := d.queue.Back()
	for e != nil && e.Value.(*rpcDeadline).at.After(at) {
		e = e.Prev()
	}
	var el *list.Element
	if e == nil {
		el = d.queue.PushFront(r)
	} else {
		el = d.queue.InsertAfter(r, e)
	}
	front := d.queue.Front() == el
	d.mu.Unlock()
	if front {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
	return func() {
		d.mu.Lock()
		// Remove on an element already removed (expired, or a second
		// call) is a no-op: list checks the element's list.
		d.queue.Remove(el)
		d.mu.Unlock()
	}
}

// expire takes the deadlines that passed at now off the queue and
// returns them, and the next deadline (zero: none queued).
func (d *rpcDeadlines) expire(now time.Time) (due []*rpcDeadline, next time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for e := d.queue.Front(); e != nil; e = d.queue.Front() {
		r := e.Value.(*rpcDeadline)
		if r.at.After(now) {
			return due, r.at
		}
		d.queue.Remove(e)
		due = append(due, r)
	}
	return due, time.Time{}
}

// run cancels the contexts whose deadline passed, until ctx is done.
func (d *rpcDeadlines) run(ctx context.Context) {
	timer := d.clock.Timer(time.Hour)
	defer clock.StopTimer(timer)
	for {
		now := d.clock.Now()
		due, next := d.expire(now)
		for _, r := range due {
			r.cancel(errRPCTimeout)
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = next.Sub(now)
		}
		clock.StopTimer(timer)
		timer.Reset(wait)
		// Reset counts from the clock at the call: when the clock moved
		// while this armed (a fake clock's jump, a goroutine descheduled
		// for long), the timer is late by the move and a jumped fake
		// clock never fires it: go round from the new time.
		if d.clock.Now().Sub(now) >= time.Millisecond {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-timer.C():
		case <-d.wake:
		}
	}
}
