package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/logging"
	"github.com/calld/calld/internal/store"
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
// calld becomes "not logged in" (the login back at its first question,
// status, health; the manager keeps its calls) and says so once; when a
// login through the control socket succeeds and Telegram confirms it,
// calld is logged in again and the manager catches up (Manager.Resync).
// A report the check does not confirm changes nothing. Reports and
// logins from before it started (the start-up's own check, the first
// login) are dropped: runTelegram checked the session after them.
func (m *Main) watchSession(ctx context.Context) {
	drain(m.revoked)
	drain(m.relogin)
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
		ok, _, done := m.checkSession(ctx, nil)
		switch {
		case done:
			return
		case ok:
			continue
		}
		m.login.set(calld.LoginState{State: calld.LoginPhoneNeeded})
		m.manager.SetIdentity(false, 0, m.dc())
		m.auth.set(authNo, nil)
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
		ok, self, done := m.checkSession(ctx, nil)
		if done {
			return false
		}
		if !ok {
			continue
		}
		if err := m.acceptAccount(ctx, self); err != nil {
			// Another account's, logged in without the control
			// socket's flow (which refuses it before this), or the
			// store failed: not logged in.
			if !isOtherAccount(err) {
				m.log.Error().Str(logging.FieldEvent, logging.EventStoreError).Str(logging.FieldErr, err.Error()).
					Msg("recording the state file's account failed: still not logged in")
			}
			continue
		}
		m.manager.SetIdentity(true, self, m.dc())
		m.auth.set(authYes, nil)
		m.log.Info().Str(logging.FieldEvent, logging.EventTelegramAuthorized).Int64(logging.FieldSelfID, self).
			Msg("the Telegram session is logged in again: fetching what was missed")
		m.manager.Resync()
		m.updateStatus()
		return true
	}
}

// checkSession asks Telegram whether the session is logged in, again
// after a backoff on the daemon's clock (1 s doubling to 30 s) while the
// check fails: an error is never taken for "not logged in". failed, when
// not nil, hears of each failure first. done is set when ctx ended first.
func (m *Main) checkSession(ctx context.Context, failed func(error)) (ok bool, self int64, done bool) {
	wait := time.Second
	for {
		ok, self, err := m.client.Authorized(ctx)
		if ctx.Err() != nil {
			return false, 0, true
		}
		if err == nil {
			return ok, self, false
		}
		if failed != nil {
			failed(err)
		}
		t := m.Clock.Timer(wait) // armed before the line that says so
		m.log.Warn().Str(logging.FieldEvent, logging.EventLog).Str(logging.FieldErr, err.Error()).
			Dur(logging.FieldRetryIn, wait).Msg("authorization check failed: checking again")
		select {
		case <-ctx.Done():
			t.Stop()
			return false, 0, true
		case <-t.C():
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// drain empties a capacity-1 signal channel.
func drain[T any](ch chan T) {
	select {
	case <-ch:
	default:
	}
}

// The state file holds one account's calls, journal and updates state
// (pts, qts, seq), and its session. The first time calld sees the session
// logged in, it records the account in the file; from then on a session
// logged in as another account is logged out again (acceptAccount):
// applying one account's updates state to another's would fetch the
// wrong difference, and its live calls would be discarded as a stranger.

// otherAccount is the error of a session logged in as user self with a
// state file that holds account's; out says whether it was logged out.
func otherAccount(account, self int64, out bool) error {
	then := "who was logged out again"
	if !out {
		then = "whose session could not be logged out (calld keeps it from acting: log in again to retry)"
	}
	return calld.Errorf(calld.ECONFLICT, "this state file holds the calls and updates state of Telegram user %d, not of user %d, %s: log in as user %d, or give the other account a state file of its own", account, self, then, account)
}

// isOtherAccount tells otherAccount's errors from the store's.
func isOtherAccount(err error) bool { return calld.ErrorCode(err) == calld.ECONFLICT }

// acceptAccount is the check of a session found logged in as user self.
// It records self as the state file's account if the file has none yet.
// If the file holds another account's, it logs the session out at
// Telegram, says so, and returns otherAccount. Until a session is
// accepted, its RPCs but a login's do not reach Telegram and its pushed
// updates are dropped (authState.gate).
func (m *Main) acceptAccount(ctx context.Context, self int64) error {
	account, err := m.fileAccount(self)
	if err != nil {
		return fmt.Errorf("state file account: %w", err)
	}
	if account == self {
		return nil
	}
	ev := m.log.Warn()
	msg := "a session of another account than the state file's: logged out again"
	_, lerr := m.client.API().AuthLogOut(ctx)
	refused := otherAccount(account, self, lerr == nil)
	errText := refused.Error()
	if lerr != nil {
		ev, msg = m.log.Error(), "a session of another account than the state file's: not logged in, and logging it out failed"
		errText += " (auth.logOut: " + lerr.Error() + ")"
	}
	ev.Str(logging.FieldEvent, logging.EventMTProtoLogin).Int64(logging.FieldSelfID, self).Str(logging.FieldErr, errText).Msg(msg)
	return refused
}

// fileAccount returns the state file's account. A file that has none yet
// gets one (written once: later calls only read): the account its calls
// were made by (a file from before calld recorded it), else self.
func (m *Main) fileAccount(self int64) (int64, error) {
	var account int64
	err := m.db.View(func(tx *store.Tx) error {
		var err error
		account, err = tx.Account()
		return err
	})
	if err != nil || account != 0 {
		return account, err
	}
	err = m.db.Update(func(tx *store.Tx) error {
		var err error
		if account, err = tx.Account(); err != nil || account != 0 {
			return err // recorded meanwhile
		}
		if account, err = callsAccount(tx); err != nil {
			return err
		}
		if account == 0 {
			account = self
		}
		return tx.SetAccount(account)
	})
	return account, err
}

// callsAccount is the user the file's calls were made by: of a call's
// admin (caller) and participant (callee), the one that is not its peer;
// 0 if no call says.
func callsAccount(tx *store.Tx) (int64, error) {
	var account int64
	errFound := errors.New("found")
	err := tx.ForEachCall(false, func(id int64, b []byte) error {
		var c calld.Call
		if err := json.Unmarshal(b, &c); err != nil {
			return fmt.Errorf("call %d: %w", id, err)
		}
		switch {
		case c.AdminID != 0 && c.AdminID != c.PeerID:
			account = c.AdminID
		case c.ParticipantID != 0 && c.ParticipantID != c.PeerID:
			account = c.ParticipantID
		default:
			return nil
		}
		return errFound
	})
	if err != nil && !errors.Is(err, errFound) {
		return 0, err
	}
	return account, nil
}
