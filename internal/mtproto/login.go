package mtproto

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gotd/td/telegram/auth"
	"github.com/gotd/td/tg"

	"github.com/calld/calld/internal/logging"
	"github.com/calld/calld/internal/mtproto/middleware"
)

// LoginAnswers supplies what a login asks for. The control socket implements
// it (each method blocks until `calld login` posts the answer); nothing here
// reads a terminal.
type LoginAnswers interface {
	Phone(ctx context.Context) (string, error)
	Code(ctx context.Context, sent *tg.AuthSentCode) (string, error)
	// Password is asked only when the account has two-step verification.
	Password(ctx context.Context) (string, error)
}

// Login logs the account in with gotd's auth flow (auth.sendCode,
// auth.signIn, and the 2FA password check when needed) unless it is already
// authorized. Sign-up of a new account is not supported. Errors are typed
// as the RPCs return them: middleware.ErrPhoneNumberInvalid,
// ErrPhoneCodeInvalid, ErrPasswordInvalid, ... On success it returns the
// user id the session is logged in as.
func (c *Client) Login(ctx context.Context, answers LoginAnswers) (selfID int64, err error) {
	if answers == nil {
		return 0, errors.New("login: no answers provider")
	}
	a := &loginAuth{answers: answers, c: c}
	flow := auth.NewFlow(a, auth.SendCodeOptions{})
	err = c.client.Auth().IfNecessary(ctx, flow)
	// A wrong 2FA password leaves the session waiting for the password:
	// ask again when the answers can hear why.
	for errors.Is(err, auth.ErrPasswordInvalid) {
		r, ok := answers.(PasswordRejecter)
		if !ok {
			break
		}
		r.PasswordRejected(&middleware.Error{Kind: middleware.ErrPasswordInvalid, Err: err})
		var pwd string
		if pwd, err = a.Password(ctx); err != nil {
			break
		}
		_, err = c.client.Auth().Password(ctx, pwd)
	}
	if err != nil {
		if errors.Is(err, auth.ErrPasswordInvalid) {
			// gotd replaces PASSWORD_HASH_INVALID with its own error.
			err = &middleware.Error{Kind: middleware.ErrPasswordInvalid, Err: err}
		}
		c.log.Warn().Str(logging.FieldEvent, logging.EventMTProtoLogin).Str(logging.FieldPhone, logging.MaskPhone(a.phone)).
			AnErr(logging.FieldErr, err).Msg("login failed")
		return 0, fmt.Errorf("login: %w", err)
	}
	ok, self, err := c.Authorized(ctx)
	if err != nil {
		return 0, fmt.Errorf("login: %w", err)
	}
	if !ok {
		return 0, fmt.Errorf("login: %w: still not authorized after the login flow", middleware.ErrUnauthorized)
	}
	c.log.Info().Str(logging.FieldEvent, logging.EventMTProtoLogin).Str(logging.FieldPhone, logging.MaskPhone(a.phone)).
		Int64(logging.FieldSelfID, self).Msg("logged in")
	return self, nil
}

// Authorized reports whether the session is logged in, and as whom.
func (c *Client) Authorized(ctx context.Context) (ok bool, selfID int64, err error) {
	st, err := c.client.Auth().Status(ctx)
	if err != nil {
		return false, 0, fmt.Errorf("auth status: %w", err)
	}
	if !st.Authorized || st.User == nil {
		return false, 0, nil
	}
	return true, st.User.ID, nil
}

// PasswordRejecter is optionally implemented by LoginAnswers: Login then
// tells it that a 2FA password was wrong (the error matches
// middleware.ErrPasswordInvalid) and asks Password again, instead of failing.
type PasswordRejecter interface {
	PasswordRejected(err error)
}

// loginAuth adapts LoginAnswers to gotd's auth.UserAuthenticator.
type loginAuth struct {
	answers LoginAnswers
	c       *Client
	phone   string
}

func (a *loginAuth) Phone(ctx context.Context) (string, error) {
	p, err := a.answers.Phone(ctx)
	if err != nil {
		return "", err
	}
	p = strings.TrimSpace(p)
	if p == "" {
		return "", fmt.Errorf("%w: empty phone number", middleware.ErrPhoneNumberInvalid)
	}
	a.phone = p
	a.c.log.Info().Str(logging.FieldEvent, logging.EventMTProtoLogin).Str(logging.FieldPhone, logging.MaskPhone(p)).Msg("sending login code")
	return p, nil
}

func (a *loginAuth) Code(ctx context.Context, sent *tg.AuthSentCode) (string, error) {
	code, err := a.answers.Code(ctx, sent)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(code), nil
}

func (a *loginAuth) Password(ctx context.Context) (string, error) {
	a.c.log.Info().Str(logging.FieldEvent, logging.EventMTProtoLogin).Str(logging.FieldPhone, logging.MaskPhone(a.phone)).Msg("2FA password needed")
	return a.answers.Password(ctx)
}

func (a *loginAuth) AcceptTermsOfService(context.Context, tg.HelpTermsOfService) error {
	return errors.New("sign up is not supported: the phone number has no Telegram account")
}

func (a *loginAuth) SignUp(context.Context) (auth.UserInfo, error) {
	return auth.UserInfo{}, errors.New("sign up is not supported: the phone number has no Telegram account")
}
