package manager_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/fsm"
	"github.com/calld/calld/internal/gotdrace"
	"github.com/calld/calld/internal/manager"
	"github.com/calld/calld/internal/sim"
	"github.com/calld/calld/internal/store"
)

// waitFor waits until cond holds: for what the manager's goroutines or
// the simulator do on their own. cond is checked again whenever an input
// reaches the manager's inbox or the simulator's counters change; a
// real-time deadline bounds the wait.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	posted, _, stop := h.watchPosts()
	defer stop()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		changed := h.srv.Changed() // before cond: no change is missed
		if cond() {
			return
		}
		select {
		case <-posted:
		case <-changed:
		case <-deadline.C:
			h.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// callState is the call's persisted state.
func (h *harness) callState(id int64) calld.Call {
	h.t.Helper()
	c, err := h.m.Call(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// place places an outgoing call to a fresh peer that behaves as b and
// waits until the call reaches state.
func (h *harness) place(b sim.Behaviour, state calld.State) int64 {
	h.t.Helper()
	peer, name := newPeer(h.srv)
	h.srv.SetPeerBehaviour(peer, b)
	c, err := h.m.Place(context.Background(), "@"+name, false)
	if err != nil {
		h.t.Fatal(err)
	}
	h.waitState(c.ID, state)
	return c.ID
}

// placeActive places an outgoing call to a peer that answers and waits
// until it is active.
func (h *harness) placeActive() int64 { return h.place(sim.Answer, calld.StateActive) }

// TestRestartLiveCallsGoOn: a restart (the manager stopped and a new one
// started on the same state file) does not end live calls: ringing calls
// keep ringing, active calls stay active with the same media key; each
// later ends with exactly one discard.
func TestRestartLiveCallsGoOn(t *testing.T) {
	gotdrace.CutsConnections(t)
	cases := []struct {
		name  string
		setup func(h *harness) int64
		state calld.State
	}{
		{"incoming ringing", func(h *harness) int64 {
			id := h.incoming(false)
			h.waitState(id, calld.StateRinging)
			return id
		}, calld.StateRinging},
		{"outgoing ringing", func(h *harness) int64 { return h.place(sim.RingForever, calld.StateRinging) }, calld.StateRinging},
		{"incoming active", func(h *harness) int64 {
			id := h.incoming(false)
			h.waitState(id, calld.StateRinging)
			if _, err := h.m.Accept(context.Background(), id); err != nil {
				h.t.Fatal(err)
			}
			h.waitState(id, calld.StateActive)
			return id
		}, calld.StateActive},
		{"outgoing active", func(h *harness) int64 { return h.placeActive() }, calld.StateActive},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{})
			id := tc.setup(h)
			before := h.callState(id)
			var key []byte
			if tc.state == calld.StateActive {
				md, err := h.m.Media(context.Background(), id)
				if err != nil {
					t.Fatal(err)
				}
				key = md.Key
			}
			h.restart(func() { h.clock.Travel(2 * time.Second) })
			after := h.callState(id)
			if after.State != tc.state || (after.Deadline == nil) != (before.Deadline == nil) ||
				after.Deadline != nil && !after.Deadline.Equal(*before.Deadline) {
				t.Fatalf("after the restart: %+v\nbefore: %+v", after, before)
			}
			if tc.state == calld.StateActive {
				md, err := h.m.Media(context.Background(), id)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(md.Key, key) {
					t.Fatal("the media key changed across the restart")
				}
				if _, fp, _ := h.srv.CallKey(id); fp != md.KeyFingerprint {
					t.Fatalf("fingerprint %d, the peer's %d", md.KeyFingerprint, fp)
				}
			}
			if n := len(discards(h.srv, id)); n != 0 {
				t.Fatalf("%d discards sent by the restart", n)
			}
			c, err := h.m.Discard(context.Background(), id, calld.ReasonAuto)
			if err != nil {
				t.Fatal(err)
			}
			if c.State != calld.StateEnded || c.EndedBy != calld.EndedByLocal {
				t.Fatalf("discarded: %+v", c)
			}
			if n := len(discards(h.srv, id)); n != 1 {
				t.Fatalf("%d discards, want 1", n)
			}
		})
	}
}

// TestRestartKeyExchangeCompletes: a key exchange cut by a restart while
// our acceptCall or confirmCall was in flight completes afterwards with
// the key the peer has.
func TestRestartKeyExchangeCompletes(t *testing.T) {
	gotdrace.CutsConnections(t)
	cases := []struct {
		name   string
		method string
		start  func(h *harness) int64
	}{
		{"incoming accept in flight", "phone.acceptCall", func(h *harness) int64 {
			id := h.incoming(false)
			h.waitState(id, calld.StateRinging)
			go func() { _, _ = h.m.Accept(context.Background(), id) }()
			h.waitState(id, calld.StateAccepting)
			return id
		}},
		{"outgoing confirm in flight", "phone.confirmCall", func(h *harness) int64 {
			return h.place(sim.Answer, calld.StateExchangingKeys)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{})
			n0 := h.srv.Count(tc.method)
			release := h.srv.HoldRPC(tc.method)
			id := tc.start(h)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := h.srv.WaitCount(ctx, tc.method, n0+1); err != nil {
				t.Fatal(err)
			}
			h.restart(release)
			h.waitState(id, calld.StateActive)
			md, err := h.m.Media(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			key, fp, ok := h.srv.CallKey(id)
			if !ok || fp != md.KeyFingerprint || !bytes.Equal(key, md.Key) {
				t.Fatalf("key: ours fp %d, the peer's %d (%v)", md.KeyFingerprint, fp, ok)
			}
			if _, err := h.m.Discard(context.Background(), id, calld.ReasonAuto); err != nil {
				t.Fatal(err)
			}
			if n := len(discards(h.srv, id)); n != 1 {
				t.Fatalf("%d discards, want 1", n)
			}
		})
	}
}

// TestRestartExpiredDeadlineOneDiscard: a max_duration deadline that
// passed while calld was down fires once at start-up, and the call gets
// exactly one phone.discardCall, even when its answer is slow (defect 1
// of issue 9: the expired deadline and the reconciliation both sent one).
func TestRestartExpiredDeadlineOneDiscard(t *testing.T) {
	gotdrace.CutsConnections(t)
	h := newHarness(t, harnessOptions{timeouts: fsm.Timeouts{MaxDuration: 10 * time.Second}})
	id := h.placeActive()
	n0 := h.srv.Count("phone.discardCall")
	release := h.srv.HoldRPC("phone.discardCall")
	defer release()
	h.restart(func() { h.clock.Travel(time.Minute) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.srv.WaitCount(ctx, "phone.discardCall", n0+1); err != nil {
		t.Fatal(err)
	}
	// Whatever the start-up was going to send is sent by now: one more
	// round through the loop runs the effects of the batch before.
	manager.InMemoryCalls(h.m)
	release()
	h.waitState(id, calld.StateEnded)
	if n := len(discards(h.srv, id)); n != 1 {
		t.Fatalf("%d discards, want 1", n)
	}
	// The call was connected until the deadline fired, at start-up.
	c := h.callState(id)
	if c.Reason != calld.ReasonHangup || c.EndedBy != calld.EndedByTimeout || c.Duration != 60 {
		t.Fatalf("ended: %+v", c)
	}
	// Another restart sends nothing more.
	h.restart(nil)
	manager.InMemoryCalls(h.m)
	if n := len(discards(h.srv, id)); n != 1 {
		t.Fatalf("%d discards after a second restart, want 1", n)
	}
}

// TestDiscardAlreadyDeclinedIsSuccess: CALL_ALREADY_DECLINED in answer to
// our discard means the server executed it (its answer was lost): the
// call ends with our reason, ended_by local.
func TestDiscardAlreadyDeclinedIsSuccess(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	id := h.incoming(false)
	h.waitState(id, calld.StateRinging)
	h.srv.FailRPC("phone.discardCall", tgerr.New(400, "CALL_ALREADY_DECLINED"), 1)
	c, err := h.m.Discard(context.Background(), id, calld.ReasonAuto)
	if err != nil {
		t.Fatal(err)
	}
	if c.State != calld.StateEnded || c.Reason != calld.ReasonBusy || c.EndedBy != calld.EndedByLocal || c.Error != "" {
		t.Fatalf("ended: %+v", c)
	}
}

// TestAcceptRacingEndIsAnswered: an accept and the remote hang-up of the
// same call in one loop batch: the call ends before acceptCall is sent,
// and the accept is still answered (defect 3 of issue 9).
func TestAcceptRacingEndIsAnswered(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	id := h.incoming(false)
	h.waitState(id, calld.StateRinging)
	queued, release := manager.Block(h.m)
	defer release()
	type result struct {
		c   calld.Call
		err error
	}
	res := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := h.m.Accept(ctx, id)
		res <- result{c, err}
	}()
	h.waitFor("the accept queued", func() bool { return queued() == 1 })
	if err := h.srv.PeerHangup(id, &tg.PhoneCallDiscardReasonHangup{}); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the hang-up queued", func() bool { return queued() == 2 })
	release()
	r := <-res
	if r.err == nil || r.err == context.DeadlineExceeded {
		t.Fatalf("accept of a call that ended first: %+v, %v", r.c, r.err)
	}
	if r.c.State != calld.StateEnded || r.c.EndedBy != calld.EndedByRemote {
		t.Fatalf("answer: %+v", r.c)
	}
	n := 0
	for _, r := range h.srv.Requests() {
		if req, ok := r.Req.(*tg.PhoneAcceptCallRequest); ok && req.Peer.ID == id {
			n++
		}
	}
	if n != 0 {
		t.Fatalf("acceptCall sent %d times for a call that had ended", n)
	}
}

// TestRestoredWithoutSecretsEnds: a live record written before calld
// persisted call secrets cannot go on: after the first difference it ends
// with DESIGN's reason (busy for an incoming call not accepted), once.
func TestRestoredWithoutSecretsEnds(t *testing.T) {
	gotdrace.CutsConnections(t)
	h := newHarness(t, harnessOptions{})
	var id int64
	h.restart(func() {
		// Written as an older calld did: the record, no secrets.
		var err error
		peer, _ := newPeer(h.srv)
		if id, err = h.srv.IncomingCall(peer, false); err != nil {
			t.Fatal(err)
		}
		info, _ := h.srv.Call(id)
		now := h.clock.Now()
		deadline := now.Add(time.Minute)
		rec := calld.Call{ID: id, AccessHash: info.AccessHash, Direction: calld.DirectionIncoming, PeerID: peer,
			State: calld.StateRinging, CreatedAt: &now, RingingAt: &now, Date: info.Date, AdminID: peer,
			ParticipantID: sim.SelfID, Connections: []calld.Connection{}, Deadline: &deadline, DeadlineKind: "ring"}
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		h.openDB()
		if err := h.db.Update(func(tx *store.Tx) error { return tx.PutCall(id, b, true) }); err != nil {
			t.Fatal(err)
		}
		if err := h.db.Close(); err != nil {
			t.Fatal(err)
		}
	})
	h.waitState(id, calld.StateEnded)
	c := h.callState(id)
	if c.Reason != calld.ReasonBusy || c.EndedBy != calld.EndedByLocal {
		t.Fatalf("ended: %+v", c)
	}
	if n := len(discards(h.srv, id)); n != 1 {
		t.Fatalf("%d discards, want 1", n)
	}
}

// TestRestartHangingUpResendsOnce: a discard in flight when calld stops
// (no answer recorded) is sent again after the restart with its recorded
// values, unless the first difference shows the server executed it; the
// server executes exactly one, and the call ends ours.
func TestRestartHangingUpResendsOnce(t *testing.T) {
	gotdrace.CutsConnections(t)
	h := newHarness(t, harnessOptions{})
	id := h.incoming(false)
	h.waitState(id, calld.StateRinging)
	n0, x0 := h.srv.Count("phone.discardCall"), h.srv.Executed("phone.discardCall")
	release := h.srv.HoldRPC("phone.discardCall")
	go func() { _, _ = h.m.Discard(context.Background(), id, calld.ReasonAuto) }()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.srv.WaitCount(ctx, "phone.discardCall", n0+1); err != nil {
		t.Fatal(err)
	}
	h.restart(release)
	h.waitState(id, calld.StateEnded)
	c := h.callState(id)
	if c.Reason != calld.ReasonBusy || c.EndedBy != calld.EndedByLocal || c.Error != "" {
		t.Fatalf("ended: %+v", c)
	}
	manager.InMemoryCalls(h.m)
	info, _ := h.srv.Call(id)
	if n := h.srv.Executed("phone.discardCall") - x0; n != 1 || info.Reason != "busy" || info.DiscardedBy != sim.BySelf {
		t.Fatalf("the server executed %d discards; its call: %+v", n, info)
	}
}

// TestRestartReceivedInFlight: an incoming call whose phone.receivedCall
// was in flight when calld stopped rings after the restart (the
// acknowledgement is sent again).
func TestRestartReceivedInFlight(t *testing.T) {
	gotdrace.CutsConnections(t)
	h := newHarness(t, harnessOptions{})
	n0 := h.srv.Count("phone.receivedCall")
	release := h.srv.HoldRPC("phone.receivedCall")
	id := h.incoming(false)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.srv.WaitCount(ctx, "phone.receivedCall", n0+1); err != nil {
		t.Fatal(err)
	}
	before := h.callState(id)
	if before.State != calld.StateWaiting {
		t.Fatalf("before the restart: %+v", before)
	}
	h.restart(release)
	h.waitState(id, calld.StateRinging)
	if n := len(discards(h.srv, id)); n != 0 {
		t.Fatalf("%d discards", n)
	}
}

// TestPlacedPeerUsername: a call placed to @name records the username
// contacts.resolveUsername returned (its own spelling, not the one typed),
// and the record keeps it across a restart.
func TestPlacedPeerUsername(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	peer, name := newPeer(h.srv)
	h.srv.SetPeerBehaviour(peer, sim.RingForever)
	c, err := h.m.Place(context.Background(), "@"+strings.ToUpper(name), false)
	if err != nil {
		t.Fatal(err)
	}
	if c.PeerUsername != name || c.PeerID != peer {
		t.Fatalf("placed: peer %d @%q, want %d @%q", c.PeerID, c.PeerUsername, peer, name)
	}
	h.waitState(c.ID, calld.StateRinging)
	h.restart(func() {})
	if got := h.callState(c.ID); got.PeerUsername != name {
		t.Fatalf("after the restart: peer_username %q, want %q", got.PeerUsername, name)
	}
	if _, err := h.m.Discard(context.Background(), c.ID, calld.ReasonAuto); err != nil {
		t.Fatal(err)
	}
}

// TestIncomingPeerUsername: an incoming call records the caller's
// username from the users of the Updates that brought it, and keeps it
// across a restart.
func TestIncomingPeerUsername(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	peer, name := newPeer(h.srv)
	id, err := h.srv.IncomingCall(peer, false)
	if err != nil {
		t.Fatal(err)
	}
	h.waitState(id, calld.StateRinging)
	if got := h.callState(id); got.PeerUsername != name || got.PeerID != peer {
		t.Fatalf("incoming: peer %d @%q, want %d @%q", got.PeerID, got.PeerUsername, peer, name)
	}
	h.restart(func() {})
	if got := h.callState(id); got.PeerUsername != name {
		t.Fatalf("after the restart: peer_username %q, want %q", got.PeerUsername, name)
	}
	if _, err := h.m.Discard(context.Background(), id, calld.ReasonAuto); err != nil {
		t.Fatal(err)
	}
}
