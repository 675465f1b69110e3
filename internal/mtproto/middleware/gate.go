package middleware

import (
	"context"
	"strings"
	"sync/atomic"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

// Gate holds back the RPCs of a session that is not confirmed to be the
// account calld keeps: while it is closed, every RPC but a login's and
// the authorization check (Login) fails at once with a 401
// (ErrUnauthorized, type ErrGateClosed) without reaching Telegram. The
// zero Gate is closed; its methods are safe for concurrent use.
type Gate struct {
	open atomic.Bool
}

// ErrGateClosed is the type of the 401 a closed Gate answers.
const ErrGateClosed = "CALLD_SESSION_NOT_CONFIRMED"

// Set opens or closes g.
func (g *Gate) Set(open bool) { g.open.Store(open) }

// Open reports whether g is open.
func (g *Gate) Open() bool { return g.open.Load() }

// Login reports whether method (as CountErrors names it) is part of a
// login or its check, which pass a closed Gate: auth.*,
// account.getPassword, and users.getUsers (the check asks for the
// session's own user).
func Login(method string) bool {
	return strings.HasPrefix(method, "auth.") || method == "account.getPassword" || method == "users.getUsers"
}

// Middleware is g as a middleware: outermost, so that what it holds back
// is neither counted nor reported as Telegram's answer.
func (g *Gate) Middleware() telegram.Middleware {
	return telegram.MiddlewareFunc(func(next tg.Invoker) telegram.InvokeFunc {
		return func(ctx context.Context, input bin.Encoder, output bin.Decoder) error {
			if !g.open.Load() && !Login(methodName(input)) {
				return &Error{Kind: ErrUnauthorized, Err: tgerr.New(401, ErrGateClosed)}
			}
			return next.Invoke(ctx, input, output)
		}
	})
}
