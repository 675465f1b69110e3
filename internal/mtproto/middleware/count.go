package middleware

import (
	"context"
	"errors"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"

	"github.com/calld/calld"
)

// CountErrors is the outermost middleware: every RPC that fails after
// the retries is reported to count with its method (e.g.
// "phone.discardCall") and its type, the control API's code for it
// (APIErrorCode: Telegram's type such as "CALL_PEER_INVALID" or
// "FLOOD_WAIT", else "unavailable", "timeout", "unauthorized",
// "internal"). An RPC cancelled by its caller (the stop) is not a
// failure and is not counted.
func CountErrors(count func(method, typ string)) telegram.Middleware {
	return telegram.MiddlewareFunc(func(next tg.Invoker) telegram.InvokeFunc {
		return func(ctx context.Context, input bin.Encoder, output bin.Decoder) error {
			err := next.Invoke(ctx, input, output)
			if err != nil && !errors.Is(err, context.Canceled) {
				code, _ := APIErrorCode(err)
				count(methodName(input), code)
			}
			return err
		}
	})
}

// Unauthorized is a middleware outside TypedErrors: every RPC that ends
// with a 401 (APIErrorCode "unauthorized": the auth key is not logged
// in, was logged out or the session revoked; not SESSION_PASSWORD_NEEDED)
// is reported to f with its method, after the retries. f runs on the
// RPC's goroutine and must not block. An expected 401 is reported too
// (the authorization check of a session that is not logged in): f
// decides what it means.
func Unauthorized(f func(method string, err error)) telegram.Middleware {
	return telegram.MiddlewareFunc(func(next tg.Invoker) telegram.InvokeFunc {
		return func(ctx context.Context, input bin.Encoder, output bin.Decoder) error {
			err := next.Invoke(ctx, input, output)
			if code, _ := APIErrorCode(err); code == calld.EUNAUTHORIZED {
				f(methodName(input), err)
			}
			return err
		}
	})
}
