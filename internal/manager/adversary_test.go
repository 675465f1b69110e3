package manager_test

import (
	"bytes"
	"context"
	"errors"
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
	defer free() // a failure below must not leave the loop held (close waits for it)
	h.cancel()
	h.waitFor("the cut phone.requestCall queued", func() bool { return queued() >= 1 })
	free()
	<-res
	h.restart(release)
	var id int64
	h.travelUntil(func() bool {
		if cs := callsTo(h.srv, peer); len(cs) == 1 {
			id = cs[0].ID
		}
		return id != 0 && h.reached(id, calld.StateRinging)
	})
	if reqs := requestCalls(h.srv, peer); len(reqs) != 2 || reqs[0].RandomID != reqs[1].RandomID {
		t.Fatalf("requests to the peer: %d", len(reqs))
	}
	h.hangUpOnce(id)
	h.stop()
	if n := h.requestsStored(); n != 0 {
		t.Fatalf("%d requests left in the state file", n)
	}
}

// TestRestartConfirmExecutedAnswerLost: our phone.confirmCall was executed
// by the server but calld stopped before its answer was applied (SIGKILL
// at that instant). After the restart the confirm is sent again (the
// same g_a) and the call goes on to active with the peer's key.
func TestRestartConfirmExecutedAnswerLost(t *testing.T) {
	gotdrace.CutsConnections(t)
	h := newHarness(t, harnessOptions{})
	n0, x0 := h.srv.Count("phone.confirmCall"), h.srv.Executed("phone.confirmCall")
	release := h.srv.HoldRPC("phone.confirmCall")
	defer release()
	id := h.place(sim.Answer, calld.StateExchangingKeys)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.srv.WaitCount(ctx, "phone.confirmCall", n0+1); err != nil {
		t.Fatal(err)
	}
	h.stopOnceExecuted("phone.confirmCall", x0, release)
	h.restart(nil)
	h.waitState(id, calld.StateActive)
	if c := h.callState(id); c.State != calld.StateActive {
		t.Fatalf("after the restart: %+v", c)
	}
	h.requirePeersKey(id)
	h.hangUpOnce(id)
}

// TestRestartRequestAnsweredMeanwhile: the server executed our
// phone.requestCall but calld stopped before its answer was applied, and
// the peer answered meanwhile. After the restart the persisted request is
// sent again (same random_id), the call it names completes its key
// exchange with our persisted a, and ends later with one discard.
func TestRestartRequestAnsweredMeanwhile(t *testing.T) {
	gotdrace.CutsConnections(t)
	h := newHarness(t, harnessOptions{})
	x0 := h.srv.Executed("phone.requestCall")
	peer, res, release := h.placeHeld(sim.Answer)
	defer release()
	h.stopOnceExecuted("phone.requestCall", x0, release)
	<-res
	h.restart(nil)
	var id int64
	h.travelUntil(func() bool {
		if cs := callsTo(h.srv, peer); len(cs) == 1 {
			id = cs[0].ID
		}
		return id != 0 && h.reached(id, calld.StateActive)
	})
	if reqs := requestCalls(h.srv, peer); len(reqs) != 2 || reqs[0].RandomID != reqs[1].RandomID {
		t.Fatalf("requests to the peer: %d", len(reqs))
	}
	h.requirePeersKey(id)
	h.hangUpOnce(id)
	h.stop()
	if n := h.requestsStored(); n != 0 {
		t.Fatalf("%d requests left in the state file", n)
	}
}

// secretsStored reports whether the state file holds call id's secrets
// (the manager stopped).
func (h *harness) secretsStored(id int64) bool {
	h.t.Helper()
	h.openDB()
	defer func() {
		if err := h.db.Close(); err != nil {
			h.t.Fatal(err)
		}
	}()
	var found bool
	if err := h.db.View(func(tx *store.Tx) error {
		_, err := tx.CallSecrets(id)
		found = err == nil
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return nil
	}); err != nil {
		h.t.Fatal(err)
	}
	return found
}

// requestsStored is how many phone.requestCall requests the state file
// holds (the manager stopped).
func (h *harness) requestsStored() int {
	h.t.Helper()
	h.openDB()
	defer func() {
		if err := h.db.Close(); err != nil {
			h.t.Fatal(err)
		}
	}()
	n := 0
	if err := h.db.View(func(tx *store.Tx) error {
		return tx.ForEachRequest(func(int32, []byte) error { n++; return nil })
	}); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// TestRestartSecretsLifecycle: a live call's secrets are in the state file;
// they are erased when the call ends, whether locally, from the first
// difference after a restart (the peer hung up while calld was down), or
// because they were unreadable (the call ends with DESIGN's restart
// reason, once, and calld starts).
func TestRestartSecretsLifecycle(t *testing.T) {
	gotdrace.CutsConnections(t)
	cases := []struct {
		name   string
		down   func(h *harness, id int64)
		reason calld.Reason
		by     calld.EndedBy
		local  bool // ended by a discard after the restart
	}{
		{"hung up after the restart", nil, calld.ReasonHangup, calld.EndedByLocal, true},
		{"peer hung up while down", func(h *harness, id int64) {
			if err := h.srv.PeerHangup(id, &tg.PhoneCallDiscardReasonHangup{}); err != nil {
				h.t.Fatal(err)
			}
		}, calld.ReasonHangup, calld.EndedByRemote, false},
		{"unreadable secrets", func(h *harness, id int64) {
			h.openDB()
			if err := h.db.Update(func(tx *store.Tx) error { return tx.PutCallSecrets(id, []byte(`{"key":1}`)) }); err != nil {
				h.t.Fatal(err)
			}
			if err := h.db.Close(); err != nil {
				h.t.Fatal(err)
			}
		}, calld.ReasonDisconnect, calld.EndedByLocal, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{})
			id := h.placeActive()
			h.restart(func() {
				if !h.secretsStored(id) {
					t.Fatal("an active call's secrets are not in the state file")
				}
				if tc.down != nil {
					tc.down(h, id)
				}
			})
			if tc.local {
				if _, err := h.m.Discard(context.Background(), id, calld.ReasonAuto); err != nil {
					t.Fatal(err)
				}
			}
			h.waitState(id, calld.StateEnded)
			c := h.callState(id)
			if c.Reason != tc.reason || c.EndedBy != tc.by {
				t.Fatalf("ended: %+v", c)
			}
			want := 1
			if tc.by == calld.EndedByRemote {
				want = 0
			}
			manager.InMemoryCalls(h.m)
			if n := len(discards(h.srv, id)); n != want {
				t.Fatalf("%d discards, want %d", n, want)
			}
			h.stop()
			if h.secretsStored(id) {
				t.Fatal("an ended call's secrets are still in the state file")
			}
		})
	}
}

// TestRestartMeanwhile: what happens to a live call while calld is down
// decides its end once, at start-up: a ring deadline that passed fires
// once (one discard, and none after a second restart); a peer that hung up
// while our accept was cut ends the call remote, with no discard.
func TestRestartMeanwhile(t *testing.T) {
	gotdrace.CutsConnections(t)
	cases := []struct {
		name     string
		setup    func(h *harness) int64
		down     func(h *harness, id int64)
		by       calld.EndedBy
		discards int
	}{
		{"ring deadline passed", func(h *harness) int64 {
			id := h.incoming(false)
			h.waitState(id, calld.StateRinging)
			return id
		}, func(h *harness, _ int64) { h.clock.Travel(10 * time.Minute) }, calld.EndedByTimeout, 1},
		{"peer hung up while accepting", func(h *harness) int64 {
			id := h.incoming(false)
			h.waitState(id, calld.StateRinging)
			n0 := h.srv.Count("phone.acceptCall")
			release := h.srv.HoldRPC("phone.acceptCall")
			h.t.Cleanup(release)
			go func() { _, _ = h.m.Accept(context.Background(), id) }()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := h.srv.WaitCount(ctx, "phone.acceptCall", n0+1); err != nil {
				h.t.Fatal(err)
			}
			return id
		}, func(h *harness, id int64) {
			if err := h.srv.PeerHangup(id, &tg.PhoneCallDiscardReasonHangup{}); err != nil {
				h.t.Fatal(err)
			}
		}, calld.EndedByRemote, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{})
			id := tc.setup(h)
			h.restart(func() { tc.down(h, id) })
			h.travelUntil(func() bool { return h.reached(id, calld.StateEnded) })
			c := h.callState(id)
			if c.EndedBy != tc.by {
				t.Fatalf("ended: %+v", c)
			}
			manager.InMemoryCalls(h.m)
			if n := len(discards(h.srv, id)); n != tc.discards {
				t.Fatalf("%d discards, want %d", n, tc.discards)
			}
			h.restart(func() { h.clock.Travel(10 * time.Minute) })
			manager.InMemoryCalls(h.m)
			if n := len(discards(h.srv, id)); n != tc.discards {
				t.Fatalf("%d discards after a second restart, want %d", n, tc.discards)
			}
			if d := h.callState(id); d.Reason != c.Reason || d.EndedBy != c.EndedBy {
				t.Fatalf("changed by a second restart: %+v", d)
			}
		})
	}
}

// stopOnceExecuted stops the manager (its loop held meanwhile) once the
// sim has executed the held method (executed counted x0 before), so that
// its answer is never applied: as a SIGKILL at that instant would.
func (h *harness) stopOnceExecuted(method string, x0 int, release func()) {
	h.t.Helper()
	_, free := manager.Block(h.m)
	release()
	h.waitFor(method+" executed", func() bool { return h.srv.Executed(method) == x0+1 })
	h.cancel()
	free()
}

// requirePeersKey checks that call id's media key is the peer's.
func (h *harness) requirePeersKey(id int64) {
	h.t.Helper()
	md, err := h.m.Media(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	if key, fp, ok := h.srv.CallKey(id); !ok || fp != md.KeyFingerprint || !bytes.Equal(key, md.Key) {
		h.t.Fatalf("key: ours fp %d, the peer's %d (%v)", md.KeyFingerprint, fp, ok)
	}
}

// hangUpOnce hangs call id up and checks the sim saw one discard for it.
func (h *harness) hangUpOnce(id int64) {
	h.t.Helper()
	if _, err := h.m.Discard(context.Background(), id, calld.ReasonAuto); err != nil {
		h.t.Fatal(err)
	}
	if n := len(discards(h.srv, id)); n != 1 {
		h.t.Fatalf("%d discards, want 1", n)
	}
}

// TestTwoRestartsDuringDiscard: a discard whose answer never comes across
// two restarts in a row is re-sent by each start with the values decided
// the first time (never decided anew), the server executes one, and the
// call ends ours.
func TestTwoRestartsDuringDiscard(t *testing.T) {
	gotdrace.CutsConnections(t)
	h := newHarness(t, harnessOptions{timeouts: fsm.Timeouts{MaxDuration: time.Minute}})
	id := h.placeActive()
	n0, x0 := h.srv.Count("phone.discardCall"), h.srv.Executed("phone.discardCall")
	release := h.srv.HoldRPC("phone.discardCall")
	defer release()
	go func() { _, _ = h.m.Discard(context.Background(), id, calld.ReasonAuto) }()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := 1; i <= 3; i++ {
		if err := h.srv.WaitCount(ctx, "phone.discardCall", n0+i); err != nil {
			t.Fatal(err)
		}
		if i < 3 {
			// The max_duration deadline passes while down, too.
			h.restart(func() { h.clock.Travel(time.Hour) })
		}
	}
	release()
	h.waitState(id, calld.StateEnded)
	ds := discards(h.srv, id)
	for _, d := range ds[1:] {
		if d.Reason.TypeName() != ds[0].Reason.TypeName() || d.Duration != ds[0].Duration {
			t.Fatalf("a re-sent discard differs: %+v, first %+v", d, ds[0])
		}
	}
	manager.InMemoryCalls(h.m)
	c := h.callState(id)
	if n := h.srv.Executed("phone.discardCall") - x0; n != 1 || len(ds) != 3 ||
		c.Reason != calld.ReasonHangup || c.EndedBy != calld.EndedByLocal || c.Error != "" {
		t.Fatalf("executed %d of %d discards; ended %+v", n, len(ds), c)
	}
}

// TestAbandonedRequestOutlivesAnOldCallsUpdate: while a request calld gave
// up on (its RPC ran out of time) waits for the call the server may still
// create, a late constructor of an earlier, ended call to the same peer
// arrives. It is not that request's call: the request stays, and the call
// the server then creates from it is discarded (missed), not left ringing.
func TestAbandonedRequestOutlivesAnOldCallsUpdate(t *testing.T) {
	h := newHarness(t, harnessOptions{timeouts: fsm.Timeouts{Receive: time.Hour}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	peer, name := newPeer(h.srv)
	h.srv.SetPeerBehaviour(peer, sim.RingForever)
	first, err := h.m.Place(ctx, "@"+name, false)
	if err != nil {
		t.Fatal(err)
	}
	h.waitState(first.ID, calld.StateRinging)
	if _, err := h.m.Discard(ctx, first.ID, calld.ReasonAuto); err != nil {
		t.Fatal(err)
	}
	old := h.callState(first.ID)

	n0 := h.srv.Count("phone.requestCall")
	release := h.srv.HoldRPC("phone.requestCall")
	defer release()
	res := h.placeAsync(name)
	if err := h.srv.WaitCount(ctx, "phone.requestCall", n0+1); err != nil {
		t.Fatal(err)
	}
	h.clock.Travel(90 * time.Second)
	select {
	case r := <-res:
		if r.err == nil {
			t.Fatalf("Place answered %+v", r.c)
		}
	case <-ctx.Done():
		t.Fatal("Place did not answer once its RPC ran out of time")
	}

	// The earlier call's phoneCallWaiting, delivered late (reordered).
	h.srv.Push(&tg.UpdatePhoneCall{PhoneCall: &tg.PhoneCallWaiting{
		ID: old.ID, AccessHash: old.AccessHash, Date: old.Date, AdminID: old.AdminID,
		ParticipantID: old.ParticipantID, Protocol: tg.PhoneCallProtocol{MinLayer: 65, MaxLayer: 92},
		ReceiveDate: old.Date,
	}})
	manager.InMemoryCalls(h.m)
	release()
	var id int64
	h.travelUntil(func() bool {
		for _, c := range callsTo(h.srv, peer) {
			if c.ID != first.ID {
				id = c.ID
			}
		}
		return id != 0 && h.reached(id, calld.StateEnded)
	})
	ds := discards(h.srv, id)
	if len(ds) != 1 {
		t.Fatalf("%d discards of the call made from the abandoned request, want 1", len(ds))
	}
	if _, ok := ds[0].Reason.(*tg.PhoneCallDiscardReasonMissed); !ok {
		t.Fatalf("discard reason %T, want missed", ds[0].Reason)
	}
}

// TestResentDiscardAlreadyDeclined: the discard re-sent after a restart is
// answered CALL_ALREADY_DECLINED (the first one was executed, its answer
// and Updates lost): that is its success, the call ends ours with the
// reason decided before the restart.
func TestResentDiscardAlreadyDeclined(t *testing.T) {
	gotdrace.CutsConnections(t)
	h := newHarness(t, harnessOptions{})
	id := h.placeActive()
	n0 := h.srv.Count("phone.discardCall")
	release := h.srv.HoldRPC("phone.discardCall")
	go func() { _, _ = h.m.Discard(context.Background(), id, calld.ReasonAuto) }()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.srv.WaitCount(ctx, "phone.discardCall", n0+1); err != nil {
		t.Fatal(err)
	}
	h.restart(func() {
		release()
		h.srv.FailRPC("phone.discardCall", tgerr.New(400, "CALL_ALREADY_DECLINED"), 1)
	})
	h.waitState(id, calld.StateEnded)
	c := h.callState(id)
	if c.Reason != calld.ReasonHangup || c.EndedBy != calld.EndedByLocal || c.Error != "" {
		t.Fatalf("ended: %+v", c)
	}
	if n := len(discards(h.srv, id)); n != 2 {
		t.Fatalf("%d discards, want 2 (the first and its re-send)", n)
	}
}

// TestRestartPendingHangupOfRequest: the receive timer ran out while
// phone.requestCall was in flight (the hang-up pending, its watchdog
// running), then calld stopped. Whether the watchdog passed while down or
// not, the request is sent again after the restart and the call it makes
// gets exactly one discard, missed.
func TestRestartPendingHangupOfRequest(t *testing.T) {
	gotdrace.CutsConnections(t)
	for _, down := range []time.Duration{0, time.Hour} {
		t.Run(down.String(), func(t *testing.T) {
			h := newHarness(t, harnessOptions{timeouts: fsm.Timeouts{Receive: 10 * time.Second}})
			peer, _, release := h.placeHeld(sim.RingForever)
			defer release()
			h.clock.Travel(11 * time.Second) // the receive timer: hang-up pending
			manager.InMemoryCalls(h.m)
			h.restart(func() {
				release()
				h.clock.Travel(down)
			})
			var id int64
			h.travelUntil(func() bool {
				if cs := callsTo(h.srv, peer); len(cs) == 1 {
					id = cs[0].ID
				}
				return id != 0 && h.reached(id, calld.StateEnded)
			})
			manager.InMemoryCalls(h.m)
			ds := discards(h.srv, id)
			if len(ds) != 1 {
				t.Fatalf("%d discards, want 1", len(ds))
			}
			if _, ok := ds[0].Reason.(*tg.PhoneCallDiscardReasonMissed); !ok {
				t.Fatalf("discard reason %T, want missed", ds[0].Reason)
			}
		})
	}
}
