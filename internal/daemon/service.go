package daemon

import (
	"context"
	"errors"
	"sync"

	"github.com/gotd/td/tg"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/mtproto"
	"github.com/calld/calld/internal/mtproto/middleware"
)

// service is the control API's view of the daemon: the manager's methods,
// refused while no account is logged in, plus the login steps.
type service struct{ m *Main }

var errUnauthorized = calld.Errorf(calld.EUNAUTHORIZED, "calld has no logged-in Telegram session: run `calld login`")

func (s service) authorized() error { return s.m.callsAllowed() }

// Status is the manager's, with "ready" meaning what READY=1 means: the
// daemon serves (and, once logged in, has restored its calls).
func (s service) Status(ctx context.Context) (calld.Status, error) {
	st, err := s.m.manager.Status(ctx)
	st = s.m.withStatus(st)
	select {
	case <-s.m.ready:
		st.Ready = true
	default:
		st.Ready = false
	}
	return st, err
}

func (s service) Calls(ctx context.Context, all bool) ([]calld.Call, error) {
	return s.m.manager.Calls(ctx, all)
}

func (s service) Call(ctx context.Context, id int64) (calld.Call, error) {
	return s.m.manager.Call(ctx, id)
}

func (s service) Journal(since uint64, fn func(ev calld.Event) error) error {
	return s.m.manager.Journal(since, fn)
}

func (s service) Discard(ctx context.Context, id int64, reason calld.Reason) (calld.Call, error) {
	if err := s.authorized(); err != nil {
		return calld.Call{}, err
	}
	return s.m.manager.Discard(ctx, id, reason)
}

func (s service) Place(ctx context.Context, peer string, video bool, protocol *calld.ProtocolOverride) (calld.Call, error) {
	if err := s.authorized(); err != nil {
		return calld.Call{}, err
	}
	return s.m.manager.PlaceWith(ctx, peer, video, protocol)
}

func (s service) Accept(ctx context.Context, id int64, protocol *calld.ProtocolOverride) (calld.Call, error) {
	if err := s.authorized(); err != nil {
		return calld.Call{}, err
	}
	return s.m.manager.AcceptWith(ctx, id, protocol)
}

func (s service) Media(ctx context.Context, id int64) (calld.Media, error) {
	if err := s.authorized(); err != nil {
		return calld.Media{}, err
	}
	return s.m.manager.Media(ctx, id)
}

func (s service) SetConnection(ctx context.Context, id, connectionID int64) (calld.Call, error) {
	if err := s.authorized(); err != nil {
		return calld.Call{}, err
	}
	return s.m.manager.SetConnection(ctx, id, connectionID)
}

// Login drives gotd's login flow one step per request: the flow runs on
// its own goroutine and waits on the answers the steps bring.
func (s service) Login(ctx context.Context, step calld.LoginStep) (calld.LoginState, error) {
	return s.m.login.step(ctx, s.m, step)
}

// login is the state of an interactive login in progress.
type login struct {
	mu      sync.Mutex
	running bool
	state   calld.LoginState
	phone   chan string
	code    chan string
	pass    chan string
	changed chan struct{} // closed and replaced whenever state changes
	err     error
}

func newLogin() *login {
	return &login{
		state:   calld.LoginState{State: calld.LoginPhoneNeeded},
		phone:   make(chan string),
		code:    make(chan string),
		pass:    make(chan string),
		changed: make(chan struct{}),
	}
}

func (l *login) set(st calld.LoginState) {
	l.mu.Lock()
	l.state = st
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

func (l *login) current() (calld.LoginState, chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state, l.changed
}

// answers implements mtproto.LoginAnswers from the channels.
type answers struct{ l *login }

func (a answers) Phone(ctx context.Context) (string, error) {
	a.l.set(calld.LoginState{State: calld.LoginPhoneNeeded})
	return recv(ctx, a.l.phone)
}

func (a answers) Code(ctx context.Context, sent *tg.AuthSentCode) (string, error) {
	a.l.set(calld.LoginState{State: calld.LoginCodeSent})
	return recv(ctx, a.l.code)
}

func (a answers) Password(ctx context.Context) (string, error) {
	a.l.set(calld.LoginState{State: calld.LoginPasswordNeeded})
	return recv(ctx, a.l.pass)
}

// PasswordRejected makes the password step that brought a wrong password
// fail with a 400 the CLI asks again on; the flow waits for the next one.
func (a answers) PasswordRejected(err error) {
	a.l.mu.Lock()
	a.l.err = err
	a.l.mu.Unlock()
	a.l.set(calld.LoginState{State: calld.LoginPasswordNeeded})
}

var (
	_ mtproto.LoginAnswers     = answers{}
	_ mtproto.PasswordRejecter = answers{}
)

func recv(ctx context.Context, ch chan string) (string, error) {
	select {
	case v := <-ch:
		return v, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// start runs the login flow on the work group unless it runs already.
func (l *login) start(m *Main) error {
	l.mu.Lock()
	if !l.running {
		l.running = true
		started := m.work.Go(func() error {
			err := m.client.Login(m.workCtx, answers{l})
			l.mu.Lock()
			l.running = false
			l.err = err
			l.mu.Unlock()
			if err == nil {
				// Login checked it just now; ask once more for the id.
				st := calld.LoginState{State: calld.LoginAuthorized}
				if ok, self, aerr := m.client.Authorized(m.workCtx); aerr == nil && ok {
					st.SelfID = self
				}
				l.set(st)
				m.loginSucceeded()
			} else {
				l.set(calld.LoginState{State: calld.LoginPhoneNeeded})
			}
			return nil
		})
		if !started {
			l.running = false
			l.mu.Unlock()
			return calld.Errorf(calld.EUNAVAILABLE, "calld is stopping")
		}
	}
	l.mu.Unlock()
	return nil
}

func (l *login) step(ctx context.Context, m *Main, step calld.LoginStep) (calld.LoginState, error) {
	if a, _ := m.auth.get(); a == authYes {
		st, err := m.manager.Status(ctx)
		return calld.LoginState{State: calld.LoginAuthorized, SelfID: st.Telegram.SelfID}, err
	}
	if err := l.start(m); err != nil {
		return calld.LoginState{}, err
	}
	var (
		ch   chan string
		val  string
		want string
	)
	switch {
	case step.Phone != "":
		ch, val, want = l.phone, step.Phone, calld.LoginPhoneNeeded
	case step.Code != "":
		ch, val, want = l.code, step.Code, calld.LoginCodeSent
	case step.Password != "":
		ch, val, want = l.pass, step.Password, calld.LoginPasswordNeeded
	default:
		cur, _ := l.current()
		return cur, nil
	}
	cur, _ := l.current()
	if cur.State != want {
		return cur, calld.Errorf(calld.EINVALID, "login is at step %q: that field is not expected now", cur.State)
	}
	// An error left from an earlier answer nobody waited for is stale.
	l.mu.Lock()
	l.err = nil
	l.mu.Unlock()
	select {
	case ch <- val:
	case <-ctx.Done():
		return calld.LoginState{}, ctx.Err()
	}
	// The flow took the answer: wait until it moves past this step or
	// fails (the state alone may not change: a failed flow starts over at
	// phone_needed).
	for {
		cur, changed := l.current()
		l.mu.Lock()
		failed := l.err != nil
		l.mu.Unlock()
		if cur.State != want || failed {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return calld.LoginState{}, ctx.Err()
		}
	}
	cur, _ = l.current()
	l.mu.Lock()
	err := l.err
	l.err = nil
	l.mu.Unlock()
	if errors.Is(err, middleware.ErrPasswordInvalid) {
		return cur, calld.Errorf(calld.EINVALID, "wrong two-step verification password: try again")
	}
	if err != nil {
		code, _ := middleware.APIErrorCode(err)
		return cur, calld.Errorf(code, "login failed: %v", err)
	}
	return cur, nil
}
