package manager

import (
	"github.com/gotd/td/clock"

	"github.com/calld/calld"
)

// InMemoryCalls is how many calls the loop holds in memory (tests only).
func InMemoryCalls(m *Manager) int {
	ch := make(chan int, 1)
	if err := m.post(func() { ch <- len(m.calls) + len(m.requested) }); err != nil {
		return -1
	}
	return <-ch
}

// Block holds the loop until release is called; queued reports how many
// inputs wait in its inbox meanwhile (tests only: to put several inputs
// into one batch).
func Block(m *Manager) (queued func() int, release func()) {
	held, free := make(chan struct{}), make(chan struct{})
	_ = m.post(func() {
		close(held)
		<-free
	})
	<-held
	once := false
	return func() int { return len(m.inbox) }, func() {
		if !once {
			once = true
			close(free)
		}
	}
}

// Started reports whether the first difference since Run began has been
// applied (restored calls resumed); tests only.
func Started(m *Manager) bool {
	ch := make(chan bool, 1)
	if err := m.post(func() { ch <- m.started }); err != nil {
		return false
	}
	return <-ch
}

// WrapTelegram replaces the manager's Telegram with wrap(current), on the
// loop (tests only: to observe an RPC's completion).
func WrapTelegram(m *Manager, wrap func(Telegram) Telegram) {
	done := make(chan struct{})
	if err := m.post(func() {
		m.cfg.Telegram = wrap(m.cfg.Telegram)
		close(done)
	}); err != nil {
		panic(err)
	}
	<-done
}

// OnPost calls f after every input posted to m's inbox until stop is
// called (tests only: to wait for an input to be queued without polling).
func OnPost(m *Manager, f func()) (stop func()) {
	m.posted.Store(&f)
	return func() { m.posted.Store(nil) }
}

// EngineState is the sequence engine's state and whether a getDifference
// is in flight, read on the loop (tests only).
func EngineState(m *Manager) (calld.UpdatesState, bool) {
	type res struct {
		st       calld.UpdatesState
		inFlight bool
	}
	ch := make(chan res, 1)
	if err := m.post(func() { ch <- res{m.updatesState(), m.engine.InFlight()} }); err != nil {
		panic(err)
	}
	r := <-ch
	return r.st, r.inFlight
}

// OnLoop runs f on the loop and waits for it (tests only).
func OnLoop(m *Manager, f func()) {
	done := make(chan struct{})
	if err := m.post(func() {
		f()
		close(done)
	}); err != nil {
		panic(err)
	}
	<-done
}

// RPCDeadlinesOn has the RPC deadlines of m (not yet running) go by c
// instead of the manager's clock (tests only): a test whose clock wrapper
// acts on the loop's timer (a planted jump, arming reports) keeps that
// wrapper to the loop's timer.
func RPCDeadlinesOn(m *Manager, c clock.Clock) { m.rpcTimeouts = newRPCDeadlines(c) }

// SetRPCWorkers bounds m's fsm RPCs in flight to n instead of rpcWorkers
// (tests only: a queue with a few calls).
func SetRPCWorkers(m *Manager, n int) {
	m.rpcPool.mu.Lock()
	m.rpcPool.bound = n
	m.rpcPool.mu.Unlock()
}

// OnRPCPool calls f, with the pool's lock held, with the RPCs queued and
// the workers running after each change of the fsm's RPC pool (tests only).
func OnRPCPool(m *Manager, f func(queued, workers int)) {
	m.rpcPool.mu.Lock()
	m.rpcPool.changed = f
	m.rpcPool.mu.Unlock()
}
