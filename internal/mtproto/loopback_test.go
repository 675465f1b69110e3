package mtproto

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotd/td/session"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/rs/zerolog"

	"github.com/calld/calld/internal/gotdrace"
	"github.com/calld/calld/internal/logging"
	"github.com/calld/calld/internal/mtproto/callkey"
	"github.com/calld/calld/internal/mtproto/middleware"
	"github.com/calld/calld/internal/sim"
)

func storedKeyID(t testing.TB, st session.Storage) []byte {
	t.Helper()
	data, err := (&session.Loader{Storage: st}).Load(context.Background())
	if err != nil {
		t.Fatalf("load session: %v", err)
	}
	return data.AuthKeyID
}

// The client dials only the configured DC options, through a proxy here,
// while the sim advertises its real address in help.getConfig; after a cut
// it must come back through the proxy again.
func TestConnectCustomDCSurvivesAdvertisedList(t *testing.T) {
	gotdrace.CutsConnections(t)
	srv := sharedSim(t)
	proxy := newTCPProxy(t, srv.Addr())
	sink := newRecordSink()
	cfg := simConfig(t, srv, proxy.Addr())
	cfg.Session = warmStorage(t)
	cfg.Updates = sink
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runClient(t, c, srv)
	ctx := testCtx(t)

	sink.next(t, "Connected", func(e sinkEvent) bool { return e.connected })
	if !c.Connected() {
		t.Error("Connected() = false after the Connected event")
	}
	config, err := c.API().HelpGetConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	advertised := false
	for _, o := range config.DCOptions {
		if net.JoinHostPort(o.IPAddress, strconv.Itoa(o.Port)) == srv.Addr() {
			advertised = true
		}
	}
	if !advertised || srv.Addr() == proxy.Addr() {
		t.Fatalf("the sim should advertise its own address %s (not the proxy's): %+v", srv.Addr(), config.DCOptions)
	}
	if got := proxy.accepts.Load(); got != 1 {
		t.Fatalf("proxy accepts = %d, want 1", got)
	}

	srv.Cut()
	e := sink.next(t, "Disconnected", func(e sinkEvent) bool { return e.lost != nil || e.connected })
	if e.lost == nil {
		t.Fatal("Connected came before Disconnected")
	}
	sink.next(t, "Connected again", func(e sinkEvent) bool { return e.connected })
	if _, err := c.API().HelpGetConfig(ctx); err != nil {
		t.Fatalf("RPC after reconnect: %v", err)
	}
	if got := proxy.accepts.Load(); got != 2 {
		t.Fatalf("proxy accepts = %d after the cut, want 2 (the advertised address must not be dialed)", got)
	}
}

func TestSessionReuseNoNewAuthKey(t *testing.T) {
	gotdrace.CutsConnections(t)
	srv := sharedSim(t)
	st := warmStorage(t)
	before := storedKeyID(t, st)
	for i := range 2 {
		cfg := simConfig(t, srv, srv.Addr())
		cfg.Session = st
		sink := newRecordSink()
		cfg.Updates = sink
		var logs syncBuffer
		cfg.Log = zerolog.New(&logs)
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var self int64
		err = c.Run(testCtx(t), func(ctx context.Context) error {
			ok, id, err := c.Authorized(ctx)
			if err != nil || !ok {
				return errors.Join(err, errors.New("not authorized"))
			}
			self = id
			// Stop only once connected, so the shutdown is a disconnection.
			select {
			case e := <-sink.ch:
				if !e.connected {
					return errors.New("first connection event is not Connected")
				}
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		if self != srv.SelfID() {
			t.Errorf("client %d: self = %d, want %d", i, self, srv.SelfID())
		}
		if after := storedKeyID(t, st); !bytes.Equal(after, before) {
			t.Fatalf("client %d made a new auth key: %x -> %x", i, before, after)
		}
		// Run's own shutdown is reported, after the connection.
		var seen []string
		for len(sink.ch) > 0 {
			switch e := <-sink.ch; {
			case e.connected:
				seen = append(seen, "connected")
			case e.lost != nil:
				seen = append(seen, "disconnected: "+e.lost.Error())
			}
		}
		if got := strings.Join(seen, ", "); got != "disconnected: connection closed" {
			t.Errorf("client %d: connection events %q", i, got)
		}
		// The callback returned while ctx was live (as the daemon stops:
		// its work first): that disconnection is the stop, not a warning.
		if got := disconnectLevels(t, logs.String()); got != "info" {
			t.Errorf("client %d: telegram.disconnected logged at %q, want info:\n%s", i, got, logs.String())
		}
	}
	// Control: a client with an empty storage does make a (different) key.
	fresh := new(session.StorageMemory)
	cfg := simConfig(t, srv, srv.Addr())
	cfg.Session = fresh
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(testCtx(t), func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(storedKeyID(t, fresh), before) {
		t.Fatal("a fresh storage got the same auth key id")
	}
}

func TestPushedUpdatesReachSink(t *testing.T) {
	sink := newRecordSink()
	_, srv := newSimClient(t, sink, nil)
	sink.next(t, "Connected", func(e sinkEvent) bool { return e.connected })
	peer := srv.AddPeer("push_peer")
	pts := srv.SendMessage(peer, "hello")
	e := sink.next(t, "pushed message", func(e sinkEvent) bool {
		u, ok := e.updates.(*tg.Updates)
		if !ok {
			return false
		}
		for _, x := range u.Updates {
			if m, ok := x.(*tg.UpdateNewMessage); ok && m.Pts == pts {
				return true
			}
		}
		return false
	})
	if e.own {
		t.Error("a pushed update was marked own")
	}
}

// incomingCall makes the sim call the account and returns the pushed
// phoneCallRequested.
func incomingCall(t testing.TB, srv *sim.Server, sink *recordSink, from int64, video bool) *tg.PhoneCallRequested {
	t.Helper()
	id, err := srv.IncomingCall(from, video)
	if err != nil {
		t.Fatal(err)
	}
	e := sink.next(t, "phoneCallRequested", func(e sinkEvent) bool {
		pc, ok := phoneCallOf[*tg.PhoneCallRequested](e)
		return ok && pc.ID == id
	})
	pc, _ := phoneCallOf[*tg.PhoneCallRequested](e)
	return pc
}

func TestRPCUpdatesReachSinkBeforeReturn(t *testing.T) {
	sink := newRecordSink()
	var returned, sawOwn atomic.Bool
	var sawBeforeReturn atomic.Bool
	sink.onOwn = func(u tg.UpdatesClass) {
		sawOwn.Store(true)
		sawBeforeReturn.Store(!returned.Load())
	}
	c, srv := newSimClient(t, sink, nil)
	ctx := testCtx(t)
	peer := srv.AddPeer("discard_peer")
	req := incomingCall(t, srv, sink, peer, true)
	ptsBefore, _, _, _ := srv.State()

	u, err := c.DiscardCall(ctx, Discard{
		Video:  true,
		Peer:   tg.InputPhoneCall{ID: req.ID, AccessHash: req.AccessHash},
		Reason: "busy",
	})
	returned.Store(true)
	if err != nil {
		t.Fatal(err)
	}
	if !sawOwn.Load() || !sawBeforeReturn.Load() {
		t.Fatalf("sink got the result: %v, before the RPC returned: %v", sawOwn.Load(), sawBeforeReturn.Load())
	}
	e := sink.next(t, "own Updates", func(e sinkEvent) bool { return e.own })
	if e.updates != u {
		t.Error("the sink got a different Updates than the caller")
	}
	d, ok := phoneCallOf[*tg.PhoneCallDiscarded](e)
	if !ok || d.ID != req.ID {
		t.Fatalf("own Updates lack phoneCallDiscarded for %d: %#v", req.ID, e.updates)
	}
	if pts, _, _, _ := srv.State(); pts != ptsBefore+1 {
		t.Errorf("server pts %d -> %d, want +1", ptsBefore, pts)
	}
	info, _ := srv.Call(req.ID)
	if info.State != sim.StateDiscarded || info.Reason != "busy" || !info.Video || info.DiscardedBy != sim.BySelf {
		t.Errorf("server call = %+v", info)
	}

	// Discarding it again (we discarded it): CALL_ALREADY_DECLINED, as
	// Telegram answers a repeated discard (CONTRACT §5.1), typed.
	_, err = c.DiscardCall(ctx, Discard{Peer: tg.InputPhoneCall{ID: req.ID, AccessHash: req.AccessHash}, Reason: "hangup"})
	if !errors.Is(err, middleware.ErrCallAlreadyDeclined) {
		t.Fatalf("second discard: err = %v, want middleware.ErrCallAlreadyDeclined", err)
	}
	if code, status := middleware.APIErrorCode(err); code != "CALL_ALREADY_DECLINED" || status != 502 {
		t.Errorf("middleware.APIErrorCode = %s %d", code, status)
	}
}

func TestOutgoingCallKeyExchange(t *testing.T) {
	sink := newRecordSink()
	c, srv := newSimClient(t, sink, nil)
	ctx := testCtx(t)
	peer := srv.AddPeer("callee")
	srv.SetPeerBehaviour(peer, sim.Answer)
	user := &tg.InputUser{UserID: peer, AccessHash: srv.AccessHash(peer)}

	for i := range 2 { // the second call reuses the DH config (dhConfigNotModified)
		out, err := c.PrepareCall(ctx)
		if err != nil {
			t.Fatalf("call %d: prepare: %v", i, err)
		}
		if i == 1 {
			// Our side of the exchange survives the state file.
			b, err := json.Marshal(out.Saved())
			if err != nil {
				t.Fatal(err)
			}
			var saved callkey.CallDH
			if err := json.Unmarshal(b, &saved); err != nil {
				t.Fatal(err)
			}
			if out, err = callkey.RestoreOutgoing(saved); err != nil {
				t.Fatal(err)
			}
		}
		res, err := c.RequestCall(ctx, user, out, int32(1000+i), i == 1, tg.PhoneCallProtocol{})
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if _, ok := res.PhoneCall.(*tg.PhoneCallWaiting); !ok || out.ID() == 0 {
			t.Fatalf("call %d: requestCall result %T, id %d", i, res.PhoneCall, out.ID())
		}
		e := sink.next(t, "phoneCallAccepted", func(e sinkEvent) bool {
			pc, ok := phoneCallOf[*tg.PhoneCallAccepted](e)
			return ok && pc.ID == out.ID()
		})
		acc, _ := phoneCallOf[*tg.PhoneCallAccepted](e)
		key, fp, res2, err := c.ConfirmCall(ctx, out, acc)
		if err != nil {
			t.Fatalf("call %d: confirm: %v", i, err)
		}
		if _, ok := res2.PhoneCall.(*tg.PhoneCall); !ok {
			t.Fatalf("call %d: confirmCall result %T", i, res2.PhoneCall)
		}
		peerKey, peerFP, ok := srv.CallKey(out.ID())
		if !ok || !bytes.Equal(peerKey, key) || peerFP != fp || len(key) != 256 {
			t.Fatalf("call %d: keys differ: ours fp %d, peer fp %d (known %v)", i, fp, peerFP, ok)
		}
		if info, _ := srv.Call(out.ID()); info.State != sim.StateActive {
			t.Errorf("call %d: server state %s, want active", i, info.State)
		}
	}
	var versions []int
	for _, r := range srv.Requests() {
		if req, ok := r.Req.(*tg.MessagesGetDhConfigRequest); ok {
			versions = append(versions, req.Version)
		}
	}
	if len(versions) < 2 || versions[len(versions)-1] != sim.DHVersion {
		t.Errorf("getDhConfig versions sent = %v, want the last one %d", versions, sim.DHVersion)
	}
}

func TestIncomingCallKeyExchange(t *testing.T) {
	sink := newRecordSink()
	c, srv := newSimClient(t, sink, nil)
	ctx := testCtx(t)
	peer := srv.AddPeer("caller")
	req := incomingCall(t, srv, sink, peer, false)
	peerCall := tg.InputPhoneCall{ID: req.ID, AccessHash: req.AccessHash}
	if err := c.ReceivedCall(ctx, peerCall); err != nil {
		t.Fatal(err)
	}
	in, err := c.PrepareAccept(ctx, peerCall, req.GAHash)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.SendAccept(ctx, in, tg.PhoneCallProtocol{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := res.PhoneCall.(*tg.PhoneCallWaiting); !ok {
		t.Fatalf("acceptCall result %T", res.PhoneCall)
	}
	e := sink.next(t, "phoneCall", func(e sinkEvent) bool {
		pc, ok := phoneCallOf[*tg.PhoneCall](e)
		return ok && pc.ID == req.ID
	})
	pc, _ := phoneCallOf[*tg.PhoneCall](e)
	key, fp, err := callkey.CompleteIncoming(in, pc)
	if err != nil {
		t.Fatal(err)
	}
	peerKey, peerFP, ok := srv.CallKey(req.ID)
	if !ok || !bytes.Equal(peerKey, key) || peerFP != fp {
		t.Fatalf("keys differ: ours fp %d, peer fp %d (known %v)", fp, peerFP, ok)
	}
	// The same phoneCall with another call's g_a_hash is refused.
	saved := in.Saved()
	saved.GAHash = bytes.Repeat([]byte{1}, 32)
	other, err := callkey.RestoreIncoming(saved)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := callkey.CompleteIncoming(other, pc); !errors.Is(err, callkey.ErrKeyMismatch) {
		t.Fatalf("wrong g_a_hash: err = %v, want ErrKeyMismatch", err)
	}
}

// A connection cut while phone.discardCall is held by the server: the
// in-flight request fails inside gotd, Retry sends it again on the new
// connection, and the server applies the discard exactly once.
func TestCutMidRPCIsRetried(t *testing.T) {
	gotdrace.CutsConnections(t)
	sink := newRecordSink()
	clk := newFakeClock()
	clk.from = "mtproto.(*Client).DiscardCall" // not gotd's own Self after the reconnection
	c, srv := newSimClient(t, sink, func(cfg *Config) { cfg.Clock = clk })
	ctx := testCtx(t)
	sink.next(t, "Connected", func(e sinkEvent) bool { return e.connected })
	peer := srv.AddPeer("cut_peer")
	req := incomingCall(t, srv, sink, peer, false)
	ptsBefore, _, _, _ := srv.State()
	countBefore := srv.Count("phone.discardCall")

	release := srv.HoldRPC("phone.discardCall")
	defer release()
	type result struct {
		u   tg.UpdatesClass
		err error
	}
	done := make(chan result, 1)
	go func() {
		u, err := c.DiscardCall(ctx, Discard{Peer: tg.InputPhoneCall{ID: req.ID, AccessHash: req.AccessHash}, Reason: "busy"})
		done <- result{u, err}
	}()
	if err := srv.WaitCount(ctx, "phone.discardCall", countBefore+1); err != nil {
		t.Fatal(err)
	}
	srv.Cut()
	// The in-flight request fails inside gotd; Retry backs off 1 s (fake
	// time), then waits for the new connection and sends it again.
	if d := <-clk.waits; d != time.Second {
		t.Fatalf("first retry wait = %s, want 1s", d)
	}
	clk.Advance(time.Second)
	if err := srv.WaitCount(ctx, "phone.discardCall", countBefore+2); err != nil {
		t.Fatalf("no retry after the cut: %v", err)
	}
	release()
	r := <-done

	if got := srv.Count("phone.discardCall") - countBefore; got != 2 {
		t.Errorf("discardCall requests = %d, want 2 (original + one retry)", got)
	}
	// Any further timer can only be the budget bound of the wait for the
	// connection (60 s - 1 s), never a second backoff.
	for len(clk.waits) > 0 {
		if d := <-clk.waits; d != 59*time.Second {
			t.Errorf("unexpected extra wait %s", d)
		}
	}
	// Whichever of the two held requests ran first did the discard; the
	// other one found the call discarded by us. The caller sees success
	// or CALL_ALREADY_DECLINED (CONTRACT §5.1: the first discard's
	// success), never anything else.
	if r.err != nil && !errors.Is(r.err, middleware.ErrCallAlreadyDeclined) {
		t.Fatalf("discard after cut: %v", r.err)
	}
	if pts, _, _, _ := srv.State(); pts != ptsBefore+1 {
		t.Errorf("server pts %d -> %d: the discard took effect %d times, want once", ptsBefore, pts, pts-ptsBefore)
	}
	info, _ := srv.Call(req.ID)
	if info.State != sim.StateDiscarded || info.Reason != "busy" || info.DiscardedBy != sim.BySelf {
		t.Errorf("server call = %+v", info)
	}
	t.Logf("result after cut: updates=%T err=%v", r.u, r.err)
}

func TestRetryAgainstSim(t *testing.T) {
	clk := newInstantClock()
	c, srv := newSimClient(t, nil, func(cfg *Config) { cfg.Clock = clk; cfg.RetryBudget = 5 * time.Second })
	ctx := testCtx(t)
	peer := srv.AddPeer("retry_peer")
	id, err := srv.IncomingCall(peer, false)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := srv.Call(id)
	call := tg.InputPhoneCall{ID: id, AccessHash: info.AccessHash}

	tests := []struct {
		name      string
		method    string
		fail      *tgerr.Error
		times     int
		do        func() error
		wantWaits []time.Duration
		wantIs    error
		wantCalls int
	}{
		{"5xx then success", "phone.receivedCall", tgerr.New(500, "CALL_OCCUPY_FAILED"), 2,
			func() error { return c.ReceivedCall(ctx, call) }, secs(1, 2), nil, 3},
		{"flood wait then success", "help.getConfig", tgerr.New(420, "FLOOD_WAIT_3"), 1,
			func() error { _, err := c.CallConfig(ctx); return err }, secs(3), nil, 2},
		{"5xx past the budget", "phone.receivedCall", tgerr.New(500, "CALL_OCCUPY_FAILED"), 10,
			func() error { return c.ReceivedCall(ctx, call) }, secs(1, 2), middleware.ErrCallOccupyFailed, 3},
		{"flood wait past the budget", "phone.receivedCall", tgerr.New(420, "FLOOD_WAIT_30"), 1,
			func() error { return c.ReceivedCall(ctx, call) }, nil, middleware.ErrFloodWait, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.FailRPC(tt.method, tt.fail, tt.times)
			defer srv.FailRPC(tt.method, nil, 0)
			before := srv.Count(tt.method)
			waitsBefore := len(clk.Waits())
			err := tt.do()
			if tt.wantIs == nil && err != nil {
				t.Fatal(err)
			}
			if tt.wantIs != nil {
				if !errors.Is(err, tt.wantIs) || !errors.Is(err, middleware.ErrRetryBudget) {
					t.Fatalf("err = %v, want %v and middleware.ErrRetryBudget", err, tt.wantIs)
				}
				if code, status := middleware.APIErrorCode(err); code != tt.fail.Type || status != 502 {
					t.Errorf("middleware.APIErrorCode = %s %d, want %s 502", code, status, tt.fail.Type)
				}
			}
			if got := srv.Count(tt.method) - before; got != tt.wantCalls {
				t.Errorf("%s requests = %d, want %d", tt.method, got, tt.wantCalls)
			}
			if got := clk.Waits()[waitsBefore:]; !equalDurations(got, tt.wantWaits) {
				t.Errorf("waits = %v, want %v", got, tt.wantWaits)
			}
		})
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCallConfig(t *testing.T) {
	c, _ := newSimClient(t, nil, nil)
	cc, err := c.CallConfig(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if cc.Receive != testReceiveTimeout || cc.Ring != testRingTimeout {
		t.Fatalf("CallConfig = %s, %s; want %s, %s", cc.Receive, cc.Ring, testReceiveTimeout, testRingTimeout)
	}
}

// disconnectLevels lists the levels of the telegram.disconnected lines in
// logs, comma-separated.
func disconnectLevels(t testing.TB, logs string) string {
	t.Helper()
	var levels []string
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["event"] == logging.EventTelegramDisconnected {
			levels = append(levels, fmt.Sprint(m["level"]))
		}
	}
	return strings.Join(levels, ",")
}
