package sim

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"math/big"
	"testing"
	"time"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"

	"github.com/calld/calld/internal/gotdrace"
)

// clientDH is the account's side of a call's key exchange, written here
// independently of the server's dh.go so matching fingerprints cross-check
// both.
type clientDH struct {
	p, g *big.Int
	x    *big.Int
	gx   []byte
}

func newClientDH(t *testing.T, c *testClient) clientDH {
	t.Helper()
	cfg, err := c.api.MessagesGetDhConfig(testCtx(t), &tg.MessagesGetDhConfigRequest{Version: 0, RandomLength: 256})
	if err != nil {
		t.Fatalf("messages.getDhConfig: %v", err)
	}
	dh, ok := cfg.(*tg.MessagesDhConfig)
	if !ok {
		t.Fatalf("getDhConfig version 0 answered %T", cfg)
	}
	buf := make([]byte, 256)
	if _, err := rand.Read(buf); err != nil {
		t.Fatal(err)
	}
	p := new(big.Int).SetBytes(dh.P)
	g := big.NewInt(int64(dh.G))
	x := new(big.Int).SetBytes(buf)
	gx := make([]byte, 256)
	new(big.Int).Exp(g, x, p).FillBytes(gx)
	return clientDH{p: p, g: g, x: x, gx: gx}
}

func (d clientDH) key(other []byte) (key []byte, fp int64) {
	key = make([]byte, 256)
	new(big.Int).Exp(new(big.Int).SetBytes(other), d.x, d.p).FillBytes(key)
	sum := sha1.Sum(key)
	return key, int64(binary.LittleEndian.Uint64(sum[len(sum)-8:]))
}

// requestOf is a phone.requestCall to peer committing to dh's g_a, with a
// fresh random_id.
func requestOf(t *testing.T, srv *Server, peer int64, dh clientDH) *tg.PhoneRequestCallRequest {
	h := sha256.Sum256(dh.gx)
	return &tg.PhoneRequestCallRequest{
		UserID:   &tg.InputUser{UserID: peer, AccessHash: srv.AccessHash(peer)},
		RandomID: randomID(t),
		GAHash:   h[:],
		Protocol: protocol(),
	}
}

func randomID(t *testing.T) int {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return int(binary.LittleEndian.Uint32(b[:]) >> 1)
}

func protocol() tg.PhoneCallProtocol {
	return tg.PhoneCallProtocol{UDPP2P: true, UDPReflector: true, MinLayer: 65, MaxLayer: 92, LibraryVersions: []string{"4.0.0"}}
}

// waitCall waits for a pushed updatePhoneCall of call id whose constructor
// matches T.
func waitCall[T tg.PhoneCallClass](t *testing.T, c *testClient, id int64) T {
	t.Helper()
	u := c.next(t, func(u tg.UpdatesClass) bool {
		pc, ok := phoneCallOf(u).(T)
		return ok && pc.GetID() == id
	})
	return phoneCallOf(u).(T)
}

// incomingActiveCall runs an incoming call from peer through the full DH
// exchange and returns its id.
func incomingActiveCall(t *testing.T, srv *Server, c *testClient, peer int64, video bool) (int64, tg.InputPhoneCall) {
	t.Helper()
	ctx := testCtx(t)
	id, err := srv.IncomingCall(peer, video)
	if err != nil {
		t.Fatal(err)
	}
	req := waitCall[*tg.PhoneCallRequested](t, c, id)
	if req.AdminID != peer || req.ParticipantID != SelfID || req.Video != video || len(req.GAHash) != 32 {
		t.Fatalf("phoneCallRequested %+v", req)
	}
	in := tg.InputPhoneCall{ID: req.ID, AccessHash: req.AccessHash}
	if ok, err := c.api.PhoneReceivedCall(ctx, in); err != nil || !ok {
		t.Fatalf("phone.receivedCall: %v %v", ok, err)
	}
	dh := newClientDH(t, c)
	res, err := c.api.PhoneAcceptCall(ctx, &tg.PhoneAcceptCallRequest{Peer: in, GB: dh.gx, Protocol: protocol()})
	if err != nil {
		t.Fatalf("phone.acceptCall: %v", err)
	}
	if _, ok := res.PhoneCall.(*tg.PhoneCallWaiting); !ok {
		t.Fatalf("acceptCall answered %T, want phoneCallWaiting", res.PhoneCall)
	}
	pc := waitCall[*tg.PhoneCall](t, c, id)
	if h := sha256.Sum256(pc.GAOrB); !bytes.Equal(h[:], req.GAHash) {
		t.Fatal("g_a does not match g_a_hash")
	}
	key, fp := dh.key(pc.GAOrB)
	if fp != pc.KeyFingerprint {
		t.Fatalf("fingerprint: client %d, server's phoneCall %d", fp, pc.KeyFingerprint)
	}
	skey, sfp, ok := srv.CallKey(id)
	if !ok || !bytes.Equal(skey, key) || sfp != fp {
		t.Fatalf("CallKey: ok=%v fp=%d, client fp %d, keys equal %v", ok, sfp, fp, bytes.Equal(skey, key))
	}
	if len(pc.Connections) == 0 {
		t.Fatal("phoneCall without connections")
	}
	for _, cn := range pc.Connections {
		pcn, ok := cn.(*tg.PhoneConnection)
		if !ok || pcn.IP != "127.0.0.1" || len(pcn.PeerTag) != 16 {
			t.Fatalf("connection %+v", cn)
		}
	}
	if info, _ := srv.Call(id); info.State != StateActive || info.Video != video || info.Outgoing {
		t.Fatalf("server view %+v", info)
	}
	return id, in
}

func TestIncomingCallDH(t *testing.T) {
	srv := sharedServer(t)
	peer := srv.AddPeer("erin")
	c := startClient(t, srv, sharedStore)
	for _, video := range []bool{false, true} {
		incomingActiveCall(t, srv, c, peer, video)
	}
}

func TestDHConfig(t *testing.T) {
	srv := sharedServer(t)
	c := startClient(t, srv, sharedStore)
	ctx := testCtx(t)
	tests := []struct {
		version int
		want    string
	}{
		{0, "full"},
		{DHVersion + 1, "full"},
		{DHVersion, "not modified"},
	}
	for _, tt := range tests {
		res, err := c.api.MessagesGetDhConfig(ctx, &tg.MessagesGetDhConfigRequest{Version: tt.version, RandomLength: 32})
		if err != nil {
			t.Fatal(err)
		}
		switch r := res.(type) {
		case *tg.MessagesDhConfig:
			p := new(big.Int).SetBytes(r.P)
			if tt.want != "full" || r.G != 3 || r.Version != DHVersion || p.BitLen() != 2048 || len(r.Random) != 32 {
				t.Fatalf("version %d: g=%d version=%d bits=%d", tt.version, r.G, r.Version, p.BitLen())
			}
		case *tg.MessagesDhConfigNotModified:
			if tt.want != "not modified" || len(r.Random) != 32 {
				t.Fatalf("version %d: not modified", tt.version)
			}
		}
	}
	// The prime is a safe prime, and Telegram's rule for g = 3 holds:
	// p mod 3 == 2.
	p := DHPrime()
	q := new(big.Int).Rsh(p, 1)
	if !p.ProbablyPrime(20) || !q.ProbablyPrime(20) {
		t.Fatal("DH prime is not a safe prime")
	}
	if new(big.Int).Mod(p, big.NewInt(3)).Int64() != 2 {
		t.Fatal("p mod 3 != 2, g = 3 unusable")
	}
}

func TestOutgoingCall(t *testing.T) {
	srv := sharedServer(t)
	c := startClient(t, srv, sharedStore)
	ctx := testCtx(t)

	request := func(t *testing.T, peer int64, dh clientDH) *tg.PhoneCallWaiting {
		t.Helper()
		h := sha256.Sum256(dh.gx)
		res, err := c.api.PhoneRequestCall(ctx, &tg.PhoneRequestCallRequest{
			UserID:   &tg.InputUser{UserID: peer, AccessHash: srv.AccessHash(peer)},
			RandomID: randomID(t),
			GAHash:   h[:],
			Protocol: protocol(),
		})
		if err != nil {
			t.Fatalf("phone.requestCall: %v", err)
		}
		w, ok := res.PhoneCall.(*tg.PhoneCallWaiting)
		if !ok || w.ReceiveDate != 0 || w.AdminID != SelfID || w.ParticipantID != peer {
			t.Fatalf("requestCall answered %#v", res.PhoneCall)
		}
		return w
	}

	t.Run("answer and confirm", func(t *testing.T) {
		peer := srv.AddPeer("frank")
		dh := newClientDH(t, c)
		w := request(t, peer, dh)
		acc := waitCall[*tg.PhoneCallAccepted](t, c, w.ID)
		key, fp := dh.key(acc.GB)
		res, err := c.api.PhoneConfirmCall(ctx, &tg.PhoneConfirmCallRequest{
			Peer: tg.InputPhoneCall{ID: w.ID, AccessHash: w.AccessHash}, GA: dh.gx, KeyFingerprint: fp, Protocol: protocol(),
		})
		if err != nil {
			t.Fatalf("phone.confirmCall: %v", err)
		}
		pc, ok := res.PhoneCall.(*tg.PhoneCall)
		if !ok || pc.KeyFingerprint != fp || !bytes.Equal(pc.GAOrB, acc.GB) {
			t.Fatalf("confirmCall answered %#v", res.PhoneCall)
		}
		skey, sfp, _ := srv.CallKey(w.ID)
		if !bytes.Equal(skey, key) || sfp != fp {
			t.Fatal("server key differs from the client's")
		}
		info, _ := srv.Call(w.ID)
		if info.State != StateActive || !info.Outgoing {
			t.Fatalf("server view %+v", info)
		}
	})

	t.Run("ringing delivered", func(t *testing.T) {
		peer := srv.AddPeer("grace")
		srv.SetPeerBehaviour(peer, RingForever)
		w := request(t, peer, newClientDH(t, c))
		got := waitCall[*tg.PhoneCallWaiting](t, c, w.ID)
		if got.ReceiveDate == 0 {
			t.Fatal("pushed phoneCallWaiting without receive_date")
		}
		if info, _ := srv.Call(w.ID); info.State != StateRinging {
			t.Fatalf("state %s, want ringing", info.State)
		}
		if err := srv.PeerAnswer(w.ID); err != nil {
			t.Fatal(err)
		}
		waitCall[*tg.PhoneCallAccepted](t, c, w.ID)
	})

	t.Run("random_id de-duplicates", func(t *testing.T) {
		peer := srv.AddPeer("olivia")
		srv.SetPeerBehaviour(peer, Unreachable)
		req := requestOf(t, srv, peer, newClientDH(t, c))
		var ids []int64
		for i := 0; i < 2; i++ {
			res, err := c.api.PhoneRequestCall(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, res.PhoneCall.GetID())
		}
		if ids[0] != ids[1] {
			t.Fatalf("same random_id made two calls %v", ids)
		}
		if info, _ := srv.Call(ids[0]); info.State != StateWaiting {
			t.Fatalf("unreachable peer: state %s, want waiting", info.State)
		}
	})

	t.Run("repeated random_id answers the call as it is now", func(t *testing.T) {
		peer := srv.AddPeer("oscar")
		srv.SetPeerBehaviour(peer, RingForever)
		req := requestOf(t, srv, peer, newClientDH(t, c))
		res, err := c.api.PhoneRequestCall(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		id := res.PhoneCall.GetID()
		waitCall[*tg.PhoneCallWaiting](t, c, id)
		if err := srv.PeerAnswer(id); err != nil {
			t.Fatal(err)
		}
		waitCall[*tg.PhoneCallAccepted](t, c, id)
		res, err = c.api.PhoneRequestCall(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		acc, ok := res.PhoneCall.(*tg.PhoneCallAccepted)
		if !ok || acc.ID != id || len(acc.GB) == 0 {
			t.Fatalf("repeated request answered %T %+v, want the accepted call %d", res.PhoneCall, res.PhoneCall, id)
		}
		if err := srv.PeerHangup(id, &tg.PhoneCallDiscardReasonHangup{}); err != nil {
			t.Fatal(err)
		}
		res, err = c.api.PhoneRequestCall(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if d, ok := res.PhoneCall.(*tg.PhoneCallDiscarded); !ok || d.ID != id {
			t.Fatalf("repeated request of an ended call answered %T", res.PhoneCall)
		}
	})

	t.Run("busy", func(t *testing.T) {
		peer := srv.AddPeer("heidi")
		srv.SetPeerBehaviour(peer, Busy)
		w := request(t, peer, newClientDH(t, c))
		d := waitCall[*tg.PhoneCallDiscarded](t, c, w.ID)
		if _, ok := d.Reason.(*tg.PhoneCallDiscardReasonBusy); !ok {
			t.Fatalf("discard reason %T, want busy", d.Reason)
		}
		if info, _ := srv.Call(w.ID); info.State != StateDiscarded || info.DiscardedBy != ByPeer || info.Reason != "busy" {
			t.Fatalf("server view %+v", info)
		}
	})

	mismatch := []struct {
		name    string
		mutate  func(ga []byte, fp int64) ([]byte, int64)
		wantErr string
	}{
		{"fingerprint", func(ga []byte, fp int64) ([]byte, int64) { return ga, fp + 1 }, "KEY_FINGERPRINT_MISMATCH"},
		{"g_a hash", func(ga []byte, fp int64) ([]byte, int64) {
			x := append([]byte(nil), ga...)
			x[100] ^= 1
			return x, fp
		}, "G_A_HASH_MISMATCH"},
	}
	for _, tt := range mismatch {
		t.Run("confirm mismatch "+tt.name, func(t *testing.T) {
			peer := srv.AddPeer("mallory_" + tt.name)
			dh := newClientDH(t, c)
			w := request(t, peer, dh)
			acc := waitCall[*tg.PhoneCallAccepted](t, c, w.ID)
			_, fp := dh.key(acc.GB)
			ga, fp := tt.mutate(dh.gx, fp)
			_, err := c.api.PhoneConfirmCall(ctx, &tg.PhoneConfirmCallRequest{
				Peer: tg.InputPhoneCall{ID: w.ID, AccessHash: w.AccessHash}, GA: ga, KeyFingerprint: fp, Protocol: protocol(),
			})
			if !tgerr.Is(err, tt.wantErr) {
				t.Fatalf("confirmCall: %v, want %s", err, tt.wantErr)
			}
			d := waitCall[*tg.PhoneCallDiscarded](t, c, w.ID)
			if _, ok := d.Reason.(*tg.PhoneCallDiscardReasonDisconnect); !ok {
				t.Fatalf("discard reason %T, want disconnect", d.Reason)
			}
			if info, _ := srv.Call(w.ID); info.State != StateDiscarded || info.Reason != "disconnect" || info.DiscardedBy != ByServer {
				t.Fatalf("server view %+v", info)
			}
		})
	}
}

func TestDiscardCall(t *testing.T) {
	srv := sharedServer(t)
	peer := srv.AddPeer("ivan")
	c := startClient(t, srv, sharedStore)
	me := sessionOf(t, srv, c)
	ctx := testCtx(t)

	discard := func(in tg.InputPhoneCall, reason tg.PhoneCallDiscardReasonClass, duration int, video bool) (tg.UpdatesClass, error) {
		return c.api.PhoneDiscardCall(ctx, &tg.PhoneDiscardCallRequest{
			Peer: in, Reason: reason, Duration: duration, ConnectionID: 4242, Video: video,
		})
	}

	t.Run("result shape", func(t *testing.T) {
		id, in := incomingActiveCall(t, srv, c, peer, false)
		pts0, _, seq0, date := srv.State()
		mark := srv.sentMark()
		res, err := discard(in, &tg.PhoneCallDiscardReasonHangup{}, 5, true)
		if err != nil {
			t.Fatalf("phone.discardCall: %v", err)
		}
		ups, ok := res.(*tg.Updates)
		if !ok || len(ups.Updates) != 2 || ups.Seq != seq0+1 || ups.Date != date || len(ups.Users) == 0 {
			t.Fatalf("result %#v (seq0 %d)", res, seq0)
		}
		upc, ok := ups.Updates[0].(*tg.UpdatePhoneCall)
		if !ok {
			t.Fatalf("updates[0] %T", ups.Updates[0])
		}
		d, ok := upc.PhoneCall.(*tg.PhoneCallDiscarded)
		if !ok || d.ID != id || d.Duration != 5 || !d.Video || !d.NeedRating {
			t.Fatalf("phoneCallDiscarded %+v", upc.PhoneCall)
		}
		if _, ok := d.Reason.(*tg.PhoneCallDiscardReasonHangup); !ok {
			t.Fatalf("reason %T", d.Reason)
		}
		nm, ok := ups.Updates[1].(*tg.UpdateNewMessage)
		if !ok || nm.Pts != pts0+1 || nm.PtsCount != 1 {
			t.Fatalf("updates[1] %+v", ups.Updates[1])
		}
		ms, ok := nm.Message.(*tg.MessageService)
		if !ok {
			t.Fatalf("message %T", nm.Message)
		}
		act, ok := ms.Action.(*tg.MessageActionPhoneCall)
		if !ok || act.CallID != id || act.Duration != 5 || !act.Video {
			t.Fatalf("action %+v", ms.Action)
		}
		if _, ok := act.Reason.(*tg.PhoneCallDiscardReasonHangup); !ok {
			t.Fatalf("action reason %T", act.Reason)
		}
		for _, p := range srv.sentSince(mark) {
			if p.session == me {
				t.Fatalf("the caller's own discard result was pushed back to it (seq %d)", p.seq)
			}
		}
		if pts, _, seq, _ := srv.State(); pts != pts0+1 || seq != seq0+1 {
			t.Fatalf("server state pts %d seq %d after discard", pts, seq)
		}
		info, _ := srv.Call(id)
		if info.State != StateDiscarded || info.DiscardedBy != BySelf || info.Reason != "hangup" ||
			info.Duration != 5 || info.ConnectionID != 4242 || !info.Video {
			t.Fatalf("server view %+v", info)
		}
		if n := srv.Count("phone.discardCall"); n == 0 {
			t.Fatal("discardCall not counted")
		}
	})

	t.Run("errors", func(t *testing.T) {
		_, ended := incomingActiveCall(t, srv, c, peer, false)
		if _, err := discard(ended, &tg.PhoneCallDiscardReasonHangup{}, 1, false); err != nil {
			t.Fatal(err)
		}
		elsewhere, err := srv.IncomingCall(peer, false)
		if err != nil {
			t.Fatal(err)
		}
		req := waitCall[*tg.PhoneCallRequested](t, c, elsewhere)
		if err := srv.AcceptedElsewhere(elsewhere); err != nil {
			t.Fatal(err)
		}
		if d := waitCall[*tg.PhoneCallDiscarded](t, c, elsewhere); d.Reason != nil {
			t.Fatalf("accepted elsewhere pushed reason %T, want none", d.Reason)
		}
		tests := []struct {
			name string
			in   tg.InputPhoneCall
			want string
		}{
			{"already discarded by us", ended, "CALL_ALREADY_DECLINED"},
			{"unknown", tg.InputPhoneCall{ID: 1, AccessHash: 2}, "CALL_PEER_INVALID"},
			{"wrong access hash", tg.InputPhoneCall{ID: ended.ID, AccessHash: ended.AccessHash + 1}, "CALL_PEER_INVALID"},
			{"accepted elsewhere", tg.InputPhoneCall{ID: req.ID, AccessHash: req.AccessHash}, "CALL_ALREADY_ACCEPTED"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := discard(tt.in, &tg.PhoneCallDiscardReasonBusy{}, 0, false)
				if !tgerr.Is(err, tt.want) {
					t.Fatalf("got %v, want %s", err, tt.want)
				}
			})
		}
	})

	t.Run("injected failures", func(t *testing.T) {
		tests := []struct {
			err  *tgerr.Error
			code int
		}{
			{tgerr.New(500, "CALL_OCCUPY_FAILED"), 500},
			{tgerr.New(420, "FLOOD_WAIT_3"), 420},
		}
		for _, tt := range tests {
			t.Run(tt.err.Type, func(t *testing.T) {
				id, in := incomingActiveCall(t, srv, c, peer, false)
				srv.FailRPC("phone.discardCall", tt.err, 2)
				for i := 0; i < 2; i++ {
					_, err := discard(in, &tg.PhoneCallDiscardReasonHangup{}, 1, false)
					rpcErr, ok := tgerr.As(err)
					if !ok || rpcErr.Code != tt.code || rpcErr.Type != tt.err.Type {
						t.Fatalf("try %d: %v, want %d %s", i, err, tt.code, tt.err.Type)
					}
					if d, ok := tgerr.AsFloodWait(err); tt.code == 420 && (!ok || d != 3*time.Second) {
						t.Fatalf("flood wait %v %v, want 3s", d, ok)
					}
				}
				if info, _ := srv.Call(id); info.State != StateActive {
					t.Fatalf("a failed discard changed the call: %+v", info)
				}
				if _, err := discard(in, &tg.PhoneCallDiscardReasonHangup{}, 1, false); err != nil {
					t.Fatalf("third try: %v", err)
				}
			})
		}
	})

	t.Run("peer hangup", func(t *testing.T) {
		id, _ := incomingActiveCall(t, srv, c, peer, false)
		sharedClock.Advance(3 * time.Second)
		pts0, _, _, _ := srv.State()
		if err := srv.PeerHangup(id, &tg.PhoneCallDiscardReasonHangup{}); err != nil {
			t.Fatal(err)
		}
		d := waitCall[*tg.PhoneCallDiscarded](t, c, id)
		if d.Duration != 3 {
			t.Fatalf("duration %d, want 3", d.Duration)
		}
		if pts, _, _, _ := srv.State(); pts != pts0+1 {
			t.Fatalf("peer hangup did not add the service message: pts %d -> %d", pts0, pts)
		}
		if err := srv.PeerHangup(id, &tg.PhoneCallDiscardReasonHangup{}); err == nil {
			t.Fatal("second PeerHangup succeeded")
		}
	})
}

func TestHoldRPC(t *testing.T) {
	srv := sharedServer(t)
	peer := srv.AddPeer("judy")
	c := startClient(t, srv, sharedStore)
	ctx := testCtx(t)
	id, in := incomingActiveCall(t, srv, c, peer, false)

	n := srv.Count("phone.discardCall")
	release := srv.HoldRPC("phone.discardCall")
	done := make(chan error, 1)
	go func() {
		_, err := c.api.PhoneDiscardCall(context.Background(), &tg.PhoneDiscardCallRequest{
			Peer: in, Reason: &tg.PhoneCallDiscardReasonHangup{},
		})
		done <- err
	}()
	if err := srv.WaitCount(ctx, "phone.discardCall", n+1); err != nil {
		t.Fatalf("held request never arrived: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("held request answered before release: %v", err)
	default:
	}
	if info, _ := srv.Call(id); info.State != StateActive {
		t.Fatalf("held request executed before release: %+v", info)
	}
	if h := srv.Held("phone.discardCall"); h != 1 {
		t.Fatalf("Held = %d while one request waits, want 1", h)
	}
	// The peer hangs up meanwhile; the held discard then finds the call
	// ended.
	if err := srv.PeerHangup(id, &tg.PhoneCallDiscardReasonHangup{}); err != nil {
		t.Fatal(err)
	}
	release()
	release() // idempotent
	select {
	case err := <-done:
		if !tgerr.Is(err, "CALL_PEER_INVALID") {
			t.Fatalf("released discard: %v, want CALL_PEER_INVALID", err)
		}
	case <-ctx.Done():
		t.Fatal("released request not answered")
	}
	if h := srv.Held("phone.discardCall"); h != 0 {
		t.Fatalf("Held = %d after the release, want 0", h)
	}
	// Later requests are not held.
	if _, err := c.api.PhoneDiscardCall(ctx, &tg.PhoneDiscardCallRequest{Peer: in, Reason: &tg.PhoneCallDiscardReasonHangup{}}); !tgerr.Is(err, "CALL_PEER_INVALID") {
		t.Fatalf("after release: %v", err)
	}
}

// TestHoldCutRelease: a held request whose connection is cut is dropped
// on release; the client's retry on the new connection runs exactly once.
func TestHoldCutRelease(t *testing.T) {
	gotdrace.CutsConnections(t)
	srv := sharedServer(t)
	peer := srv.AddPeer("nina")
	c := startClient(t, srv, sharedStore)
	ctx := testCtx(t)
	id, in := incomingActiveCall(t, srv, c, peer, false)
	pts0, _, _, _ := srv.State()
	n, executed, dropped := srv.Count("phone.discardCall"), srv.Executed("phone.discardCall"), srv.Dropped("phone.discardCall")
	discard := func() chan error {
		done := make(chan error, 1)
		go func() {
			_, err := c.api.PhoneDiscardCall(ctx, &tg.PhoneDiscardCallRequest{Peer: in, Reason: &tg.PhoneCallDiscardReasonHangup{}})
			done <- err
		}()
		return done
	}

	release := srv.HoldRPC("phone.discardCall")
	first := discard()
	if err := srv.WaitCount(ctx, "phone.discardCall", n+1); err != nil {
		t.Fatal(err)
	}
	inits := srv.Count("help.getConfig")
	srv.Cut()
	if err := <-first; err == nil {
		t.Fatal("the request cut mid-flight succeeded")
	}
	if err := srv.WaitCount(ctx, "help.getConfig", inits+1); err != nil {
		t.Fatalf("no reconnect: %v", err)
	}
	// The first try may race the reconnect and fail before reaching the
	// server; retry until one arrives (and is held).
	var second chan error
	for try := 0; second == nil; try++ {
		done := discard()
		wctx, cancel := context.WithCancel(ctx)
		arrived := make(chan error, 1)
		go func() { arrived <- srv.WaitCount(wctx, "phone.discardCall", n+2) }()
		select {
		case err := <-arrived:
			if err != nil {
				t.Fatalf("retry never arrived: %v", err)
			}
			second = done
		case err := <-done:
			if try == 4 {
				t.Fatalf("retries keep failing: %v", err)
			}
		}
		cancel()
	}
	release()
	if err := <-second; err != nil {
		t.Fatalf("retried discard: %v", err)
	}
	if got := srv.Executed("phone.discardCall") - executed; got != 1 {
		t.Fatalf("executed %d times, want 1", got)
	}
	if got := srv.Dropped("phone.discardCall") - dropped; got != 1 {
		t.Fatalf("dropped %d, want 1", got)
	}
	if pts, _, _, _ := srv.State(); pts != pts0+1 {
		t.Fatalf("pts %d -> %d, want one service message", pts0, pts)
	}
	if info, _ := srv.Call(id); info.State != StateDiscarded || info.DiscardedBy != BySelf {
		t.Fatalf("call %+v", info)
	}
}
