package daemon

import (
	"context"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/logging"
)

// A session that is logged in can stop being so while calld runs: the
// user logs it out or terminates it from another device, and from then on
// every RPC answers 401 and Telegram pushes nothing. runTelegram checks
// the authorization once, before it runs the manager; watchSession keeps
// following it while the manager runs.

// revocation is an RPC that answered 401.
type revocation struct {
	method string
	err    error
}

// unauthorized is the MTProto client's report of an RPC that answered
// 401 (mtproto.Config.Unauthorized). It never blocks: one report waits at
// most, and watchSession checks the session before it believes one.
func (m *Main) unauthorized(method string, err error) {
	select {
	case m.revoked <- revocation{method, err}:
	default:
	}
}

// watchSession runs beside the manager until ctx ends. When an RPC
// answered 401 and Telegram confirms that the session is not logged in,
// calld becomes "not logged in" (status, health, the login's questions
// from the phone on; the manager keeps its calls) and says so once; when a
// login through the control socket succeeds and Telegram confirms it,
// calld is logged in again and the manager fetches the difference, as
// after a reconnection. A report that the check does not confirm (an old
// one, or the check failing) changes nothing.
func (m *Main) watchSession(ctx context.Context) {
	for {
		var r revocation
		select {
		case <-ctx.Done():
			return
		case r = <-m.revoked:
		}
		if a, _ := m.auth.get(); a != authYes {
			continue
		}
		if ok, _, err := m.client.Authorized(ctx); ok || err != nil {
			continue
		}
		m.auth.set(authNo, nil)
		m.login.set(calld.LoginState{State: calld.LoginPhoneNeeded})
		m.manager.SetIdentity(false, 0, m.dc())
		m.log.Error().Str(logging.FieldEvent, logging.EventTelegramUnauthorized).Str(logging.FieldMethod, r.method).
			Str(logging.FieldErr, r.err.Error()).Msg("the Telegram session is no longer logged in (logged out or revoked elsewhere): run calld login")
		m.updateStatus()
		if !m.waitRelogin(ctx) {
			return
		}
	}
}

// waitRelogin waits until a login succeeded and Telegram says the session
// is logged in, then marks calld logged in and has the manager catch up.
// It returns false when ctx ends first.
func (m *Main) waitRelogin(ctx context.Context) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-m.relogin:
		}
		ok, self, err := m.client.Authorized(ctx)
		if !ok || err != nil {
			continue
		}
		m.auth.set(authYes, nil)
		m.manager.SetIdentity(true, self, m.dc())
		m.log.Info().Str(logging.FieldEvent, logging.EventTelegramAuthorized).Int64(logging.FieldSelfID, self).
			Msg("the Telegram session is logged in again: fetching what was missed")
		m.manager.Connected(ctx)
		m.updateStatus()
		return true
	}
}
