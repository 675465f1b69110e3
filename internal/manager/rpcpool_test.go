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

// discardGate is a Telegram whose phone.discardCall waits for proceed
// before it is sent, counting the discards in flight.
type discardGate struct {
	manager.Telegram
	proceed chan struct{}
	mu      sync.Mutex
	held    int // in flight now
	most    int // the most in flight at once
	note    func()
}

func (g *discardGate) DiscardCall(ctx context.Context, d mtproto.Discard) (tg.UpdatesClass, error) {
	g.mu.Lock()
	g.held++
	g.most = max(g.most, g.held)
	g.mu.Unlock()
	g.note()
	<-g.proceed
	g.mu.Lock()
	g.held--
	g.mu.Unlock()
	return g.Telegram.DiscardCall(ctx, d)
}

func (g *discardGate) counts() (held, most int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.held, g.most
}

// TestRPCsBounded: the fsm's RPCs run on at most RPCWorkers goroutines;
// the rest wait in the queue and are sent, each once, as the first ones
// are answered.
func TestRPCsBounded(t *testing.T) {
	changed := make(chan struct{}, 1)
	note := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	gate := &discardGate{proceed: make(chan struct{}), note: note}
	h := newHarness(t, harnessOptions{
		policy:   manager.Policy{Reject: true},
		telegram: func(tg manager.Telegram) manager.Telegram { gate.Telegram = tg; return gate },
	})
	var once sync.Once
	release := func() { once.Do(func() { close(gate.proceed) }) }
	t.Cleanup(release) // before the harness stops: a failed test's held discards return
	var mu sync.Mutex
	var queued, workers int
	manager.OnRPCPool(h.m, func(q, w int) {
		mu.Lock()
		queued, workers = q, w
		mu.Unlock()
		note()
	})
	defer manager.OnRPCPool(h.m, nil)
	const extra = 50
	n := manager.RPCWorkers + extra
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = h.incoming(false)
	}
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		mu.Lock()
		q, w := queued, workers
		mu.Unlock()
		held, _ := gate.counts()
		if q == extra && w == manager.RPCWorkers && held == manager.RPCWorkers {
			break
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("queued %d, workers %d, discards held %d; want %d, %d, %d", q, w, held, extra, manager.RPCWorkers, manager.RPCWorkers)
		}
	}
	release()
	h.waitFor("every call discarded", func() bool {
		for _, id := range ids {
			if len(discards(h.srv, id)) == 0 {
				return false
			}
		}
		return true
	})
	for _, id := range ids {
		if ds := discards(h.srv, id); len(ds) != 1 {
			t.Fatalf("call %d: %d phone.discardCall", id, len(ds))
		}
	}
	if _, most := gate.counts(); most != manager.RPCWorkers {
		t.Fatalf("%d discards in flight at once, want at most %d", most, manager.RPCWorkers)
	}
}
