// Package group is how calld owns its goroutines. Every goroutine calld
// starts has an owner that waits for it before its own Run (or Close)
// returns: the owner starts it with a Group's Go and waits with Wait. The
// manager's RPCs are one Group (Manager.Run waits for them); the daemon's
// parts are two (the run's tasks, and the work that uses the Telegram
// client, which ends first). As in gotd's errgroups, the first goroutine
// that fails ends the rest: its error is kept, Failed is closed and the
// group's onFail runs (it cancels the run's context). Unlike an errgroup,
// a Group refuses new goroutines once Wait has begun, errors returned
// after Stopping are the stop's own and fail nothing, and Wait can give
// up at a deadline.
package group

import (
	"context"
	"sync"
)

// Group owns a set of goroutines. The zero Group is ready to use (with
// no onFail).
type Group struct {
	mu       sync.Mutex
	wg       sync.WaitGroup
	closed   bool // Wait has begun: Go refuses
	stopping bool // errors from now on fail nothing
	err      error
	failed   chan struct{}
	onFail   func()
}

// New returns a Group that calls onFail once, when a goroutine fails it.
func New(onFail func()) *Group { return &Group{onFail: onFail} }

// Go runs f on a goroutine the group waits for. It returns false, and f
// does not run, once Wait has begun. An error f returns before Stopping
// fails the group.
func (g *Group) Go(f func() error) bool {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return false
	}
	g.wg.Add(1)
	g.mu.Unlock()
	go func() {
		defer g.wg.Done()
		if err := f(); err != nil {
			g.fail(err)
		}
	}()
	return true
}

func (g *Group) fail(err error) {
	g.mu.Lock()
	if g.stopping || g.err != nil {
		g.mu.Unlock()
		return
	}
	g.err = err
	g.failedLocked()
	close(g.failed)
	onFail := g.onFail
	g.mu.Unlock()
	if onFail != nil {
		onFail()
	}
}

// failedLocked makes the Failed channel if it is not made yet.
func (g *Group) failedLocked() {
	if g.failed == nil {
		g.failed = make(chan struct{})
	}
}

// Failed is closed when a goroutine failed the group.
func (g *Group) Failed() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failedLocked()
	return g.failed
}

// Stopping marks the start of the stop: errors from now on are the stop's
// own (a cancelled context) and fail nothing.
func (g *Group) Stopping() {
	g.mu.Lock()
	g.stopping = true
	g.mu.Unlock()
}

// Wait refuses new goroutines, then waits until every goroutine returned
// or ctx is done (timedOut), and returns the error that failed the group,
// if any. When it times out, the goroutines still running are left to
// the process's exit (a stop past its deadline).
func (g *Group) Wait(ctx context.Context) (failure error, timedOut bool) {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	if ctx.Done() == nil {
		g.wg.Wait()
	} else {
		done := make(chan struct{})
		go func() {
			g.wg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			timedOut = true
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err, timedOut
}
