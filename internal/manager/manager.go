// Package manager owns the account's calls while the daemon runs: one event
// loop (DESIGN invariant 1) that feeds Telegram's updates through the
// sequence engine, drives each call's fsm.Machine, applies the policies,
// persists every applied step in one store transaction (invariant 2), and
// only then sends RPCs, publishes events and answers the control API.
//
// Nothing but the loop goroutine touches the machines, the engine or the
// pending effects. Other goroutines talk to the loop by posting closures
// (Manager.post); RPCs run on goroutines of their own (the fsm's on at
// most rpcWorkers, in order: rpcpool.go) and post their outcome back. A
// commit runs on a goroutine of its own (group commit, persist.go): the
// loop encodes the batch, goes on applying inputs meanwhile, and runs
// the batch's effects when the commit's result comes back; what it applied
// in between is the next commit's batch.
//
// Goroutines have one owner: every goroutine the manager starts (an RPC,
// its time-out, the wait before a discard is sent again) is started by
// goRPC on the manager's group.Group, the commit in flight on another,
// and Run waits for all of them before it returns. Run's context ends
// first (Run cancels it also when it fails), and an outcome posted once it
// ended is not applied: the loop's check is the one shutdown guard (an RPC
// cut by the stop is not its answer).
package manager

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotd/td/clock"
	"github.com/gotd/td/tg"
	"github.com/rs/zerolog"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/fsm"
	"github.com/calld/calld/internal/group"
	"github.com/calld/calld/internal/logging"
	"github.com/calld/calld/internal/metrics"
	"github.com/calld/calld/internal/mtproto"
	"github.com/calld/calld/internal/store"
	"github.com/calld/calld/internal/updates"
)

// Publisher receives every journal event after it is committed.
type Publisher interface {
	Publish(calld.Event)
}

// Policy is how the daemon treats incoming calls (CONTRACT §2 [policy]).
type Policy struct {
	// Reject refuses every incoming call (incoming = "reject").
	Reject bool
	// RejectWhenBusy refuses a new incoming call while another is live.
	RejectWhenBusy bool
}

// Config wires a Manager.
type Config struct {
	DB       *store.DB
	Telegram Telegram
	Hub      Publisher
	Log      zerolog.Logger
	Clock    clock.Clock
	Policy   Policy
	// Timeouts are the call timers; zero Receive/Ring mean "ask the
	// server" (help.getConfig) and then fsm's defaults.
	Timeouts fsm.Timeouts
	// Version is reported by Status.
	Version string
	// Protocol is the phoneCallProtocol offered ([media]); zero means
	// mtproto.Protocol().
	Protocol tg.PhoneCallProtocol
	// Metrics records the committed facts (calls by state and their
	// ends, discards, gaps, differences, the updates state, the
	// connection); nil records nothing.
	Metrics *metrics.Metrics
	// LogBatch, the Batch of Log's writer, gathers the lines of a
	// commit's effects into one write; nil writes each at once.
	LogBatch *logging.Batch
}

// Manager runs the event loop. Create it with New, run it with Run; the
// control API methods (api.go) may be called from any goroutine.
type Manager struct {
	cfg   Config
	log   zerolog.Logger
	clock clock.Clock

	inbox   chan func()
	running atomic.Bool                  // Run has started: the inbox is read
	policy  atomic.Pointer[policyChange] // set by SetPolicy, applied by the loop
	wake    chan struct{}                // a policy change is pending (capacity 1: coalesces)
	rpcs    group.Group                  // RPC goroutines (goRPC); Run waits for them
	rpcPool rpcPool                      // the fsm's RPCs, run on at most rpcWorkers of rpcs
	// rpcTimeouts ends RPCs whose rpcTimeout ran out (rpcContext); its
	// goroutine is one of rpcs.
	rpcTimeouts *rpcDeadlines
	commits     group.Group            // the commit in flight (flush); Run waits for it
	stopped     chan struct{}          // closed when the loop stopped reading the inbox
	done        chan struct{}          // closed when Run returns
	readyCh     chan struct{}          // closed when Run has restored the state
	posted      atomic.Pointer[func()] // tests only: called after each post lands in the inbox
	// enc is the buffer commitBatch encodes a commit into, reused by the
	// next one (one commit is in flight at a time; owned by it). It keeps
	// the size of the largest commit (maxPending calls: ~1.2 MB).
	enc []byte

	// Shared with other goroutines (status).
	connected  atomic.Bool
	authorized atomic.Bool
	ready      atomic.Bool
	selfID     atomic.Int64
	// lastSeq is the journal's last event number (loop-owned): the loop
	// numbers the events it commits (collectBatch).
	lastSeq uint64
	// logged holds the call records committed to the store's log, by
	// call id, with their commit's number, until a checkpoint has put
	// them into the bbolt file (loop-owned; known, remember).
	logged map[int64]uint64
	// forgotTo is the checkpoint at which remember last swept logged.
	forgotTo   uint64
	dc         atomic.Int64
	lastLoop   atomic.Int64                  // unix nanos of the loop's last iteration (liveness)
	commitWait atomic.Pointer[chan struct{}] // closed when the commit in flight is done; nil if none (liveness)
	statusMu   sync.Mutex
	status     calld.UpdatesState // as last committed, for Status

	// Loop-owned.
	ctx            context.Context
	calls          map[int64]*call    // by server call id
	requested      map[int32]*call    // outgoing calls whose phone.requestCall is in flight, by random_id
	requests       map[int32]*request // persisted requests without a call id yet (request.go)
	requestsDirty  map[int32]bool     // requests to write (or delete) in the next commit
	early          map[int64][]tg.PhoneCallClass
	engine         *updates.Engine
	engineDeadline time.Time
	heldBack       []func() // RPC completions waiting for the engine's held Updates
	timeouts       fsm.Timeouts
	deadlines      deadlineHeap
	restored       map[int64]bool // live calls found at start, resumed once the first difference is in
	started        bool           // the first difference has been applied; calls' deadlines wait for it
	configDate     int            // help.getConfig's date at start (serverNow)
	media          mediaState     // signaling relay, rating and debug (signaling.go, rating.go)

	// The commit in flight (flush) and its result.
	inflight  *batch
	committed chan error

	// Pending until the next commit.
	dirty      map[*call]bool
	events     []calld.Event
	stateDirty bool
	effects    []func()
}

// call is the loop's view of one call: its machine and its secrets.
type call struct {
	m       *fsm.Machine
	secrets *secrets
	// waiters are notified when the call ends (discard requests).
	waiters []waiter
	// onAccept answers the accept request once acceptCall's result is in,
	// or when the call ends first (ended).
	onAccept func(calld.Call, error)
	// resentAccept: our acceptCall was sent again after a restart, so
	// CALL_ALREADY_ACCEPTED may be the answer to our own first one.
	resentAccept bool
	// discardErr is the error of our phone.discardCall, if any.
	discardErr error
	// discardTimeouts counts our phone.discardCall sends that ran out of
	// time (no answer recorded): the backoff before the next send.
	discardTimeouts int
	// req is an outgoing call's persisted phone.requestCall while it has
	// no id; onPlaced answers the Place request once it has one.
	req      *request
	onPlaced func(calld.Call, error)
	// counted is the state calld_calls_live counts the call in, as last
	// committed ("" before its first commit).
	counted calld.State
	// over is set by the loop when it applies the call's end: an RPC of
	// the call still queued in the pool is then not sent (rpc).
	over atomic.Bool
}

// New returns a Manager; nothing runs until Run.
func New(cfg Config) *Manager {
	if cfg.Clock == nil {
		cfg.Clock = clock.System
	}
	if cfg.Protocol.MaxLayer == 0 {
		cfg.Protocol = mtproto.Protocol()
	}
	return &Manager{
		cfg:           cfg,
		log:           cfg.Log,
		clock:         cfg.Clock,
		rpcTimeouts:   newRPCDeadlines(cfg.Clock),
		rpcPool:       rpcPool{bound: rpcWorkers},
		inbox:         make(chan func(), 4096),
		committed:     make(chan error, 1),
		wake:          make(chan struct{}, 1),
		done:          make(chan struct{}),
		stopped:       make(chan struct{}),
		readyCh:       make(chan struct{}),
		calls:         map[int64]*call{},
		logged:        map[int64]uint64{},
		requested:     map[int32]*call{},
		requests:      map[int32]*request{},
		requestsDirty: map[int32]bool{},
		early:         map[int64][]tg.PhoneCallClass{},
		restored:      map[int64]bool{},
		dirty:         map[*call]bool{},
	}
}

// ErrStopped is returned by API calls made after the loop stopped.
var ErrStopped = errors.New("calld is stopping")

// ErrNotRunning is returned by what needs the loop before Run started (no
// session yet, or Telegram not reached yet): the daemon answers 503.
var ErrNotRunning = errors.New("calld has not restored its calls yet (Telegram not reached or not logged in)")

// post runs f on the loop goroutine. It blocks while the inbox is full and
// gives up when the loop has stopped. Before Run it fails at once: nothing
// would read the inbox (a caller must never block on a loop that may never
// run, e.g. while no account is logged in).
func (m *Manager) post(f func()) error {
	if !m.running.Load() {
		return ErrNotRunning
	}
	select {
	case m.inbox <- f:
		if p := m.posted.Load(); p != nil {
			(*p)()
		}
		return nil
	case <-m.stopped:
		return ErrStopped
	}
}

// goRPC runs f (an RPC under the loop's context, posting its outcome)
// on a goroutine of the manager's RPC group, which Run waits for before it
// returns: once Run has returned no RPC of the manager is in flight. It
// returns false, and f does not run, once Run is waiting.
func (m *Manager) goRPC(f func()) bool {
	return m.rpcs.Go(func() error {
		f()
		return nil
	})
}

// now is the loop's clock.
func (m *Manager) now() time.Time { return m.clock.Now() }

// Run restores the persisted calls and updates state, then runs the loop
// until ctx is done. Telegram must be usable (connected or connecting).
// When Run returns, every goroutine the manager started (its RPCs) has
// returned.
func (m *Manager) Run(ctx context.Context) error {
	defer close(m.done)
	// RPCs end with ctx (theirs derive from it), also when Run fails;
	// their outcomes are dropped once the loop stopped.
	defer m.rpcs.Wait(context.Background())
	defer close(m.stopped)
	defer m.commits.Wait(context.Background())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m.ctx = ctx
	m.goRPC(func() { m.rpcTimeouts.run(ctx) })
	m.running.Store(true)
	if err := m.restore(ctx); err != nil {
		return err
	}
	m.applyPolicy()
	m.ready.Store(true)
	close(m.readyCh)
	timer := m.clock.Timer(time.Hour)
	defer timer.Stop()
	for {
		armed, err := m.arm(ctx, timer)
		if err != nil {
			return err
		}
		if !armed {
			continue
		}
		inbox := m.inbox
		if m.pendingFull() {
			inbox = nil
		}
		select {
		case <-ctx.Done():
			return m.settle(ctx)
		case err := <-m.committed:
			if err := m.commitDone(ctx, err); err != nil {
				return err
			}
		case f := <-inbox:
			m.busy()
			if !m.applyQueued(ctx, f) {
				return m.settle(ctx)
			}
		case <-timer.C():
			m.busy()
			m.tick()
		case <-m.wake:
			m.busy()
			m.applyPolicy()
		}
		if err := m.flush(ctx); err != nil {
			return err
		}
	}
}

// arm ticks (and commits) what is already due and arms timer for the next
// deadline. false: the clock moved while it armed, go round again.
func (m *Manager) arm(ctx context.Context, timer clock.Timer) (bool, error) {
	now := m.now()
	m.lastLoop.Store(now.UnixNano())
	if m.engine != nil && len(m.inbox) == 0 {
		// Every input received so far is applied: the loop waits for
		// input, and the engine's input clock runs again.
		m.engineOut(m.engine.Idle(now))
		if err := m.flush(ctx); err != nil {
			return false, err
		}
	}
	next := m.nextDeadline()
	if !next.IsZero() && !next.After(now) {
		// Already due (the clock moved while we worked): tick now
		// rather than arm a zero timer, which a fake clock would only
		// fire on its next move.
		m.tick()
		if err := m.flush(ctx); err != nil {
			return false, err
		}
		if next = m.nextDeadline(); !next.IsZero() && !next.After(now) {
			next = now.Add(time.Millisecond) // never spin on a deadline tick did not clear
		}
	}
	clock.StopTimer(timer)
	if !next.IsZero() {
		timer.Reset(next.Sub(now))
	} else {
		timer.Reset(time.Hour)
	}
	// Reset counts from the clock at the call, not from now: the clock
	// moved while we armed (a fake clock's jump, or a loop descheduled
	// for long), leaving the timer late by the move, and a jumped fake
	// clock never fires it. Go round and arm from the new time (tick
	// first if the deadline is due).
	return m.now().Sub(now) < time.Millisecond, nil
}

// applyQueued applies f and what is already queued behind it (up to 256
// in all), for one commit. Once ctx is done nothing more is applied: an
// RPC cut by the shutdown must not read as its answer (select may choose
// the inbox among ready cases); what was applied before is committed.
// false: stopping, nothing applied.
func (m *Manager) applyQueued(ctx context.Context, f func()) bool {
	if ctx.Err() != nil {
		return false
	}
	f()
	for i := 0; i < 255 && ctx.Err() == nil; i++ {
		select {
		case f := <-m.inbox:
			if ctx.Err() != nil {
				return true
			}
			f()
		default:
			return true
		}
	}
	return true
}

// busy tells the engine the loop works through inputs already received:
// its input clock (the gap waits) stands still until the loop idles.
func (m *Manager) busy() {
	if m.engine != nil {
		m.engine.Busy(m.now())
	}
}

// Alive reports whether the loop iterated within d: the watchdog's
// liveness check. Before Run (not logged in, Telegram not reached) and
// while Run restores there is no loop to be stuck: it is alive.
func (m *Manager) Alive(d time.Duration) error {
	if !m.ready.Load() {
		return nil
	}
	if p := m.commitWait.Load(); p != nil {
		// A commit is in flight: it must end within d (a state file
		// that hangs stops the daemon as a stuck loop does).
		t := m.clock.Timer(d)
		defer t.Stop()
		select {
		case <-*p:
		case <-t.C():
			return fmt.Errorf("store commit in flight for more than %s", d)
		}
	}
	last := time.Unix(0, m.lastLoop.Load())
	if m.now().Sub(last) > d {
		// The loop may simply be idle; ask it to go round once.
		ch := make(chan struct{})
		if err := m.post(func() { close(ch) }); err != nil {
			return err
		}
		t := m.clock.Timer(d)
		defer t.Stop()
		select {
		case <-ch:
		case <-t.C():
			return fmt.Errorf("event loop stuck for %s", d)
		}
	}
	return nil
}

// Ready is closed once Run has restored the persisted calls and state.
func (m *Manager) Ready() <-chan struct{} { return m.readyCh }

// Done is closed when Run has returned.
func (m *Manager) Done() <-chan struct{} { return m.done }

// deadline bookkeeping: a lazy min-heap of (when, call id); stale entries
// are skipped when popped.
type deadlineEntry struct {
	at time.Time
	c  *call // a pointer, not an id: a requesting call has no id yet
}

type deadlineHeap []deadlineEntry

func (h deadlineHeap) Len() int           { return len(h) }
func (h deadlineHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h deadlineHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *deadlineHeap) Push(x any)        { *h = append(*h, x.(deadlineEntry)) }
func (h *deadlineHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// schedule records c's current deadline, if any.
func (m *Manager) schedule(c *call) {
	rec := c.m.Call()
	if rec.Deadline != nil && rec.State.Live() {
		heap.Push(&m.deadlines, deadlineEntry{at: *rec.Deadline, c: c})
	}
}

// nextDeadline is the earliest of the engine's and the calls' deadlines.
func (m *Manager) nextDeadline() time.Time {
	var next time.Time
	// Calls' deadlines wait for the first difference: a call the server
	// ended while calld was down ends from it, not from a timer.
	for m.started && m.deadlines.Len() > 0 {
		top := m.deadlines[0]
		rec := top.c.m.Call()
		if rec.Deadline == nil || !rec.Deadline.Equal(top.at) || !rec.State.Live() {
			heap.Pop(&m.deadlines)
			continue
		}
		next = top.at
		break
	}
	if m.engine != nil {
		if d := m.engineDeadline; !d.IsZero() && (next.IsZero() || d.Before(next)) {
			next = d
		}
	}
	return next
}

// tick fires every due timer: the calls' and the engine's.
func (m *Manager) tick() {
	now := m.now()
	for m.started && m.deadlines.Len() > 0 && !m.deadlines[0].at.After(now) {
		e := heap.Pop(&m.deadlines).(deadlineEntry)
		if kind, ok := e.c.m.Due(now); ok {
			m.apply(e.c, fsm.Timer{Kind: kind})
		}
	}
	// The engine's timers wait until everything already queued is
	// applied: a push in the backlog may fill the gap a timer is for.
	if m.engine != nil && len(m.inbox) == 0 && !m.engineDeadline.IsZero() && !m.engineDeadline.After(now) {
		m.engineOut(m.engine.Tick(now))
	}
}

// SetTelegram sets the MTProto side. The client is built after the
// manager because the manager is its updates sink; call this before Run.
func (m *Manager) SetTelegram(t Telegram) { m.cfg.Telegram = t }

// SetPolicy changes the incoming-call policy and the max duration of
// calls that become active from now on (SIGHUP). Calls are not touched.
//
// It never blocks: the latest change is kept and the loop applies it on
// its next turn (or when Run starts), so a storm of reloads coalesces and
// a reload before login waits for nothing.
func (m *Manager) SetPolicy(p Policy, maxDuration time.Duration) {
	m.policy.Store(&policyChange{policy: p, maxDuration: maxDuration})
	select {
	case m.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// policyChange is a pending SetPolicy.
type policyChange struct {
	policy      Policy
	maxDuration time.Duration
}

// applyPolicy applies the pending SetPolicy, if any (loop only).
func (m *Manager) applyPolicy() {
	if c := m.policy.Swap(nil); c != nil {
		m.cfg.Policy = c.policy
		m.timeouts.MaxDuration = c.maxDuration
	}
}

// LoadStatus reads the persisted updates state for Status, so that it
// shows before Run has reached Telegram (or when it never does).
func (m *Manager) LoadStatus() error {
	return m.cfg.DB.View(func(tx *store.Tx) error {
		st, found, err := tx.UpdatesState()
		if err != nil || !found {
			return err
		}
		m.statusMu.Lock()
		m.status = st
		m.statusMu.Unlock()
		m.cfg.Metrics.UpdatesState(st)
		return nil
	})
}
