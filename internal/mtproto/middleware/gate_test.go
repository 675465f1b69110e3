package middleware

import (
	"context"
	"errors"
	"testing"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/clock"
	"github.com/gotd/td/tg"
)

// TestGate: a closed gate answers every RPC but a login's and its check
// with a 401 of its own, without invoking the next; an open one passes
// everything.
func TestGate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		open  bool
		input bin.Encoder
		pass  bool
	}{
		{"closed: discard", false, &tg.PhoneDiscardCallRequest{}, false},
		{"closed: getDifference", false, &tg.UpdatesGetDifferenceRequest{}, false},
		{"closed: getState", false, &tg.UpdatesGetStateRequest{}, false},
		{"closed: sendCode", false, &tg.AuthSendCodeRequest{}, true},
		{"closed: signIn", false, &tg.AuthSignInRequest{}, true},
		{"closed: logOut", false, &tg.AuthLogOutRequest{}, true},
		{"closed: getPassword", false, &tg.AccountGetPasswordRequest{}, true},
		{"closed: the check (getUsers)", false, &tg.UsersGetUsersRequest{}, true},
		{"open: discard", true, &tg.PhoneDiscardCallRequest{}, true},
		{"open: getDifference", true, &tg.UpdatesGetDifferenceRequest{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var g Gate
			g.Set(tc.open)
			next := &scriptInvoker{clk: clock.System}
			err := g.Middleware().Handle(next).Invoke(context.Background(), tc.input, nil)
			if tc.pass {
				if err != nil || next.calls() != 1 {
					t.Fatalf("passed %d times, error %v; want passed once", next.calls(), err)
				}
				return
			}
			if next.calls() != 0 || !errors.Is(err, ErrUnauthorized) || !NotLoggedIn(err) {
				t.Fatalf("passed %d times, error %v; want held back with a 401", next.calls(), err)
			}
			if code, _ := APIErrorCode(err); code != "unauthorized" {
				t.Fatalf("held back with code %q", code)
			}
		})
	}
	var g Gate
	if g.Open() {
		t.Fatal("the zero Gate is open")
	}
}
