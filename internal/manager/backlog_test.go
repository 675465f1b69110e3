package manager_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/gotd/neo"
	"github.com/gotd/td/clock"
	"github.com/gotd/td/tg"

	"github.com/calld/calld/internal/manager"
	"github.com/calld/calld/internal/testclock"
)

// TestBurstBacklogIsNotAGap: a shuffled burst whose pushes all arrive
// never asks for the difference, even when the loop is busy with its own
// backlog while the clock passes the gap wait: the wait counts only time
// the loop spent waiting for input. A gap nothing fills still gets exactly
// one getDifference once the loop has waited 0.5 s idle, not 1 ms before.
func TestBurstBacklogIsNotAGap(t *testing.T) {
	ac := &armClock{}
	h := newHarness(t, harnessOptions{clock: func(n *neo.Time) clock.Clock {
		c := testclock.New(n)
		c.OnArm = ac.armed
		return c
	}})
	h.settleDifference()
	ctx := context.Background()
	st, _ := manager.EngineState(h.m)
	gd := h.srv.Count("updates.getDifference")
	rng := rand.New(rand.NewPCG(11, 2))
	// Containers the engine applies by seq only (no call in them): seq
	// st.Seq+1 .. st.Seq+n, the first held back to the end.
	const n = 600
	push := func(seqs []int) {
		rng.Shuffle(len(seqs), func(i, j int) { seqs[i], seqs[j] = seqs[j], seqs[i] })
		for _, s := range seqs {
			u := &tg.Updates{Updates: []tg.UpdateClass{&tg.UpdateConfig{}}, Seq: st.Seq + s, Date: st.Date}
			if err := h.m.Updates(ctx, u, false); err != nil {
				t.Fatal(err)
			}
		}
	}
	seqRange := func(from, to int) []int {
		var s []int
		for i := from; i <= to; i++ {
			s = append(s, i)
		}
		return s
	}
	push(seqRange(2, 101)) // opens the gap: seq+1 is missing
	manager.InMemoryCalls(h.m)
	// The loop is busy (held) while the clock passes the wait twice;
	// then it works through more than one batch of backlog, the missing
	// push last.
	_, release := manager.Block(h.m)
	h.clock.Travel(time.Second)
	push(seqRange(102, n))
	push([]int{1})
	release()
	got, inFlight := manager.EngineState(h.m)
	if inFlight || h.srv.Count("updates.getDifference") != gd {
		t.Fatalf("getDifference during a burst whose pushes all arrived (in flight %v, %d calls)",
			inFlight, h.srv.Count("updates.getDifference")-gd)
	}
	if got.Seq != st.Seq+n {
		t.Fatalf("seq %d, want %d", got.Seq, st.Seq+n)
	}
	// A real gap: seq+n+1 never comes.
	push([]int{n + 2})
	ac.waitIdle(h)
	h.clock.Travel(500*time.Millisecond - time.Millisecond)
	if _, inFlight := manager.EngineState(h.m); inFlight {
		t.Fatal("getDifference 1 ms before the gap wait ended")
	}
	ac.waitIdle(h)
	h.clock.Travel(time.Millisecond)
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := h.srv.WaitCount(wctx, "updates.getDifference", gd+1); err != nil {
		t.Fatal(err)
	}
	manager.InMemoryCalls(h.m)
	if n := h.srv.Count("updates.getDifference") - gd; n != 1 {
		t.Fatalf("%d getDifference for one gap, want 1", n)
	}
}

// settleDifference waits until no getDifference is in flight (the one the
// connection asked for at startup, if it came after Ready).
func (h *harness) settleDifference() {
	h.t.Helper()
	h.waitOnLoop("the getDifference in flight never finished", func() bool {
		_, inFlight := manager.EngineState(h.m)
		return !inFlight
	})
}

// armClock tells when the loop arms its timer (a testclock.Clock's
// OnArm).
type armClock struct {
	mu       sync.Mutex
	watchers []chan struct{}
}

func (c *armClock) armed(time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.watchers {
		close(w)
	}
	c.watchers = nil
}

// waitIdle returns once the loop has applied everything posted so far and
// armed its timer to wait for input: a clock move from now on is time the
// loop spent idle.
func (c *armClock) waitIdle(h *harness) {
	h.t.Helper()
	armed := make(chan struct{})
	manager.OnLoop(h.m, func() {
		c.mu.Lock()
		c.watchers = append(c.watchers, armed)
		c.mu.Unlock()
	})
	select {
	case <-armed:
	case <-time.After(20 * time.Second):
		h.t.Fatal("the loop never went idle")
	}
}
