package middleware

import (
	"context"
	"errors"
	"fmt"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/mtproto/callkey"
)

// Sentinel errors. An RPC error returned through mtproto.Client.API matches
// one of these with errors.Is when its Telegram type is known, and errors.As
// still reaches the original *tgerr.Error (see [TypedErrors]). Exported are
// those another package matches on; the others only decide [APIErrorCode]
// and the retry here.
var (
	// errCallAlreadyAccepted: CALL_ALREADY_ACCEPTED (400), another device of
	// the account accepted the call. Terminal, no retry.
	errCallAlreadyAccepted = errors.New("call already accepted")
	// ErrCallAlreadyDeclined: CALL_ALREADY_DECLINED (400). On discardCall it
	// means the call is already over: treat as success.
	ErrCallAlreadyDeclined = errors.New("call already declined")
	// errCallPeerInvalid: CALL_PEER_INVALID (400), unknown or ended call.
	errCallPeerInvalid = errors.New("call peer invalid")
	// ErrCallOccupyFailed: CALL_OCCUPY_FAILED (500). Retried by [Retry]; seen
	// by callers only once the retry budget is spent.
	ErrCallOccupyFailed = errors.New("call occupy failed")
	// ErrFloodWait: FLOOD_WAIT_X (420) longer than what the retry budget
	// had left.
	ErrFloodWait = errors.New("flood wait")
	// ErrUnauthorized: a 401 (AUTH_KEY_UNREGISTERED, SESSION_REVOKED,
	// AUTH_KEY_INVALID, USER_DEACTIVATED, SESSION_EXPIRED, ...) other than
	// SESSION_PASSWORD_NEEDED: the account has no valid logged-in session.
	ErrUnauthorized = errors.New("not authorized")
	// ErrPhoneNumberInvalid: PHONE_NUMBER_INVALID (400) during login.
	ErrPhoneNumberInvalid = errors.New("phone number invalid")
	// ErrPhoneCodeInvalid: PHONE_CODE_INVALID (400) during login.
	ErrPhoneCodeInvalid = errors.New("phone code invalid")
	// errPhoneCodeExpired: PHONE_CODE_EXPIRED (400) during login.
	errPhoneCodeExpired = errors.New("phone code expired")
	// errPasswordNeeded: SESSION_PASSWORD_NEEDED (401) during login: the
	// account has two-step verification.
	errPasswordNeeded = errors.New("2FA password needed")
	// ErrPasswordInvalid: PASSWORD_HASH_INVALID (400) during login.
	ErrPasswordInvalid = errors.New("2FA password invalid")

	// errUnavailable: the RPC could not reach Telegram (network error, not
	// connected, client stopped). Retried by [Retry] within its budget.
	errUnavailable = errors.New("telegram unavailable")
	// ErrRetryBudget: [Retry] gave up; the error also wraps the last attempt's
	// error.
	ErrRetryBudget = errors.New("retry budget exhausted")
	// errClosed: the Client's Run has returned (Retry.Stop is closed).
	errClosed = errors.New("mtproto client closed")
	// ErrUpdatesSink: the RPC succeeded but the UpdatesSink refused its
	// Updates result; the result itself was still decoded.
	ErrUpdatesSink = errors.New("updates sink failed")
)

// rpcKinds maps Telegram error types to sentinels. 401s are handled by code.
var rpcKinds = map[string]error{
	"CALL_ALREADY_ACCEPTED":   errCallAlreadyAccepted,
	"CALL_ALREADY_DECLINED":   ErrCallAlreadyDeclined,
	"CALL_PEER_INVALID":       errCallPeerInvalid,
	"CALL_OCCUPY_FAILED":      ErrCallOccupyFailed,
	tgerr.ErrFloodWait:        ErrFloodWait,
	"PHONE_NUMBER_INVALID":    ErrPhoneNumberInvalid,
	"PHONE_CODE_INVALID":      ErrPhoneCodeInvalid,
	"PHONE_CODE_EXPIRED":      errPhoneCodeExpired,
	"SESSION_PASSWORD_NEEDED": errPasswordNeeded,
	"PASSWORD_HASH_INVALID":   ErrPasswordInvalid,
}

// Error is an RPC failure classified by Kind (one of the sentinels above).
// Error() is the original message; Unwrap gives both Kind and the original
// error, so errors.Is(err, Kind) and errors.As(err, **tgerr.Error) both work.
type Error struct {
	Kind error
	Err  error
}

func (e *Error) Error() string   { return e.Err.Error() }
func (e *Error) Unwrap() []error { return []error{e.Kind, e.Err} }

// TypedErrors is the typed-errors middleware: every RPC error is passed
// through typed.
func TypedErrors(next tg.Invoker) telegram.InvokeFunc {
	return func(ctx context.Context, input bin.Encoder, output bin.Decoder) error {
		return typed(next.Invoke(ctx, input, output))
	}
}

// typed classifies err: when its chain holds a *tgerr.Error of a known type
// (or any 401), or is a network failure, the result also matches the
// corresponding sentinel with errors.Is. Context errors, already typed errors
// and unknown RPC errors are returned unchanged. typed(nil) is nil.
func typed(err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	if rpcErr, ok := tgerr.As(err); ok {
		if kind, ok := rpcKinds[rpcErr.Type]; ok {
			return &Error{Kind: kind, Err: err}
		}
		if rpcErr.Code == 401 {
			return &Error{Kind: ErrUnauthorized, Err: err}
		}
		return err
	}
	if errors.Is(err, ErrRetryBudget) {
		// A network failure that outlasted the budget.
		return &Error{Kind: errUnavailable, Err: err}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var ce *calld.Error
	if isLocal(err) || errors.As(err, &ce) {
		return err
	}
	return &Error{Kind: errUnavailable, Err: err}
}

// isLocal reports errors made by calld itself that say nothing about the
// network: these middlewares', the updates sink's and the call key
// exchange's (package callkey, a leaf, hence its import here).
func isLocal(err error) bool {
	for _, e := range []error{errUnavailable, errClosed, callkey.ErrKeyMismatch, callkey.ErrBadDH, ErrUpdatesSink} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// APIErrorCode maps err to the control API's error code and HTTP status
// (CONTRACT §3): Telegram's own type with 502 (e.g. "CALL_PEER_INVALID",
// "FLOOD_WAIT"), "unauthorized"/401 for any 401 RPC error, "unavailable"/503
// for network failures or a stopped client, "timeout"/504 for an expired
// deadline (an RPC that ran out of time), and a
// calld.Error's own code. Anything else is "internal"/500. nil gives "", 0.
func APIErrorCode(err error) (code string, httpStatus int) {
	if err == nil {
		return "", 0
	}
	if rpcErr, ok := tgerr.As(err); ok {
		if rpcErr.Code == 401 && rpcErr.Type != "SESSION_PASSWORD_NEEDED" {
			return calld.EUNAUTHORIZED, 401
		}
		if rpcErr.Type == "" {
			return fmt.Sprintf("RPC_ERROR_%d", rpcErr.Code), 502
		}
		return rpcErr.Type, 502
	}
	var ce *calld.Error
	if errors.As(err, &ce) {
		return ce.Code, statusOf(ce.Code)
	}
	switch {
	case errors.Is(err, ErrUnauthorized):
		return calld.EUNAUTHORIZED, 401
	case errors.Is(err, context.DeadlineExceeded):
		return calld.ETIMEOUT, 504
	case errors.Is(err, errUnavailable), errors.Is(err, errClosed), errors.Is(err, context.Canceled):
		return calld.EUNAVAILABLE, 503
	case errors.Is(err, ErrRetryBudget):
		return calld.EUNAVAILABLE, 503
	}
	return calld.EINTERNAL, 500
}

func statusOf(code string) int {
	switch code {
	case calld.EINVALID:
		return 400
	case calld.EUNAUTHORIZED:
		return 401
	case calld.EFORBIDDEN:
		return 403
	case calld.ENOTFOUND:
		return 404
	case calld.ECONFLICT:
		return 409
	case calld.EUNAVAILABLE:
		return 503
	case calld.ETIMEOUT:
		return 504
	}
	return 500
}

// NotLoggedIn reports whether err is a 401: ErrUnauthorized, or
// SESSION_PASSWORD_NEEDED (a login waiting for its two-step verification
// password). Telegram executed nothing of a request that got one.
func NotLoggedIn(err error) bool {
	if errors.Is(err, ErrUnauthorized) || errors.Is(err, errPasswordNeeded) {
		return true
	}
	rpcErr, ok := tgerr.As(err)
	return ok && rpcErr.Code == 401
}
