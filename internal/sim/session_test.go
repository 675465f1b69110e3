package sim

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/auth"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/gotd/td/tgtest"

	"github.com/calld/calld/internal/gotdrace"
)

func TestCut(t *testing.T) {
	gotdrace.CutsConnections(t)
	srv := sharedServer(t)
	peer := srv.AddPeer("kate")
	c := startClient(t, srv, sharedStore)
	ctx := testCtx(t)
	before := sessionOf(t, srv, c)
	if srv.Conns() == 0 {
		t.Fatal("no connection tracked")
	}
	inits := srv.Count("help.getConfig")

	srv.Cut()

	// The new connection starts with initConnection(help.getConfig).
	if err := srv.WaitCount(ctx, "help.getConfig", inits+1); err != nil {
		t.Fatalf("client did not reconnect: %v", err)
	}

	// gotd reconnects on its own with a new MTProto session on the same
	// auth key. A request racing the reconnect may fail; the next works.
	var err error
	for i := 0; i < 5; i++ {
		if _, err = c.api.UpdatesGetState(ctx); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("no request succeeded after Cut: %v", err)
	}
	after := sessionOf(t, srv, c)
	if after == before {
		t.Fatal("same MTProto session after Cut")
	}
	// Pushes reach the new connection.
	c.drain()
	pts := srv.SendMessage(peer, "after cut")
	c.next(t, func(u tg.UpdatesClass) bool {
		ups, ok := u.(*tg.Updates)
		if !ok {
			return false
		}
		for _, x := range ups.Updates {
			if nm, ok := x.(*tg.UpdateNewMessage); ok && nm.Pts == pts {
				return true
			}
		}
		return false
	})
}

// codeAuth answers the login flow with a fixed code.
type codeAuth struct {
	code, password string
}

func (a codeAuth) Phone(context.Context) (string, error)    { return SelfPhone, nil }
func (a codeAuth) Password(context.Context) (string, error) { return a.password, nil }
func (a codeAuth) AcceptTermsOfService(context.Context, tg.HelpTermsOfService) error {
	return nil
}
func (a codeAuth) SignUp(context.Context) (auth.UserInfo, error) {
	return auth.UserInfo{}, auth.ErrPasswordNotProvided
}
func (a codeAuth) Code(context.Context, *tg.AuthSentCode) (string, error) { return a.code, nil }

func TestLoginFlow(t *testing.T) {
	srv, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(context.Background(), "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	// One client (one handshake) for every case: each case ends logged out.
	c := startClient(t, srv, &session.StorageMemory{})
	ctx := testCtx(t)

	tests := []struct {
		name     string
		password string // the account's
		code     string // typed
		typed    string // password typed
		wantErr  func(error) bool
	}{
		{"code only", "", LoginCode, "", nil},
		{"code and 2FA", "hunter2", LoginCode, "hunter2", nil},
		{"wrong code", "", "00000", "", func(err error) bool { return tgerr.Is(err, "PHONE_CODE_INVALID") }},
		{"wrong password", "hunter2", LoginCode, "hunter3", func(err error) bool { return errors.Is(err, auth.ErrPasswordInvalid) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.SetPassword(tt.password)
			if _, err := c.api.UpdatesGetState(ctx); !tgerr.Is(err, "AUTH_KEY_UNREGISTERED") {
				t.Fatalf("before login: %v, want AUTH_KEY_UNREGISTERED", err)
			}
			flow := auth.NewFlow(codeAuth{code: tt.code, password: tt.typed}, auth.SendCodeOptions{})
			err := flow.Run(ctx, c.client.Auth())
			if tt.wantErr != nil {
				if !tt.wantErr(err) {
					t.Fatalf("login: unexpected error %v", err)
				}
				if _, err := c.api.UpdatesGetState(ctx); !tgerr.Is(err, "AUTH_KEY_UNREGISTERED") {
					t.Fatalf("after failed login: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("login: %v", err)
			}
			st, err := c.client.Auth().Status(ctx)
			if err != nil || !st.Authorized || st.User.ID != SelfID {
				t.Fatalf("status %+v %v", st, err)
			}
			if _, err := c.api.UpdatesGetState(ctx); err != nil {
				t.Fatalf("after login: %v", err)
			}
			if _, err := c.api.AuthLogOut(ctx); err != nil {
				t.Fatalf("auth.logOut: %v", err)
			}
			if _, err := c.api.UpdatesGetState(ctx); !tgerr.Is(err, "AUTH_KEY_UNREGISTERED") {
				t.Fatalf("after logout: %v, want AUTH_KEY_UNREGISTERED", err)
			}
		})
	}
}

func (s *Server) setNoAck(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.noAck = on
}

// TestResendIdempotent: without acks gotd re-sends a request under the same
// msg_id; the server executes it once and answers once.
func TestResendIdempotent(t *testing.T) {
	srv := sharedServer(t)
	peer := srv.AddPeer("leo")
	c := startClient(t, srv, sharedStore, func(o *telegram.Options) {
		o.RetryInterval = 100 * time.Millisecond
		o.MaxRetries = 100
	})
	ctx := testCtx(t)
	id, in := incomingActiveCall(t, srv, c, peer, false)
	pts0, _, seq0, _ := srv.State()
	n := srv.Count("phone.discardCall")

	srv.setNoAck(true)
	defer srv.setNoAck(false)
	release := srv.HoldRPC("phone.discardCall")
	done := make(chan error, 1)
	go func() {
		_, err := c.api.PhoneDiscardCall(ctx, &tg.PhoneDiscardCallRequest{Peer: in, Reason: &tg.PhoneCallDiscardReasonHangup{}})
		done <- err
	}()
	if err := srv.WaitCount(ctx, "phone.discardCall", n+1); err != nil {
		t.Fatal(err)
	}
	// Wait until gotd has re-sent the held request at least twice.
	for {
		srv.mu.Lock()
		resends, ch := srv.state.resends, srv.state.changed
		srv.mu.Unlock()
		if resends >= 2 {
			break
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatal("gotd never re-sent the unacknowledged request")
		}
	}
	release()
	if err := <-done; err != nil {
		t.Fatalf("discardCall: %v", err)
	}
	if got := srv.Count("phone.discardCall"); got != n+1 {
		t.Fatalf("discardCall recorded %d times, want 1", got-n)
	}
	if pts, _, seq, _ := srv.State(); pts != pts0+1 || seq != seq0+1 {
		t.Fatalf("discard executed more than once: pts %d->%d seq %d->%d", pts0, pts, seq0, seq)
	}
	if info, _ := srv.Call(id); info.State != StateDiscarded {
		t.Fatalf("call %+v", info)
	}
}

// TestTwoSessions: pushes reach every session of the account; the result
// of one session's discardCall is pushed to the other one only.
func TestTwoSessions(t *testing.T) {
	srv := sharedServer(t)
	peer := srv.AddPeer("mia")
	a := startClient(t, srv, sharedStore)
	b := startClient(t, srv, sharedStore)
	ctx := testCtx(t)
	sa, sb := sessionOf(t, srv, a), sessionOf(t, srv, b)
	if sa == sb {
		t.Fatal("two clients share a session")
	}

	id, err := srv.IncomingCall(peer, false)
	if err != nil {
		t.Fatal(err)
	}
	req := waitCall[*tg.PhoneCallRequested](t, a, id)
	waitCall[*tg.PhoneCallRequested](t, b, id)

	mark := srv.sentMark()
	res, err := a.api.PhoneDiscardCall(ctx, &tg.PhoneDiscardCallRequest{
		Peer: tg.InputPhoneCall{ID: req.ID, AccessHash: req.AccessHash}, Reason: &tg.PhoneCallDiscardReasonBusy{},
	})
	if err != nil {
		t.Fatal(err)
	}
	seq := res.(*tg.Updates).Seq
	got := waitCall[*tg.PhoneCallDiscarded](t, b, id)
	if _, ok := got.Reason.(*tg.PhoneCallDiscardReasonBusy); !ok {
		t.Fatalf("other session got reason %T", got.Reason)
	}
	var toA, toB int
	for _, p := range srv.sentSince(mark) {
		if p.seq != seq {
			continue
		}
		switch p.session {
		case sa:
			toA++
		case sb:
			toB++
		}
	}
	if toA != 0 || toB != 1 {
		t.Fatalf("container seq %d sent %d times to the caller, %d to the other session", seq, toA, toB)
	}
}

// TestServiceMessages: MTProto service messages (gotd sends none to
// tgtest, whose messages need no ack, but other clients do) are taken
// silently, not answered as unknown RPCs.
func TestServiceMessages(t *testing.T) {
	srv, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		id   uint32
		want error
	}{
		{"msgs_ack", 0x62d6b459, nil},
		{"msg_resend_req", 0x7d861a08, nil},
		{"unknown constructor", 0x01020304, tgerr.New(400, "INPUT_CONSTRUCTOR_INVALID")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bin.Buffer
			b.PutID(tt.id)
			b.PutVectorHeader(0)
			err := srv.onMessage(nil, &tgtest.Request{Buf: &b, RequestCtx: context.Background()})
			if tt.want == nil && err != nil || tt.want != nil && !tgerr.Is(err, tt.want.(*tgerr.Error).Type) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.state.service != 2 || len(srv.state.records) != 0 {
		t.Fatalf("service %d records %d", srv.state.service, len(srv.state.records))
	}
}
