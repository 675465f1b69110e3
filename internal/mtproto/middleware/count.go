package middleware

import (
	"context"
	"errors"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"
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
