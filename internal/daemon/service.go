package daemon

import (
	"context"
	"errors"
	"fmt"
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

// login is an interactive login: gotd's flow runs on the work group and
// asks one question at a time (flow.ask); a step hands it the answer to
// the question it names, with a channel for the answer's outcome, and
// waits for that outcome. The flow settles an answer once it is past it:
// nil when it asks its next question or logs in, the error when the
// answer is refused (a wrong password) or the flow fails.
//
// One answer is in progress at a time, from the step that reserves the
// login for it (begin) until the flow settles it or the step gives it
// back untaken: another step with an answer meanwhile is refused with a
// conflict and changes nothing. No step waits on a flow that is gone: an
// answer the flow never takes (it ended before asking) gets the flow's
// end as its outcome.
type login struct {
	mu    sync.Mutex
	flow  *flow            // the running flow; nil when none runs
	busy  bool             // an answer is in progress
	state calld.LoginState // the question asked, or authorized
}

// answer is one step's answer to the question state.
type answer struct {
	state   string
	value   string
	outcome chan error // capacity 1: the flow never waits on a step
}

var (
	errStopping = calld.Errorf(calld.EUNAVAILABLE, "calld is stopping")
	errBusy     = calld.Errorf(calld.ECONFLICT, "another login step is being answered: ask for the state again once it is")
)

func newLogin() *login {
	return &login{state: calld.LoginState{State: calld.LoginPhoneNeeded}}
}

func (l *login) set(st calld.LoginState) {
	l.mu.Lock()
	l.state = st
	l.mu.Unlock()
}

func (l *login) current() calld.LoginState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state
}

// release ends the answer in progress.
func (l *login) release() {
	l.mu.Lock()
	l.busy = false
	l.mu.Unlock()
}

// begin runs a flow on the work group unless one runs already and, for a
// step with an answer (ok), reserves the login for it: refused while
// another answer is in progress (errBusy) or when the login is at another
// question than the answer's (errStep). It returns the running flow.
func (l *login) begin(m *Main, a answer, ok bool) (*flow, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.flow == nil {
		f := &flow{l: l, answers: make(chan answer), done: make(chan struct{})}
		if !m.work.Go(func() error { f.run(m); return nil }) {
			return nil, errStopping
		}
		l.flow = f
	}
	switch {
	case !ok:
		return l.flow, nil
	case l.busy:
		return nil, errBusy
	case l.state.State != a.state:
		return nil, errWrongStep(l.state.State)
	}
	l.busy = true
	return l.flow, nil
}

// answerOf is the answer a step carries, with the question it names; ok
// is false for a step that only asks for the state.
func answerOf(step calld.LoginStep) (a answer, ok bool) {
	a.outcome = make(chan error, 1)
	switch {
	case step.Phone != "":
		a.state, a.value = calld.LoginPhoneNeeded, step.Phone
	case step.Code != "":
		a.state, a.value = calld.LoginCodeSent, step.Code
	case step.Password != "":
		a.state, a.value = calld.LoginPasswordNeeded, step.Password
	default:
		return a, false
	}
	return a, true
}

// step answers the flow's question with the one field step sets (none:
// the current state), and returns the state the answer led to.
func (l *login) step(ctx context.Context, m *Main, step calld.LoginStep) (calld.LoginState, error) {
	if a, _ := m.auth.get(); a == authYes {
		st, err := m.manager.Status(ctx)
		return calld.LoginState{State: calld.LoginAuthorized, SelfID: st.Telegram.SelfID}, err
	}
	a, ok := answerOf(step)
	f, err := l.begin(m, a, ok)
	if err != nil || !ok {
		return l.current(), err
	}
	out, err := f.hand(ctx, m, a)
	if err != nil {
		return calld.LoginState{}, err
	}
	cur := l.current()
	switch {
	case out == nil:
		return cur, nil
	case errors.Is(out, errStep):
		return cur, out
	case errors.Is(out, middleware.ErrPasswordInvalid):
		return cur, calld.Errorf(calld.EINVALID, "wrong two-step verification password: try again")
	case isOtherAccount(out):
		return cur, out // the refusal says it all (acceptAccount)
	}
	code, _ := middleware.APIErrorCode(out)
	return cur, calld.Errorf(code, "login failed: %v", out)
}

// errStep marks an answer to a question the flow is not asking.
var errStep = errors.New("not the login's current step")

func errWrongStep(state string) error {
	return fmt.Errorf("%w: %w", calld.Errorf(calld.EINVALID, "login is at step %q: that field is not expected now", state), errStep)
}

// flow is one run of gotd's login flow; it implements mtproto.LoginAnswers
// and mtproto.PasswordRejecter. Its methods and run are called on the
// flow's goroutine only; err is read once done is closed.
type flow struct {
	l       *login
	answers chan answer   // to the flow while it asks (unbuffered)
	done    chan struct{} // closed when run has returned
	err     error         // how the flow ended
	pending chan<- error  // the outcome of the answer last taken, until settled
}

var (
	_ mtproto.LoginAnswers     = (*flow)(nil)
	_ mtproto.PasswordRejecter = (*flow)(nil)
)

// hand gives the flow a's answer, reserved by begin, and returns its
// outcome (out), or err when the step ends first: its ctx ends, or calld
// stops. An answer the flow does not take is given back (release); one
// it took, the flow settles and releases even when the step is gone. A
// flow that ends before it takes the answer is the answer's outcome: its
// error, or nil when it found the session logged in.
func (f *flow) hand(ctx context.Context, m *Main, a answer) (out, err error) {
	select {
	case f.answers <- a:
	case <-f.done:
		f.l.release()
		if m.workCtx.Err() != nil {
			return nil, errStopping
		}
		return f.err, nil
	case <-ctx.Done():
		f.l.release()
		return nil, ctx.Err()
	case <-m.workCtx.Done():
		f.l.release()
		return nil, errStopping
	}
	select {
	case out = <-a.outcome:
		return out, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// run runs the flow to its end and settles the last answer with it.
func (f *flow) run(m *Main) {
	self, err := m.client.Login(m.workCtx, f)
	if err == nil {
		err = m.acceptAccount(m.workCtx, self)
	}
	st := calld.LoginState{State: calld.LoginPhoneNeeded} // a failed flow starts over
	if err == nil {
		st.State, st.SelfID = calld.LoginAuthorized, self
	}
	f.l.mu.Lock()
	f.l.state, f.l.flow = st, nil
	f.l.mu.Unlock()
	if err == nil {
		m.loginSucceeded()
	}
	f.settle(err)
	f.err = err
	close(f.done)
}

// settle gives the answer last taken its outcome, after it ends the
// answer in progress: a step that learns the outcome may answer the next
// question at once.
func (f *flow) settle(err error) {
	if f.pending != nil {
		f.l.release()
		f.pending <- err
		f.pending = nil
	}
}

// ask sets the question (which settles the answer before it: the flow is
// past it) and waits for an answer to it.
func (f *flow) ask(ctx context.Context, state string) (string, error) {
	f.l.set(calld.LoginState{State: state})
	f.settle(nil)
	for {
		select {
		case a := <-f.answers:
			if a.state != state { // begin checked it: not expected
				f.l.release()
				a.outcome <- errWrongStep(state)
				continue
			}
			f.pending = a.outcome
			return a.value, nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

func (f *flow) Phone(ctx context.Context) (string, error) {
	return f.ask(ctx, calld.LoginPhoneNeeded)
}

func (f *flow) Code(ctx context.Context, sent *tg.AuthSentCode) (string, error) {
	return f.ask(ctx, calld.LoginCodeSent)
}

func (f *flow) Password(ctx context.Context) (string, error) {
	return f.ask(ctx, calld.LoginPasswordNeeded)
}

// PasswordRejected makes the step that brought a wrong password fail with
// a 400 the CLI asks again on; the flow then asks for the next one.
func (f *flow) PasswordRejected(err error) { f.settle(err) }
