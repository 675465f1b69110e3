package manager

import "sync"

// rpcWorkers bounds the goroutines that run the fsm's RPCs (rpc) at once.
// A commit's effects start the RPCs of all its calls together (up to
// maxPending), and an RPC's goroutine grows a stack of about rpcStack in
// gotd: with one goroutine per RPC, a 5,000-call burst held up to 66 MiB
// of stacks at its peak (bench/ab). The RPCs beyond the bound wait in
// order; a worker that finds the queue empty returns. Measured with
// bench/ab (5 interleaved one-round runs each, medians): 5,000-call burst
// peak RSS 116 MiB unbounded, 81 with 256 workers, 84 with 512; CPU and
// calls/s alike within the noise with 512 (0.91 s, 7,332/s against 0.82 s,
// 7,874/s; 256: 0.91 s, 7,034/s). Fewer workers cost nothing visible on
// loopback (128: 68-72 against 83-84 MiB, 11 runs, 2026-12-01), but a
// worker holds its RPC for a round trip, so the pool caps the RPCs at
// rpcWorkers per round trip: at ~100 ms to Telegram, 512 allow ~5,100
// discards/s, 128 only ~1,300 (docs/performance.md).
const rpcWorkers = 512

// rpcPool runs the fsm's RPCs on at most rpcWorkers goroutines of the
// manager's RPC group, in the order they were queued.
type rpcPool struct {
	mu      sync.Mutex
	queue   fifo
	workers int // running
	// bound is the most workers: rpcWorkers (tests set fewer,
	// SetRPCWorkers).
	bound int
	// changed, if set, is called with p.mu held after the queue or the
	// workers changed (tests only: OnRPCPool).
	changed func(queued, workers int)
}

// changedLocked reports a change to p.changed. p.mu is held.
func (p *rpcPool) changedLocked() {
	if p.changed != nil {
		p.changed(p.queue.len(), p.workers)
	}
}

// runRPC queues f and starts a worker if fewer than the bound run. It
// returns false, and f does not run, once Run is waiting for the group.
// Queued RPCs that have not started when the stop comes are dropped
// (rpcWorker).
func (m *Manager) runRPC(f func()) bool {
	p := &m.rpcPool
	p.mu.Lock()
	p.queue.push(f)
	if p.workers >= p.bound {
		p.changedLocked()
		p.mu.Unlock()
		return true
	}
	p.workers++
	p.changedLocked()
	p.mu.Unlock()
	if m.goRPC(m.rpcWorker) {
		return true
	}
	p.mu.Lock()
	p.workers--
	p.changedLocked()
	p.mu.Unlock()
	return false
}

// rpcWorker runs queued RPCs until the queue is empty. Once the loop's
// context is done (the stop), it drops what is queued: those RPCs'
// outcomes would not be applied, and the restart goes on from what was
// persisted, as for an RPC the stop cut.
func (m *Manager) rpcWorker() {
	growStack()
	p := &m.rpcPool
	for {
		p.mu.Lock()
		if m.ctx.Err() != nil {
			p.queue.drop()
		}
		f := p.queue.pop()
		if f == nil {
			p.workers--
			p.changedLocked()
			p.mu.Unlock()
			return
		}
		p.changedLocked()
		p.mu.Unlock()
		f()
	}
}

// fifo is the pool's queue. The slots before head are taken; push moves
// the waiting ones to the front once the taken ones are half the slice,
// so that a queue that never runs empty does not grow without end.
type fifo struct {
	items []func()
	head  int
}

func (q *fifo) len() int { return len(q.items) - q.head }

func (q *fifo) push(f func()) {
	if q.head > 0 && q.head >= len(q.items)/2 {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	q.items = append(q.items, f)
}

// pop takes the first item; nil if the queue is empty.
func (q *fifo) pop() func() {
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
		return nil
	}
	f := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	return f
}

// drop empties the queue.
func (q *fifo) drop() {
	clear(q.items)
	q.items, q.head = q.items[:0], 0
}
