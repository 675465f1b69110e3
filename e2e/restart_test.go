package e2e

import (
	"bytes"
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/gotd/td/tg"

	"github.com/calld/calld"
	"github.com/calld/calld/client"
	"github.com/calld/calld/internal/sim"
)

// TestRestartKeepsLiveCalls (CONTRACT §5.1): calls live when `calld serve`
// is killed with SIGKILL go on after the restart: an active call stays
// active with the same media key, a ringing call keeps ringing, key
// exchanges cut while our confirmCall or acceptCall was in flight
// complete; across a
// graceful restart (SIGTERM) too. Each call later ends with exactly one
// phone.discardCall.
func TestRestartKeepsLiveCalls(t *testing.T) {
	e := newEnv(t, sim.Options{Authorized: true}, "[policy]\nreject_when_busy = false\n")
	d := e.start()
	cl := client.New(e.socket)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	place := func(name string) int64 {
		t.Helper()
		e.srv.SetPeerBehaviour(e.srv.AddPeer(name), sim.Answer)
		c, err := cl.Place(ctx, "@"+name, false)
		if err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	mediaKey := func(id int64) []byte {
		t.Helper()
		md, err := cl.Media(ctx, id)
		if err != nil {
			t.Fatalf("media of %d: %v", id, err)
		}
		key, fp, ok := e.srv.CallKey(id)
		if !ok || fp != md.KeyFingerprint || !bytes.Equal(key, md.Key) {
			t.Fatalf("call %d: our key fingerprint %d, the peer's %d", id, md.KeyFingerprint, fp)
		}
		return md.Key
	}

	active := place("alice")
	e.waitCall(active, calld.StateActive)
	key := mediaKey(active)

	ringing, err := e.srv.IncomingCall(e.srv.AddPeer("bob"), false)
	if err != nil {
		t.Fatal(err)
	}
	e.waitCall(ringing, calld.StateRinging)

	// A key exchange whose confirmCall is in flight when calld dies.
	n0 := e.srv.Count("phone.confirmCall")
	release := e.srv.HoldRPC("phone.confirmCall")
	exchanging := place("carol")
	e.waitCall(exchanging, calld.StateExchangingKeys)
	if err := e.srv.WaitCount(ctx, "phone.confirmCall", n0+1); err != nil {
		t.Fatal(err)
	}

	// And an incoming call whose acceptCall is in flight.
	accepting, err := e.srv.IncomingCall(e.srv.AddPeer("dave"), false)
	if err != nil {
		t.Fatal(err)
	}
	e.waitCall(accepting, calld.StateRinging)
	a0 := e.srv.Count("phone.acceptCall")
	releaseAccept := e.srv.HoldRPC("phone.acceptCall")
	go func() { _, _ = cl.Accept(ctx, accepting) }() // cut by the kill
	if err := e.srv.WaitCount(ctx, "phone.acceptCall", a0+1); err != nil {
		t.Fatal(err)
	}

	if code := d.stop(t, syscall.SIGKILL); code == 0 {
		t.Fatal("SIGKILL reported a clean exit")
	}
	release()
	releaseAccept()
	d = e.start()
	if c := e.waitCall(active, calld.StateActive); c.EndedAt != nil {
		t.Fatalf("active call after SIGKILL: %+v", c)
	}
	if !bytes.Equal(mediaKey(active), key) {
		t.Fatal("the media key changed across SIGKILL")
	}
	e.waitCall(exchanging, calld.StateActive)
	mediaKey(exchanging)
	e.waitCall(accepting, calld.StateActive)
	mediaKey(accepting)
	if c, err := cl.Call(ctx, ringing); err != nil || c.State != calld.StateRinging {
		t.Fatalf("ringing call after SIGKILL: %+v, %v", c, err)
	}

	if code := d.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("SIGTERM: exit %d", code)
	}
	e.start()
	for _, id := range []int64{active, exchanging, accepting, ringing} {
		c, err := cl.Call(ctx, id)
		if err != nil || !c.State.Live() {
			t.Fatalf("call %d after SIGTERM: %+v, %v", id, c, err)
		}
	}
	if c, _ := cl.Call(ctx, ringing); c.State != calld.StateRinging {
		t.Fatalf("ringing call after SIGTERM: %+v", c)
	}
	if !bytes.Equal(mediaKey(active), key) {
		t.Fatal("the media key changed across SIGTERM")
	}

	for _, tc := range []struct {
		id     int64
		reason calld.Reason
	}{{active, calld.ReasonHangup}, {exchanging, calld.ReasonHangup}, {accepting, calld.ReasonHangup}, {ringing, calld.ReasonBusy}} {
		c, err := cl.Discard(ctx, tc.id, calld.ReasonAuto)
		if err != nil {
			t.Fatal(err)
		}
		if c.State != calld.StateEnded || c.Reason != tc.reason || c.EndedBy != calld.EndedByLocal {
			t.Fatalf("discarded: %+v", c)
		}
	}
	for _, id := range []int64{active, exchanging, accepting, ringing} {
		n := 0
		for _, r := range e.srv.Requests() {
			if req, ok := r.Req.(*tg.PhoneDiscardCallRequest); ok && req.Peer.ID == id {
				n++
			}
		}
		if n != 1 {
			t.Errorf("call %d: %d phone.discardCall, want 1", id, n)
		}
		if info, _ := e.srv.Call(id); info.State != sim.StateDiscarded || info.DiscardedBy != sim.BySelf {
			t.Errorf("the server's call %d: %+v", id, info)
		}
	}
}
