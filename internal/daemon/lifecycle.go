package daemon

import (
	"errors"
	"fmt"
	"sync"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/mtproto/middleware"
)

// errStopTimeout: the stop's deadline passed with parts still running.
var errStopTimeout = errors.New("parts still running at the stop deadline")

// authValue is what the daemon knows of the session's authorization.
type authValue int

const (
	authUnknown authValue = iota // a session is stored; Telegram has not answered (yet)
	authNo                       // no session, or Telegram says it is not logged in
	authYes                      // logged in
)

// authState is the authorization as last checked, and the check's error.
type authState struct {
	mu  sync.Mutex
	v   authValue
	err error
	// gate lets the manager's RPCs and the pushed updates through only
	// while the session is confirmed logged in as the state file's
	// account (authYes): not the session of another account a login
	// brought, before it is logged out again (acceptAccount).
	gate middleware.Gate
}

func (a *authState) set(v authValue, err error) {
	a.mu.Lock()
	a.v, a.err = v, err
	a.gate.Set(v == authYes)
	a.mu.Unlock()
}

func (a *authState) get() (authValue, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.v, a.err
}

// The states of calld.Status.State.
const (
	StateConnecting  = "connecting"    // Telegram not reached (yet)
	StateUnknown     = "unknown"       // reached, the authorization check has not answered
	StateNotLoggedIn = "not_logged_in" // run calld login
	StateStarting    = "starting"      // logged in, restoring the calls
	StateReady       = "ready"         // logged in, tracking calls
)

// statusLine is what calld is doing, for STATUS= and /v1/status: its
// state and a line such as "connecting to DC 2 (149.154.167.50:443):
// dial tcp ...: connection refused", "not logged in: run calld login" or
// "ready: 2 live calls", followed by " (reload refused: …)" while the
// last reload was refused.
func (m *Main) statusLine() (state, line string) {
	state, line = m.stateLine()
	if e := m.reloadError(); e != "" {
		line += " (reload refused: " + e + ")"
	}
	return state, line
}

// reloadError is why the last reload was refused ("" if it was not).
func (m *Main) reloadError() string {
	e, _ := m.reloadErr.Load().(string)
	return e
}

// stateLine is statusLine without the reload's outcome.
func (m *Main) stateLine() (state, line string) {
	a, aerr := m.auth.get()
	// Telegram is reached once the client runs runTelegram (the
	// connection is up: gotd reports it only a little later) and until a
	// logged-in connection drops.
	if !m.client.Connected() && (!m.reached.Load() || a == authYes) {
		addr, err := m.client.Dialing()
		line = fmt.Sprintf("connecting to DC %d", m.dc())
		if addr != "" {
			line += " (" + addr + ")"
		}
		if err != nil {
			line += ": " + err.Error()
		}
		return StateConnecting, line
	}
	switch a {
	case authNo:
		return StateNotLoggedIn, "not logged in: run calld login"
	case authUnknown:
		if aerr != nil {
			return StateUnknown, "authorization unknown (checking again): " + aerr.Error()
		}
		return StateUnknown, "checking the authorization"
	}
	select {
	case <-m.manager.Ready():
	default:
		return StateStarting, "logged in: restoring calls"
	}
	st, _ := m.manager.Status(m.runCtx)
	return StateReady, fmt.Sprintf("ready: %d live calls (connected to DC %d, pts=%d seq=%d)",
		st.Calls.Live, m.dc(), st.Updates.Pts, st.Updates.Seq)
}

// callsAllowed is the gate of the call routes: 401 while not logged in,
// 503 while the authorization is not known (Telegram not reached, or the
// check failed: never taken for "not logged in").
func (m *Main) callsAllowed() error {
	a, _ := m.auth.get()
	switch a {
	case authYes:
		return nil
	case authNo:
		return errUnauthorized
	}
	_, line := m.stateLine()
	return calld.Errorf(calld.EUNAVAILABLE, "calld cannot tell yet whether its session is logged in: %s", line)
}

// withStatus adds the state and the status line to a calld.Status.
func (m *Main) withStatus(st calld.Status) calld.Status {
	st.State, st.Status = m.statusLine()
	st.ReloadError = m.reloadError()
	st.Account = m.Config.Telegram.Account
	return st
}
