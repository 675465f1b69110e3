package middleware

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/gotd/td/clock"
	"github.com/gotd/td/tg"
)

// TestCountErrors: a failed RPC is counted once with its method and the
// control API's code for its error; a success and a cancellation by the
// caller are not counted.
func TestCountErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string // "" = not counted
	}{
		{"success", nil, ""},
		{"telegram type", rpcErr(400, "CALL_PEER_INVALID"), "phone.discardCall CALL_PEER_INVALID"},
		{"flood wait", rpcErr(420, "FLOOD_WAIT_30"), "phone.discardCall FLOOD_WAIT"},
		{"unauthorized", rpcErr(401, "AUTH_KEY_UNREGISTERED"), "phone.discardCall unauthorized"},
		{"deadline", context.DeadlineExceeded, "phone.discardCall timeout"},
		{"network", typed(errors.New("connection reset")), "phone.discardCall unavailable"},
		{"cancelled by the caller", fmt.Errorf("stop: %w", context.Canceled), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			mw := CountErrors(func(method, typ string) { got = append(got, method+" "+typ) })
			inv := mw.Handle(&scriptInvoker{script: []error{tc.err}, clk: clock.System})
			err := inv.Invoke(context.Background(), &tg.PhoneDiscardCallRequest{}, nil)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v passed through", err, tc.err)
			}
			switch {
			case tc.want == "" && len(got) != 0:
				t.Fatalf("counted %v, want nothing", got)
			case tc.want != "" && (len(got) != 1 || got[0] != tc.want):
				t.Fatalf("counted %v, want [%s]", got, tc.want)
			}
		})
	}
}

// TestUnauthorized: an RPC that ends with a 401 is reported once with its
// method and error; any other outcome is not.
func TestUnauthorized(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"success", nil, false},
		{"401", rpcErr(401, "AUTH_KEY_UNREGISTERED"), true},
		{"revoked, typed", typed(rpcErr(401, "SESSION_REVOKED")), true},
		{"2FA password needed", rpcErr(401, "SESSION_PASSWORD_NEEDED"), false},
		{"400", rpcErr(400, "CALL_PEER_INVALID"), false},
		{"network", typed(errors.New("connection reset")), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			mw := Unauthorized(func(method string, err error) { got = append(got, method+" "+err.Error()) })
			inv := mw.Handle(&scriptInvoker{script: []error{tc.err}, clk: clock.System})
			err := inv.Invoke(context.Background(), &tg.PhoneDiscardCallRequest{}, nil)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v passed through", err, tc.err)
			}
			if want := 0; tc.want {
				want = 1
				if len(got) != want || got[0] != "phone.discardCall "+tc.err.Error() {
					t.Fatalf("reported %q, want [phone.discardCall %v]", got, tc.err)
				}
			} else if len(got) != want {
				t.Fatalf("reported %q, want nothing", got)
			}
		})
	}
}
