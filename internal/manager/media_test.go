package manager_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gotd/td/tg"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/manager"
	"github.com/calld/calld/internal/mtproto"
	"github.com/calld/calld/internal/sim"
	"github.com/calld/calld/internal/store"
)

// requestsOf returns the sim's records of method, oldest first.
func requestsOf[T any](srv *sim.Server, method string) []T {
	var out []T
	for _, r := range srv.Requests() {
		if r.Method == method {
			if v, ok := r.Req.(T); ok {
				out = append(out, v)
			}
		}
	}
	return out
}

// activeCall places a call that a new peer answers, and waits until it
// is active.
func (h *harness) activeCall(ctx context.Context) calld.Call {
	h.t.Helper()
	peer, name := newPeer(h.srv)
	h.srv.SetPeerBehaviour(peer, sim.Answer)
	c, err := h.m.Place(ctx, "@"+name, false)
	if err != nil {
		h.t.Fatal(err)
	}
	h.waitState(c.ID, calld.StateActive)
	return c
}

func ptrTo[T any](v T) *T { return &v }

// sameProtocol compares protocols by their fields (not the decoded flags
// word).
func sameProtocol(a, b tg.PhoneCallProtocol) bool {
	a.Flags, b.Flags = 0, 0
	return reflect.DeepEqual(a, b)
}

// A protocol override on Place reaches phone.requestCall (and the
// confirmCall that follows) unchanged, merged field by field with the
// configured protocol; /media answers the server's choice. An invalid
// override is refused before anything is sent.
func TestPlaceProtocolOverride(t *testing.T) {
	def := mtproto.Protocol()
	// One harness for every case: a harness closed right after start may
	// cut its first getDifference, which meets gotd v0.93.0's
	// ForceClose/Invoke race under -race (race_test.go).
	h := newHarness(t, harnessOptions{})
	for _, tc := range []struct {
		name     string
		override *calld.ProtocolOverride
		want     tg.PhoneCallProtocol
		wantErr  string
	}{
		{name: "max below min", override: &calld.ProtocolOverride{MaxLayer: ptrTo(10)}, wantErr: calld.EINVALID},
		{name: "no transport", override: &calld.ProtocolOverride{UDPP2P: ptrTo(false), UDPReflector: ptrTo(false)}, wantErr: calld.EINVALID},
		{name: "none", want: def},
		{name: "every field", override: &calld.ProtocolOverride{
			UDPP2P: ptrTo(false), UDPReflector: ptrTo(true), MinLayer: ptrTo(92), MaxLayer: ptrTo(92),
			LibraryVersions: []string{"11.0.0", "10.0.0"},
		}, want: tg.PhoneCallProtocol{UDPReflector: true, MinLayer: 92, MaxLayer: 92, LibraryVersions: []string{"11.0.0", "10.0.0"}}},
		{name: "versions only", override: &calld.ProtocolOverride{LibraryVersions: []string{"9.0.0"}},
			want: tg.PhoneCallProtocol{UDPP2P: true, UDPReflector: true, MinLayer: def.MinLayer, MaxLayer: def.MaxLayer, LibraryVersions: []string{"9.0.0"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peer, name := newPeer(h.srv)
			h.srv.SetPeerBehaviour(peer, sim.Answer)
			before := len(requestsOf[*tg.PhoneRequestCallRequest](h.srv, "phone.requestCall"))
			c, err := h.m.PlaceWith(context.Background(), "@"+name, false, tc.override)
			if tc.wantErr != "" {
				if calld.ErrorCode(err) != tc.wantErr {
					t.Fatalf("PlaceWith: %v, want %s", err, tc.wantErr)
				}
				if n := len(requestsOf[*tg.PhoneRequestCallRequest](h.srv, "phone.requestCall")); n != before {
					t.Fatalf("an invalid override sent phone.requestCall")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			h.waitState(c.ID, calld.StateActive)
			var sent *tg.PhoneRequestCallRequest
			for _, r := range requestsOf[*tg.PhoneRequestCallRequest](h.srv, "phone.requestCall") {
				if u, ok := r.UserID.(*tg.InputUser); ok && u.UserID == peer {
					sent = r
				}
			}
			if sent == nil {
				t.Fatal("the sim saw no phone.requestCall for the peer")
			}
			if !sameProtocol(sent.Protocol, tc.want) {
				t.Fatalf("phone.requestCall protocol\n got %+v\nwant %+v", sent.Protocol, tc.want)
			}
			for _, r := range requestsOf[*tg.PhoneConfirmCallRequest](h.srv, "phone.confirmCall") {
				if r.Peer.ID == c.ID && !sameProtocol(r.Protocol, tc.want) {
					t.Fatalf("phone.confirmCall protocol\n got %+v\nwant %+v", r.Protocol, tc.want)
				}
			}
			media, err := h.m.Media(context.Background(), c.ID)
			if err != nil {
				t.Fatal(err)
			}
			// The sim answers its own flags and layers with our versions.
			if !reflect.DeepEqual(media.Protocol.LibraryVersions, tc.want.LibraryVersions) {
				t.Fatalf("/media protocol %+v, want the server's answer with versions %v", media.Protocol, tc.want.LibraryVersions)
			}
		})
	}
}

// An override on Accept reaches phone.acceptCall.
func TestAcceptProtocolOverride(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	id := h.incoming(false)
	h.waitState(id, calld.StateRinging)
	want := tg.PhoneCallProtocol{UDPP2P: true, MinLayer: 70, MaxLayer: 80, LibraryVersions: []string{"7.0.0"}}
	_, err := h.m.AcceptWith(context.Background(), id, &calld.ProtocolOverride{
		UDPReflector: ptrTo(false), MinLayer: ptrTo(70), MaxLayer: ptrTo(80), LibraryVersions: []string{"7.0.0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.waitState(id, calld.StateActive)
	for _, r := range requestsOf[*tg.PhoneAcceptCallRequest](h.srv, "phone.acceptCall") {
		if r.Peer.ID == id {
			if !sameProtocol(r.Protocol, want) {
				t.Fatalf("phone.acceptCall protocol\n got %+v\nwant %+v", r.Protocol, want)
			}
			return
		}
	}
	t.Fatal("the sim saw no phone.acceptCall")
}

// Rating and the debug log: refused while the call is live and when the
// call did not ask; accepted once (the second is a conflict, also after
// the journal is the only memory of the first); each success is a
// journal event of the call.
func TestRateAndDebugOnce(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	peer, name := newPeer(h.srv)
	h.srv.SetPeerBehaviour(peer, sim.Answer)
	c, err := h.m.Place(context.Background(), "@"+name, false)
	if err != nil {
		t.Fatal(err)
	}
	h.waitState(c.ID, calld.StateActive)
	ctx := context.Background()
	if _, err := h.m.Rate(ctx, c.ID, 5, ""); calld.ErrorCode(err) != calld.ECONFLICT {
		t.Fatalf("rating a live call: %v", err)
	}
	h.clock.Travel(5 * time.Second)
	ended, err := h.m.Discard(ctx, c.ID, calld.ReasonAuto)
	if err != nil {
		t.Fatal(err)
	}
	if !ended.NeedRating || ended.NeedDebug {
		t.Fatalf("ended call: %+v", ended)
	}
	if _, err := h.m.SaveDebug(ctx, c.ID, []byte(`{"a":1}`)); calld.ErrorCode(err) != calld.ECONFLICT {
		t.Fatalf("debug log of a call without need_debug: %v", err)
	}
	if _, err := h.m.Rate(ctx, c.ID, 0, ""); calld.ErrorCode(err) != calld.EINVALID {
		t.Fatalf("rating 0: %v", err)
	}
	if _, err := h.m.Rate(ctx, c.ID, 2, "echo"); err != nil {
		t.Fatal(err)
	}
	if info, _ := h.srv.Call(c.ID); info.Rating != 2 {
		t.Fatalf("the sim's rating: %d", info.Rating)
	}
	if _, err := h.m.Rate(ctx, c.ID, 3, ""); calld.ErrorCode(err) != calld.ECONFLICT {
		t.Fatalf("second rating: %v", err)
	}
	rated := 0
	err = h.db.View(func(tx *store.Tx) error {
		return tx.CallEvents(c.ID, func(ev calld.Event) error {
			if ev.Event == "call.rated" {
				rated++
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if rated != 1 {
		t.Fatalf("%d call.rated events", rated)
	}
	if _, err := h.m.Rate(ctx, 424242, 3, ""); calld.ErrorCode(err) != calld.ENOTFOUND {
		t.Fatalf("rating an unknown call: %v", err)
	}
}

// ratingGate is a Telegram whose phone.setCallRating, once answered,
// reports it on sent and returns only when proceed is closed.
type ratingGate struct {
	manager.Telegram
	sent    chan struct{}
	proceed chan struct{}
}

func (g ratingGate) SetCallRating(ctx context.Context, peer tg.InputPhoneCall, rating int, comment string) error {
	err := g.Telegram.SetCallRating(ctx, peer, rating, comment)
	g.sent <- struct{}{}
	<-g.proceed
	return err
}

// A second rating that reaches the loop in the same batch as the first
// one's answer (after the answer, before its journal event is committed)
// is a conflict: exactly one phone.setCallRating reaches Telegram.
func TestRateSecondInTheFirstsBatch(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := context.Background()
	c := h.activeCall(ctx)
	h.clock.Travel(5 * time.Second)
	if ended, err := h.m.Discard(ctx, c.ID, calld.ReasonAuto); err != nil || !ended.NeedRating {
		t.Fatalf("discard: %+v, %v", ended, err)
	}
	before := h.srv.Count("phone.setCallRating")
	gate := ratingGate{sent: make(chan struct{}, 2), proceed: make(chan struct{})}
	manager.WrapTelegram(h.m, func(t manager.Telegram) manager.Telegram { gate.Telegram = t; return gate })
	first := make(chan error, 1)
	go func() {
		_, err := h.m.Rate(ctx, c.ID, 4, "")
		first <- err
	}()
	<-gate.sent // answered; its Updates are queued for the loop
	queued, release := manager.Block(h.m)
	defer release()
	n := queued()
	close(gate.proceed)
	h.waitFor("the first rating's completion queued", func() bool { return queued() == n+1 })
	second := make(chan error, 1)
	go func() {
		_, err := h.m.Rate(ctx, c.ID, 1, "")
		second <- err
	}()
	h.waitFor("the second rating queued", func() bool { return queued() == n+2 })
	release()
	if err := <-first; err != nil {
		t.Fatalf("first rating: %v", err)
	}
	if err := <-second; calld.ErrorCode(err) != calld.ECONFLICT {
		t.Fatalf("second rating: %v, want a conflict", err)
	}
	if n := h.srv.Count("phone.setCallRating") - before; n != 1 {
		t.Fatalf("phone.setCallRating sent %d times", n)
	}
}

// The relay's followers: an unknown call is not_found; a follower that
// does not read holds neither the loop nor the other followers; when the
// call ends every follower gets what was kept, then its stream ends; an
// ended call's relay is a conflict.
func TestSignalingFollowers(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := h.activeCall(ctx)
	nop := func(calld.SignalingPayload) error { return nil }
	if err := h.m.Signaling(ctx, 424242, 0, true, nop); calld.ErrorCode(err) != calld.ENOTFOUND {
		t.Fatalf("signaling of an unknown call: %v", err)
	}

	stuck, unstick := make(chan struct{}), make(chan struct{})
	var slow []uint64
	slowDone := make(chan error, 1)
	go func() {
		slowDone <- h.m.Signaling(ctx, c.ID, 0, true, func(p calld.SignalingPayload) error {
			slow = append(slow, p.Seq)
			if len(slow) == 1 {
				close(stuck)
				<-unstick
			}
			return nil
		})
	}()
	got := make(chan calld.SignalingPayload, 8)
	fastDone := make(chan error, 1)
	go func() {
		fastDone <- h.m.Signaling(ctx, c.ID, 0, true, func(p calld.SignalingPayload) error { got <- p; return nil })
	}()
	payload := func(n int) []byte { return []byte{byte(n), 0, '\n', 0xff} }
	for n := 1; n <= 3; n++ {
		h.srv.Push(&tg.UpdatePhoneCallSignalingData{PhoneCallID: c.ID, Data: payload(n)})
	}
	for n := 1; n <= 3; n++ {
		select {
		case p := <-got:
			if p.Seq != uint64(n) || string(p.Data) != string(payload(n)) {
				t.Fatalf("payload %d: %d %q", n, p.Seq, p.Data)
			}
		case <-ctx.Done():
			t.Fatalf("the follower got %d of 3 payloads", n-1)
		}
	}
	<-stuck
	// The slow follower holds its first payload; the call still ends.
	h.clock.Travel(2 * time.Second)
	if _, err := h.m.Discard(ctx, c.ID, calld.ReasonAuto); err != nil {
		t.Fatal(err)
	}
	if err := <-fastDone; err != nil {
		t.Fatalf("the follower's stream at the end: %v", err)
	}
	close(unstick)
	if err := <-slowDone; err != nil || len(slow) != 3 {
		t.Fatalf("the slow follower: %v, seqs %v", err, slow)
	}
	if err := h.m.Signaling(ctx, c.ID, 0, true, nop); calld.ErrorCode(err) != calld.ECONFLICT {
		t.Fatalf("signaling of an ended call: %v", err)
	}
	if err := h.m.SendSignaling(ctx, c.ID, []byte{1}); calld.ErrorCode(err) != calld.ECONFLICT {
		t.Fatalf("sending signaling on an ended call: %v", err)
	}
}

// since beyond the call's last seq is invalid (as on /v1/events), not a
// stream that skips the next payloads: a media engine that resumes with
// its last seq after calld restarted (the numbering starts again at 1)
// learns it must read from 0 instead of losing payloads.
func TestSignalingSinceBeyondTheLast(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := h.activeCall(ctx)
	nop := func(calld.SignalingPayload) error { return nil }
	if err := h.m.Signaling(ctx, c.ID, 1, false, nop); calld.ErrorCode(err) != calld.EINVALID || !strings.Contains(err.Error(), "since") {
		t.Fatalf("since 1 with nothing kept: %v", err)
	}
	h.srv.Push(&tg.UpdatePhoneCallSignalingData{PhoneCallID: c.ID, Data: []byte("one")},
		&tg.UpdatePhoneCallSignalingData{PhoneCallID: c.ID, Data: []byte("two")})
	got := make(chan uint64, 2)
	go func() {
		_ = h.m.Signaling(ctx, c.ID, 0, true, func(p calld.SignalingPayload) error { got <- p.Seq; return nil })
	}()
	<-got
	<-got
	for since, want := range map[uint64]string{0: "", 1: "", 2: "", 3: calld.EINVALID} {
		if err := h.m.Signaling(ctx, c.ID, since, false, nop); calld.ErrorCode(err) != want {
			t.Errorf("since %d: %v, want %q", since, err, want)
		}
	}
}
