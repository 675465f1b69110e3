package daemon

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/calld/calld"
)

// group owns every goroutine of a run: Go starts one, Wait waits for all
// of them (bounded). The first error of a goroutine that ends before the
// stop began fails the run: Failed is closed and the run's context ends.
type group struct {
	mu       sync.Mutex
	wg       sync.WaitGroup
	closed   bool
	stopping atomic.Bool
	err      error
	failed   chan struct{}
	cancel   func()
}

func newGroup(cancel func()) *group {
	return &group{failed: make(chan struct{}), cancel: cancel}
}

// Go runs f on a goroutine the group waits for; false (and f not run)
// once Wait has begun.
func (g *group) Go(f func() error) bool {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return false
	}
	g.wg.Add(1)
	g.mu.Unlock()
	go func() {
		defer g.wg.Done()
		if err := f(); err != nil && !g.stopping.Load() {
			g.mu.Lock()
			if g.err == nil {
				g.err = err
				close(g.failed)
			}
			g.mu.Unlock()
			g.cancel()
		}
	}()
	return true
}

// Failed is closed when a goroutine failed the run.
func (g *group) Failed() <-chan struct{} { return g.failed }

// Stopping marks the start of the stop: errors from now on are the stop's
// own (a cancelled context) and fail nothing.
func (g *group) Stopping() { g.stopping.Store(true) }

// errStopTimeout: Wait's deadline passed with goroutines still running.
var errStopTimeout = errors.New("parts still running at the stop deadline")

// Wait waits until every goroutine returned or the deadline passed, and
// returns the error that failed the run, if any.
func (g *group) Wait(deadline time.Time) (failure error, timedOut bool) {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	done := make(chan struct{})
	go func() {
		g.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		timedOut = true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err, timedOut
}

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
}

func (a *authState) set(v authValue, err error) {
	a.mu.Lock()
	a.v, a.err = v, err
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
// "ready: 2 live calls".
func (m *Main) statusLine() (state, line string) {
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
	_, line := m.statusLine()
	return calld.Errorf(calld.EUNAVAILABLE, "calld cannot tell yet whether its session is logged in: %s", line)
}

// withStatus adds the state and the status line to a calld.Status.
func (m *Main) withStatus(st calld.Status) calld.Status {
	st.State, st.Status = m.statusLine()
	return st
}
