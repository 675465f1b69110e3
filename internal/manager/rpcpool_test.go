package manager_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gotd/td/tg"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/manager"
	"github.com/calld/calld/internal/mtproto"
)

// rpcGate holds the RPCs of a method until proceed is closed or their
// context ends, counting them; note is called as each one comes in.
type rpcGate struct {
	proceed chan struct{}
	note    func()
	mu      sync.Mutex
	entered int // came in
	held    int // held now
	most    int // the most held at once
}

func (g *rpcGate) hold(ctx context.Context) error {
	g.mu.Lock()
	g.entered++
	g.held++
	g.most = max(g.most, g.held)
	g.mu.Unlock()
	g.note()
	defer func() {
		g.mu.Lock()
		g.held--
		g.mu.Unlock()
	}()
	select {
	case <-g.proceed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *rpcGate) counts() (entered, held, most int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.entered, g.held, g.most
}

// discardGate holds phone.discardCall, receivedGate phone.receivedCall.
type discardGate struct {
	manager.Telegram
	*rpcGate
}

func (g *discardGate) DiscardCall(ctx context.Context, d mtproto.Discard) (tg.UpdatesClass, error) {
	if err := g.hold(ctx); err != nil {
		return nil, err
	}
	return g.Telegram.DiscardCall(ctx, d)
}

type receivedGate struct {
	manager.Telegram
	*rpcGate
}

func (g *receivedGate) ReceivedCall(ctx context.Context, peer tg.InputPhoneCall) error {
	if err := g.hold(ctx); err != nil {
		return err
	}
	return g.Telegram.ReceivedCall(ctx, peer)
}

// poolTest is a harness whose fsm RPCs of one method are held by gate,
// run on at most workers goroutines, with workers+extra calls coming in.
type poolTest struct {
	*harness
	gate    *rpcGate
	changed chan struct{}
	mu      sync.Mutex
	queued  int
	running int
	ids     []int64
	once    sync.Once
}

// release lets the held RPCs go on (once; also at the test's end).
func (p *poolTest) release() { p.once.Do(func() { close(p.gate.proceed) }) }

// The pool's bound in these tests (rpcWorkers is 512), and the calls
// beyond it.
const workers, extra = 8, 5

func newPoolTest(t *testing.T, policy manager.Policy, wrap func(manager.Telegram, *rpcGate) manager.Telegram) *poolTest {
	p := &poolTest{changed: make(chan struct{}, 1)}
	p.gate = &rpcGate{proceed: make(chan struct{}), note: p.note}
	p.harness = newHarness(t, harnessOptions{
		policy:   policy,
		telegram: func(tg manager.Telegram) manager.Telegram { return wrap(tg, p.gate) },
	})
	t.Cleanup(p.release) // before the harness stops
	manager.SetRPCWorkers(p.m, workers)
	manager.OnRPCPool(p.m, func(q, w int) {
		p.mu.Lock()
		p.queued, p.running = q, w
		p.mu.Unlock()
		p.note()
	})
	p.ids = make([]int64, workers+extra)
	for i := range p.ids {
		p.ids[i] = p.incoming(false)
	}
	return p
}

func (p *poolTest) note() {
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// waitFull waits until RPCWorkers RPCs are held and extra are queued.
func (p *poolTest) waitFull() {
	p.t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		q, w := p.queued, p.running
		p.mu.Unlock()
		_, held, _ := p.gate.counts()
		if q == extra && w == workers && held == workers {
			return
		}
		select {
		case <-p.changed:
		case <-deadline.C:
			p.t.Fatalf("queued %d, workers %d, RPCs held %d; want %d, %d, %d", q, w, held, extra, workers, workers)
		}
	}
}

// discardCounts counts the phone.discardCall requests the simulator got,
// by call (one pass over its requests: the tests here ask for hundreds
// of calls at a time).
func discardCounts(p *poolTest) map[int64]int {
	n := map[int64]int{}
	for _, req := range requestsOf[*tg.PhoneDiscardCallRequest](p.srv, "phone.discardCall") {
		n[req.Peer.ID]++
	}
	return n
}

// everyDiscarded reports whether every call of ids but skip has a
// phone.discardCall at the simulator.
func everyDiscarded(p *poolTest, skip int64) bool {
	n := discardCounts(p)
	for _, id := range p.ids {
		if id != skip && n[id] == 0 {
			return false
		}
	}
	return true
}

// TestRPCsBounded: the fsm's RPCs run on at most RPCWorkers goroutines;
// the rest wait in the queue and are sent, each once, as the first ones
// are answered.
func TestRPCsBounded(t *testing.T) {
	p := newPoolTest(t, manager.Policy{Reject: true}, func(tgc manager.Telegram, g *rpcGate) manager.Telegram {
		return &discardGate{Telegram: tgc, rpcGate: g}
	})
	p.waitFull()
	p.release()
	p.waitFor("every call discarded", func() bool { return everyDiscarded(p, 0) })
	n := discardCounts(p)
	for _, id := range p.ids {
		if n[id] != 1 {
			t.Fatalf("call %d: %d phone.discardCall", id, n[id])
		}
	}
	if _, _, most := p.gate.counts(); most != workers {
		t.Fatalf("%d discards in flight at once, want at most %d", most, workers)
	}
}

// TestRPCsQueuedAtStopNotRun: a stop drops the RPCs still queued (their
// outcome would not be applied, and the restart goes on from what was
// persisted); those in flight end with the loop's context.
func TestRPCsQueuedAtStopNotRun(t *testing.T) {
	p := newPoolTest(t, manager.Policy{}, func(tgc manager.Telegram, g *rpcGate) manager.Telegram {
		return &receivedGate{Telegram: tgc, rpcGate: g}
	})
	p.waitFull()
	p.stop()
	if entered, held, _ := p.gate.counts(); entered != workers || held != 0 {
		t.Fatalf("%d phone.receivedCall started, %d still held; want %d, 0", entered, held, workers)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.queued != 0 || p.running != 0 {
		t.Fatalf("after the stop: %d queued, %d workers", p.queued, p.running)
	}
}

// idDiscardGate holds phone.discardCall like discardGate, recording which
// calls' discards have started (left the pool's queue).
type idDiscardGate struct {
	manager.Telegram
	*rpcGate
	mu      sync.Mutex
	started map[int64]bool
}

func (g *idDiscardGate) DiscardCall(ctx context.Context, d mtproto.Discard) (tg.UpdatesClass, error) {
	g.mu.Lock()
	g.started[d.Peer.ID] = true
	g.mu.Unlock()
	if err := g.hold(ctx); err != nil {
		return nil, err
	}
	return g.Telegram.DiscardCall(ctx, d)
}

// TestQueuedDiscardOfRemotelyEndedCallNotSent: a remote discard that
// arrives while our discard waits in the pool's queue ends the call, and
// ours is then not sent (DESIGN invariant 3: the RPC checks the call is
// still live when a worker takes it, not only when it is queued).
func TestQueuedDiscardOfRemotelyEndedCallNotSent(t *testing.T) {
	var gate *idDiscardGate
	p := newPoolTest(t, manager.Policy{Reject: true}, func(tgc manager.Telegram, g *rpcGate) manager.Telegram {
		gate = &idDiscardGate{Telegram: tgc, rpcGate: g, started: map[int64]bool{}}
		return gate
	})
	p.waitFull()
	var queued int64
	gate.mu.Lock()
	for _, id := range p.ids {
		if !gate.started[id] {
			queued = id
			break
		}
	}
	gate.mu.Unlock()
	if queued == 0 {
		t.Fatal("no call's discard is queued")
	}
	// The peer hangs up first: the call ends before our discard went out.
	if err := p.srv.PeerHangup(queued, &tg.PhoneCallDiscardReasonHangup{}); err != nil {
		t.Fatal(err)
	}
	// On the clock: a seq gap left by the tests before (their calls
	// ended on the shared simulator while no manager ran) holds the
	// update until the engine's wait for it has passed.
	p.travelUntil(func() bool {
		c, err := p.m.Call(context.Background(), queued)
		return err == nil && c.State == calld.StateEnded
	})
	p.release()
	p.waitFor("every other call discarded", func() bool { return everyDiscarded(p, queued) })
	p.stop() // every RPC has returned
	if ds := discards(p.srv, queued); len(ds) != 0 {
		t.Fatalf("call %d ended remotely while its discard was queued, and %d phone.discardCall were sent for it after it ended", queued, len(ds))
	}
}
