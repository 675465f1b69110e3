package manager_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gotd/td/tg"

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
// with RPCWorkers+extra calls coming in.
type poolTest struct {
	*harness
	gate    *rpcGate
	changed chan struct{}
	mu      sync.Mutex
	queued  int
	workers int
	ids     []int64
	once    sync.Once
}

// release lets the held RPCs go on (once; also at the test's end).
func (p *poolTest) release() { p.once.Do(func() { close(p.gate.proceed) }) }

const extra = 50

func newPoolTest(t *testing.T, policy manager.Policy, wrap func(manager.Telegram, *rpcGate) manager.Telegram) *poolTest {
	p := &poolTest{changed: make(chan struct{}, 1)}
	p.gate = &rpcGate{proceed: make(chan struct{}), note: p.note}
	p.harness = newHarness(t, harnessOptions{
		policy:   policy,
		telegram: func(tg manager.Telegram) manager.Telegram { return wrap(tg, p.gate) },
	})
	t.Cleanup(p.release) // before the harness stops
	manager.OnRPCPool(p.m, func(q, w int) {
		p.mu.Lock()
		p.queued, p.workers = q, w
		p.mu.Unlock()
		p.note()
	})
	p.ids = make([]int64, manager.RPCWorkers+extra)
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
		q, w := p.queued, p.workers
		p.mu.Unlock()
		_, held, _ := p.gate.counts()
		if q == extra && w == manager.RPCWorkers && held == manager.RPCWorkers {
			return
		}
		select {
		case <-p.changed:
		case <-deadline.C:
			p.t.Fatalf("queued %d, workers %d, RPCs held %d; want %d, %d, %d", q, w, held, extra, manager.RPCWorkers, manager.RPCWorkers)
		}
	}
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
	p.waitFor("every call discarded", func() bool {
		for _, id := range p.ids {
			if len(discards(p.srv, id)) == 0 {
				return false
			}
		}
		return true
	})
	for _, id := range p.ids {
		if ds := discards(p.srv, id); len(ds) != 1 {
			t.Fatalf("call %d: %d phone.discardCall", id, len(ds))
		}
	}
	if _, _, most := p.gate.counts(); most != manager.RPCWorkers {
		t.Fatalf("%d discards in flight at once, want at most %d", most, manager.RPCWorkers)
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
	if entered, held, _ := p.gate.counts(); entered != manager.RPCWorkers || held != 0 {
		t.Fatalf("%d phone.receivedCall started, %d still held; want %d, 0", entered, held, manager.RPCWorkers)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.queued != 0 || p.workers != 0 {
		t.Fatalf("after the stop: %d queued, %d workers", p.queued, p.workers)
	}
}
