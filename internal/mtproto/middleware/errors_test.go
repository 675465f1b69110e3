package middleware

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/gotd/td/tgerr"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/mtproto/callkey"
)

func TestTypedAndAPIErrorCode(t *testing.T) {
	budget := func(err error) error {
		return fmt.Errorf("phone.discardCall: %w after 6 attempts: %w", ErrRetryBudget, err)
	}
	tests := []struct {
		name       string
		err        error
		wantIs     error // nil: Typed adds no sentinel
		wantType   string
		wantCode   string
		wantStatus int
	}{
		{"already accepted", rpcErr(400, "CALL_ALREADY_ACCEPTED"), errCallAlreadyAccepted, "CALL_ALREADY_ACCEPTED", "CALL_ALREADY_ACCEPTED", 502},
		{"already declined", rpcErr(400, "CALL_ALREADY_DECLINED"), ErrCallAlreadyDeclined, "CALL_ALREADY_DECLINED", "CALL_ALREADY_DECLINED", 502},
		{"peer invalid", rpcErr(400, "CALL_PEER_INVALID"), errCallPeerInvalid, "CALL_PEER_INVALID", "CALL_PEER_INVALID", 502},
		{"occupy failed after budget", budget(rpcErr(500, "CALL_OCCUPY_FAILED")), ErrCallOccupyFailed, "CALL_OCCUPY_FAILED", "CALL_OCCUPY_FAILED", 502},
		{"flood wait", budget(rpcErr(420, "FLOOD_WAIT_300")), ErrFloodWait, "FLOOD_WAIT", "FLOOD_WAIT", 502},
		{"auth key unregistered", rpcErr(401, "AUTH_KEY_UNREGISTERED"), ErrUnauthorized, "AUTH_KEY_UNREGISTERED", calld.EUNAUTHORIZED, 401},
		{"session revoked", rpcErr(401, "SESSION_REVOKED"), ErrUnauthorized, "SESSION_REVOKED", calld.EUNAUTHORIZED, 401},
		{"password needed", rpcErr(401, "SESSION_PASSWORD_NEEDED"), errPasswordNeeded, "SESSION_PASSWORD_NEEDED", "SESSION_PASSWORD_NEEDED", 502},
		{"phone code invalid", rpcErr(400, "PHONE_CODE_INVALID"), ErrPhoneCodeInvalid, "PHONE_CODE_INVALID", "PHONE_CODE_INVALID", 502},
		{"phone code expired", rpcErr(400, "PHONE_CODE_EXPIRED"), errPhoneCodeExpired, "PHONE_CODE_EXPIRED", "PHONE_CODE_EXPIRED", 502},
		{"password invalid", rpcErr(400, "PASSWORD_HASH_INVALID"), ErrPasswordInvalid, "PASSWORD_HASH_INVALID", "PASSWORD_HASH_INVALID", 502},
		{"phone number invalid", rpcErr(400, "PHONE_NUMBER_INVALID"), ErrPhoneNumberInvalid, "PHONE_NUMBER_INVALID", "PHONE_NUMBER_INVALID", 502},
		{"unknown rpc error", rpcErr(400, "PEER_ID_INVALID"), nil, "PEER_ID_INVALID", "PEER_ID_INVALID", 502},
		{"network", io.ErrUnexpectedEOF, errUnavailable, "", calld.EUNAVAILABLE, 503},
		{"network after budget", budget(io.EOF), errUnavailable, "", calld.EUNAVAILABLE, 503},
		{"client closed", fmt.Errorf("x: %w", errClosed), errClosed, "", calld.EUNAVAILABLE, 503},
		{"deadline", context.DeadlineExceeded, nil, "", calld.ETIMEOUT, 504},
		{"key mismatch", fmt.Errorf("phoneCall 1: %w", callkey.ErrKeyMismatch), callkey.ErrKeyMismatch, "", calld.EINTERNAL, 500},
		{"calld error", calld.Errorf(calld.ENOTFOUND, "no call 5"), nil, "", calld.ENOTFOUND, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := typed(tt.err)
			if err.Error() != tt.err.Error() {
				t.Errorf("Typed changed the message: %q -> %q", tt.err, err)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(typed(%v), %v) = false", tt.err, tt.wantIs)
			}
			for _, other := range []error{errCallAlreadyAccepted, errCallPeerInvalid, ErrCallOccupyFailed, ErrUnauthorized, errUnavailable} {
				if other != tt.wantIs && errors.Is(err, other) {
					t.Errorf("typed(%v) also matches %v", tt.err, other)
				}
			}
			if tt.wantType != "" {
				rpc, ok := tgerr.As(err)
				if !ok || rpc.Type != tt.wantType {
					t.Errorf("errors.As(*tgerr.Error) = %v, %v; want type %s", rpc, ok, tt.wantType)
				}
			}
			code, status := APIErrorCode(err)
			if code != tt.wantCode || status != tt.wantStatus {
				t.Errorf("APIErrorCode = %q, %d; want %q, %d", code, status, tt.wantCode, tt.wantStatus)
			}
		})
	}
	if typed(nil) != nil {
		t.Error("typed(nil) != nil")
	}
	if code, status := APIErrorCode(nil); code != "" || status != 0 {
		t.Errorf("APIErrorCode(nil) = %q, %d", code, status)
	}
}

// TestNotLoggedIn: every 401, typed or not, SESSION_PASSWORD_NEEDED
// included, and nothing else.
func TestNotLoggedIn(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{rpcErr(401, "AUTH_KEY_UNREGISTERED"), true},
		{typed(rpcErr(401, "SESSION_REVOKED")), true},
		{typed(rpcErr(401, "SESSION_PASSWORD_NEEDED")), true},
		{rpcErr(401, "SESSION_PASSWORD_NEEDED"), true},
		{typed(rpcErr(400, "CALL_PEER_INVALID")), false},
		{typed(errors.New("connection reset")), false},
		{nil, false},
	} {
		if got := NotLoggedIn(tc.err); got != tc.want {
			t.Errorf("NotLoggedIn(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
