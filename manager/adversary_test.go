package manager_test

import (
	"context"
	"testing"

	"github.com/calld/calld/fsm"
	"github.com/calld/calld/internal/gotdrace"
	"github.com/calld/calld/manager"
	"github.com/calld/calld/sim"
)

// TestStopDuringRequestCallKeepsRequest: a graceful stop while
// phone.requestCall is in flight cuts the RPC; the cut is not its answer,
// even when it reaches the loop in the batch being applied as the stop
// begins. The request stays persisted and is sent again after the restart
// (same random_id), and the call goes on.
func TestStopDuringRequestCallKeepsRequest(t *testing.T) {
	gotdrace.CutsConnections(t)
	h := newHarness(t, harnessOptions{})
	peer, res, release := h.placeHeld(sim.RingForever)
	queued, free := manager.Block(h.m)
	h.cancel()
	waitFor(t, "the cut phone.requestCall queued", func() bool { return queued() >= 1 })
	free()
	<-res
	h.restart(release)
	var id int64
	h.travelUntil(func() bool {
		if cs := callsTo(h.srv, peer); len(cs) == 1 {
			id = cs[0].ID
		}
		return id != 0 && h.reached(id, fsm.Ringing)
	})
	if reqs := requestCalls(h.srv, peer); len(reqs) != 2 || reqs[0].RandomID != reqs[1].RandomID {
		t.Fatalf("requests to the peer: %d", len(reqs))
	}
	if _, err := h.m.Discard(context.Background(), id, fsm.ReasonAuto); err != nil {
		t.Fatal(err)
	}
	if n := len(discards(h.srv, id)); n != 1 {
		t.Fatalf("%d discards, want 1", n)
	}
}
