package sim

import (
	"context"
	"errors"
	"testing"

	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram/auth"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

func TestCut(t *testing.T) {
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
