package manager_test

import (
	"context"
	"testing"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/manager"
	"github.com/calld/calld/internal/metrics"
	"github.com/calld/calld/internal/sim"
)

// value reads one series of m (0 when it is absent).
func value(t *testing.T, m *metrics.Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	v, _ := metrics.Find(fams, name, labels)
	return v
}

// TestMetricsCountCommittedCalls: calld_calls_live follows each call's
// committed state, calld_calls_ended_total counts each end once by
// direction, reason and ended_by, calld_discard_seconds observes each
// answered discard, and a restart counts the restored calls as live
// without counting any end again.
func TestMetricsCountCommittedCalls(t *testing.T) {
	m1 := metrics.New(metrics.Options{})
	// A simulator of its own: the shared one's difference after the
	// restart can bring other tests' calls (its non-pts updates are dated
	// to the second), which this manager would rightly count as ended.
	srv := ownSim(t)
	h := newHarness(t, harnessOptions{metrics: m1, srv: srv})
	live := func(m *metrics.Metrics, s calld.State) float64 {
		return value(t, m, metrics.NameCallsLive, map[string]string{"state": string(s)})
	}
	ended := func(m *metrics.Metrics, dir calld.Direction, r calld.Reason, by calld.EndedBy) float64 {
		return value(t, m, metrics.NameCallsEnded, map[string]string{"direction": string(dir), "reason": string(r), "ended_by": string(by)})
	}

	in := h.incoming(false)
	h.waitState(in, calld.StateRinging)
	manager.InMemoryCalls(h.m) // a round through the loop: the commit's counting is done
	if got := live(m1, calld.StateRinging); got != 1 {
		t.Fatalf("live ringing = %v, want 1", got)
	}
	if _, err := h.m.Discard(context.Background(), in, calld.ReasonAuto); err != nil {
		t.Fatal(err)
	}
	manager.InMemoryCalls(h.m)
	for _, s := range []calld.State{calld.StateWaiting, calld.StateRinging, calld.StateHangingUp} {
		if got := live(m1, s); got != 0 {
			t.Errorf("live %s = %v after the end, want 0", s, got)
		}
	}
	if got := ended(m1, calld.DirectionIncoming, calld.ReasonBusy, calld.EndedByLocal); got != 1 {
		t.Errorf("ended incoming busy local = %v, want 1", got)
	}
	if got := value(t, m1, metrics.NameDiscardSeconds, nil); got != 1 {
		t.Errorf("discard observations = %v, want 1", got)
	}

	peer, name := newPeer(h.srv)
	h.srv.SetPeerBehaviour(peer, sim.Answer)
	out, err := h.m.Place(context.Background(), "@"+name, false)
	if err != nil {
		t.Fatal(err)
	}
	h.waitState(out.ID, calld.StateActive)
	manager.InMemoryCalls(h.m)
	if got := live(m1, calld.StateActive); got != 1 {
		t.Fatalf("live active = %v, want 1", got)
	}
	pts, _, _, _ := h.srv.State()
	if got := value(t, m1, metrics.NameUpdatesState, map[string]string{"box": "pts"}); got != float64(pts) {
		t.Errorf("updates_state pts = %v, want the server's %d", got, pts)
	}
	if got := value(t, m1, metrics.NameTelegramConnected, nil); got != 1 {
		t.Errorf("telegram_connected = %v, want 1", got)
	}

	// A new process: new metrics, the active call restored.
	m2 := metrics.New(metrics.Options{})
	h.restart(func() { h.opts.metrics = m2 })
	if got := live(m2, calld.StateActive); got != 1 {
		t.Fatalf("after the restart: live active = %v, want 1 (the restored call)", got)
	}
	if got := value(t, m2, metrics.NameCallsEnded, nil); got != 0 {
		t.Fatalf("after the restart: %v ends counted, want none", got)
	}
	if _, err := h.m.Discard(context.Background(), out.ID, calld.ReasonAuto); err != nil {
		t.Fatal(err)
	}
	manager.InMemoryCalls(h.m)
	if got := live(m2, calld.StateActive); got != 0 {
		t.Errorf("live active = %v after the hang-up, want 0", got)
	}
	if got := ended(m2, calld.DirectionOutgoing, calld.ReasonHangup, calld.EndedByLocal); got != 1 {
		t.Errorf("ended outgoing hangup local = %v, want 1", got)
	}
	if got := ended(m1, calld.DirectionOutgoing, calld.ReasonHangup, calld.EndedByLocal); got != 0 {
		t.Errorf("the first process's metrics counted the second's end: %v", got)
	}
}
