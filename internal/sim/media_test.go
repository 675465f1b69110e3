package sim

import (
	"bytes"
	"context"
	"testing"

	"github.com/gotd/td/session"
	"github.com/gotd/td/tg"
)

// signalingOf returns the signaling payload of a pushed container, if any.
func signalingOf(u tg.UpdatesClass) *tg.UpdatePhoneCallSignalingData {
	if ups, ok := u.(*tg.Updates); ok {
		for _, x := range ups.Updates {
			if s, ok := x.(*tg.UpdatePhoneCallSignalingData); ok {
				return s
			}
		}
	}
	return nil
}

// The peer's media engine: three payloads once the call is active, an
// echo of what it receives; rating, comment and debug log recorded;
// need_debug on calls ended while asked.
func TestPeerMediaEngine(t *testing.T) {
	srv, err := New(Options{Authorized: true, SignalingPayloads: 3, Logger: testLogger().Named("server")})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(context.Background(), "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	c := startClient(t, srv, &session.StorageMemory{})
	ctx := testCtx(t)
	peer := srv.AddPeer("engine")
	id, in := incomingActiveCall(t, srv, c, peer, false)
	// gotd handles each pushed message on its own goroutine, so the three
	// pushes may reach the handler ahead of the phoneCall that
	// incomingActiveCall waited for (and skipped): check what was sent.
	sent := srv.SignalingSent(id)
	if len(sent) != 3 {
		t.Fatalf("the peer sent %d payloads, want 3", len(sent))
	}
	for n := 1; n <= 3; n++ {
		if !bytes.Equal(sent[n-1], PeerSignal(id, n)) {
			t.Fatalf("payload %d: %q", n, sent[n-1])
		}
	}
	isSignaling := func(u tg.UpdatesClass) bool {
		s := signalingOf(u)
		return s != nil && s.PhoneCallID == id && bytes.HasPrefix(s.Data, []byte(EchoPrefix))
	}
	ours := []byte{0, 1, 0xff}
	if ok, err := c.api.PhoneSendSignalingData(ctx, &tg.PhoneSendSignalingDataRequest{Peer: in, Data: ours}); err != nil || !ok {
		t.Fatalf("phone.sendSignalingData: %v %v", ok, err)
	}
	if s := signalingOf(c.next(t, isSignaling)); !bytes.Equal(s.Data, append([]byte(EchoPrefix), ours...)) {
		t.Fatalf("echo %q", s.Data)
	}
	if got := srv.SignalingReceived(id); len(got) != 1 || !bytes.Equal(got[0], ours) {
		t.Fatalf("received %q", got)
	}
	if got := srv.SignalingSent(id); len(got) != 4 {
		t.Fatalf("sent %q", got)
	}

	srv.SetNeedDebug(true)
	defer srv.SetNeedDebug(false)
	if err := srv.PeerHangup(id, &tg.PhoneCallDiscardReasonHangup{}); err != nil {
		t.Fatal(err)
	}
	if d, ok := waitCall[*tg.PhoneCallDiscarded](t, c, id), true; !ok || !d.NeedDebug {
		t.Fatalf("discarded %+v", d)
	}
	if _, err := c.api.PhoneSendSignalingData(ctx, &tg.PhoneSendSignalingDataRequest{Peer: in, Data: ours}); err == nil {
		t.Fatal("signaling on an ended call was accepted")
	}
	if _, err := c.api.PhoneSetCallRating(ctx, &tg.PhoneSetCallRatingRequest{Peer: in, Rating: 6}); err == nil {
		t.Fatal("rating 6 was accepted")
	}
	if _, err := c.api.PhoneSetCallRating(ctx, &tg.PhoneSetCallRatingRequest{Peer: in, Rating: 3, Comment: "#echo"}); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.api.PhoneSaveCallDebug(ctx, &tg.PhoneSaveCallDebugRequest{Peer: in, Debug: tg.DataJSON{Data: `{"a":1}`}}); err != nil || !ok {
		t.Fatalf("phone.saveCallDebug: %v %v", ok, err)
	}
	info, _ := srv.Call(id)
	comment, debug := srv.CallFeedback(id)
	if info.Rating != 3 || comment != "#echo" || debug != `{"a":1}` {
		t.Fatalf("feedback: %d %q %q", info.Rating, comment, debug)
	}
}
