package reliability

import (
	"context"
	"testing"
	"time"

	"github.com/calld/calld"
	"github.com/calld/calld/bench"
	"github.com/calld/calld/internal/gotdrace"
	"github.com/calld/calld/internal/sim"
)

// TestSimRestartAuthKeyLost replaces the simulator, mid-run, by a new one
// on the same address: same RSA key, but every auth key, call and the
// updates state (pts, seq) are gone, as when Telegram forgets a key. A call
// is ringing when it happens. Checked: the daemon gets a new auth key by
// itself, adopts the new server's updates state, the orphaned call still
// ends, and calls through the new server are tracked as before.
func TestSimRestartAuthKeyLost(t *testing.T) {
	gotdrace.CutsConnections(t)
	first, err := sim.New(sim.Options{Authorized: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Listen(context.Background(), "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	addr := first.Addr()
	e := startEnv(t, first, bench.Config(t.TempDir()))
	ctx := testCtx(t, 5*time.Minute)
	n := size(20, 500)
	if _, err := e.load(ctx, n, 4, false); err != nil {
		t.Fatal(err)
	}
	orphan, err := first.IncomingCall(e.peers[0], false)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.tr.WaitState(ctx, orphan, calld.StateRinging); err != nil {
		t.Fatal(err)
	}
	pts1, _, seq1, _ := first.State()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	second, err := sim.New(sim.Options{Authorized: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range e.peers {
		if id := second.AddPeer("peer" + itoa(i)); id != e.peers[i] {
			t.Fatalf("peer%d has id %d on the new simulator, %d before", i, id, e.peers[i])
		}
	}
	// A new simulator numbers calls from the same base; real Telegram
	// never reuses a call id. Use up the ids the daemon has seen before
	// anyone listens: calls accepted elsewhere (no pts event), but the
	// orphan's id, which stays requested with another access hash.
	for range first.Calls() {
		id, err := second.IncomingCall(e.peers[0], false)
		if err == nil && id != orphan {
			err = second.AcceptedElsewhere(id)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := second.Listen(context.Background(), addr); err != nil {
		t.Fatalf("new simulator on %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = second.Close() })
	e.sim = second
	// The daemon reconnects, finds its key unknown, makes a new one, and
	// takes the new server's state (differenceTooLong, then getState).
	if err := eventually(ctx, "daemon in step with the new simulator", func() (bool, error) {
		st, err := e.d.Client.Status(ctx)
		if err != nil {
			return false, err
		}
		pts, _, seq, _ := second.State()
		return st.Telegram.Connected && st.Updates.Pts == pts && st.Updates.Seq == seq && second.Count("updates.getState")+second.Count("updates.getDifference") > 0, nil
	}); err != nil {
		t.Fatal(err)
	}
	pts2, _, seq2, _ := second.State()
	t.Logf("old server pts=%d seq=%d; new server pts=%d seq=%d; new server saw %d getDifference, %d getState",
		pts1, seq1, pts2, seq2, second.Count("updates.getDifference"), second.Count("updates.getState"))

	// The call that rang on the old server: the new one does not know it.
	c, err := e.d.Client.Discard(ctx, orphan, calld.ReasonAuto)
	t.Logf("discard of the orphaned call: state %s reason %q ended_by %q error %q; API error code %q",
		c.State, c.Reason, c.EndedBy, c.Error, calld.ErrorCode(err))
	if err := e.tr.WaitState(ctx, orphan, calld.StateEnded); err != nil {
		t.Fatal(err)
	}

	res, err := e.load(ctx, n, 4, false)
	if err != nil {
		t.Fatal(err)
	}
	rep := e.checkConsistent(ctx, res)
	t.Logf("after the restart: %d calls; journal %d events, %d calls ended", res.calls.Load(), rep.Events, rep.Ended)
}
