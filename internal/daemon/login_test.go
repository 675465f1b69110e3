package daemon

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gotd/td/tgerr"

	"github.com/calld/calld"
	"github.com/calld/calld/client"
	"github.com/calld/calld/internal/sim"
)

// TestLoginSteps: each step's answer leads to the state after it, in
// order; a field the login does not ask for now, a wrong code and a wrong
// password are refused with the state the login is at (a failed flow
// starts over at phone_needed, a wrong password asks again).
func TestLoginSteps(t *testing.T) {
	srv := newSim(t, sim.Options{Authorized: false, Password: "hunter2"})
	r := start(t, srv, filepath.Join(t.TempDir(), "calld.db"), "", nil)
	r.waitReady(t)
	for _, s := range []struct {
		name      string
		step      calld.LoginStep
		wantState string
		wantCode  string // "" for success
	}{
		{"the current state", calld.LoginStep{}, calld.LoginPhoneNeeded, ""},
		{"a code before the phone", calld.LoginStep{Code: sim.LoginCode}, calld.LoginPhoneNeeded, calld.EINVALID},
		{"the phone", calld.LoginStep{Phone: "+15550001111"}, calld.LoginCodeSent, ""},
		{"the phone again", calld.LoginStep{Phone: "+15550001111"}, calld.LoginCodeSent, calld.EINVALID},
		{"a wrong code", calld.LoginStep{Code: "00000"}, calld.LoginPhoneNeeded, "PHONE_CODE_INVALID"},
		{"the phone after the failure", calld.LoginStep{Phone: "+15550001111"}, calld.LoginCodeSent, ""},
		{"the code", calld.LoginStep{Code: sim.LoginCode}, calld.LoginPasswordNeeded, ""},
		{"a wrong password", calld.LoginStep{Password: "wrong"}, calld.LoginPasswordNeeded, calld.EINVALID},
		{"the password", calld.LoginStep{Password: "hunter2"}, calld.LoginAuthorized, ""},
	} {
		st, err := r.cl.Login(context.Background(), s.step)
		if code := calld.ErrorCode(err); code != s.wantCode {
			t.Fatalf("%s: error %v (code %q), want code %q", s.name, err, code, s.wantCode)
		}
		if err == nil && st.State != s.wantState {
			t.Fatalf("%s: state %q, want %q", s.name, st.State, s.wantState)
		}
		if cur, err := r.cl.Login(context.Background(), calld.LoginStep{}); err != nil || cur.State != s.wantState {
			t.Fatalf("%s: then at %q (%v), want %q", s.name, cur.State, err, s.wantState)
		}
	}
	select { // logged in: the manager runs
	case <-r.m.Manager().Ready():
	case <-time.After(60 * time.Second):
		t.Fatal("the manager did not start after the login")
	}
	if st := r.status(t); !st.Telegram.Authorized || st.Telegram.SelfID != sim.SelfID {
		t.Fatalf("after the login: %+v", st.Telegram)
	}
}

// answerWait bounds how long a test waits for one login step's answer: a
// step that gets none by then waits on a login that will not answer it.
const answerWait = 30 * time.Second

// stepResult is one login step's answer, as a client got it.
type stepResult struct {
	st  calld.LoginState
	err error
}

// loginStep posts step with a deadline of answerWait; a step that runs
// into the deadline is reported as waiting.
func loginStep(cl *client.Client, step calld.LoginStep) stepResult {
	ctx, cancel := context.WithTimeout(context.Background(), answerWait)
	defer cancel()
	st, err := cl.Login(ctx, step)
	if ctx.Err() != nil {
		err = fmt.Errorf("no answer within %s: %w", answerWait, err)
	}
	return stepResult{st, err}
}

// loginSteps posts step n times at once, each with its own client (as
// `calld login` processes would), and returns the n answers.
func loginSteps(socket string, step calld.LoginStep, n int) []stepResult {
	out := make([]stepResult, n)
	var wg sync.WaitGroup
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := client.New(socket)
			defer cl.Close()
			out[i] = loginStep(cl, step)
		}()
	}
	wg.Wait()
	return out
}

// TestLoginStepWhileAnotherIsAnswered: while the flow works on one step's
// answer (its RPC held by the simulator), 49 more steps with an answer
// are each refused at once with a conflict, the login stays at its
// question, and the daemon answers; the first step then gets the state
// its answer led to.
func TestLoginStepWhileAnotherIsAnswered(t *testing.T) {
	srv := newSim(t, sim.Options{Authorized: false, Password: "hunter2"})
	r := start(t, srv, filepath.Join(t.TempDir(), "calld.db"), "", nil)
	r.waitReady(t)
	for _, s := range []struct {
		step calld.LoginStep
		rpc  string // the RPC the flow sends with the answer, held
		at   string // the question the step answers
		next string // the state the first answer leads to
	}{
		{calld.LoginStep{Phone: "+15550001111"}, "auth.sendCode", calld.LoginPhoneNeeded, calld.LoginCodeSent},
		{calld.LoginStep{Code: sim.LoginCode}, "auth.signIn", calld.LoginCodeSent, calld.LoginPasswordNeeded},
		{calld.LoginStep{Password: "hunter2"}, "auth.checkPassword", calld.LoginPasswordNeeded, calld.LoginAuthorized},
	} {
		release := srv.HoldRPC(s.rpc)
		first := make(chan stepResult, 1)
		go func() { first <- loginStep(r.cl, s.step) }()
		ctx, cancel := context.WithTimeout(context.Background(), answerWait)
		err := srv.WaitCount(ctx, s.rpc, 1)
		cancel()
		if err != nil {
			release()
			t.Fatalf("%s: the first step's %s never reached Telegram: %v", s.at, s.rpc, err)
		}
		for i, res := range loginSteps(r.m.Config.Control.Socket, s.step, 49) {
			if code := calld.ErrorCode(res.err); code != calld.ECONFLICT {
				release()
				t.Fatalf("%s: concurrent step %d: %v (code %q), want code %q", s.at, i, res.err, code, calld.ECONFLICT)
			}
		}
		if cur := loginStep(r.cl, calld.LoginStep{}); cur.err != nil || cur.st.State != s.at {
			release()
			t.Fatalf("%s: after the refused steps the login is at %q (%v)", s.at, cur.st.State, cur.err)
		}
		_ = r.status(t)
		release()
		if res := <-first; res.err != nil || res.st.State != s.next {
			t.Fatalf("%s: the first step: %q (%v), want %q", s.at, res.st.State, res.err, s.next)
		}
	}
}

// TestConcurrentLogins: 50 clients drive the login at once, each asking
// for the state and answering the question it names until it reads
// "authorized", as `calld login` does. Each gets an answer to every
// step (a refused one asks for the state again), all end logged in, and
// the daemon answers meanwhile.
func TestConcurrentLogins(t *testing.T) {
	srv := newSim(t, sim.Options{Authorized: false, Password: "hunter2"})
	r := start(t, srv, filepath.Join(t.TempDir(), "calld.db"), "", nil)
	r.waitReady(t)
	answers := map[string]calld.LoginStep{
		calld.LoginPhoneNeeded:    {Phone: "+15550001111"},
		calld.LoginCodeSent:       {Code: sim.LoginCode},
		calld.LoginPasswordNeeded: {Password: "hunter2"},
	}
	// A client whose step is refused asks again at once; the login's
	// RPCs take milliseconds, so it never comes near this many steps.
	const maxSteps = 10000
	errs := make(chan error, 50)
	for range cap(errs) {
		go func() {
			cl := client.New(r.m.Config.Control.Socket)
			defer cl.Close()
			step := calld.LoginStep{}
			for range maxSteps {
				res := loginStep(cl, step)
				switch {
				case res.err != nil && calld.ErrorCode(res.err) != calld.ECONFLICT && calld.ErrorCode(res.err) != calld.EINVALID:
					errs <- res.err
					return
				case res.err != nil:
					step = calld.LoginStep{}
				case res.st.State == calld.LoginAuthorized:
					errs <- nil
					return
				default:
					step = answers[res.st.State]
				}
			}
			errs <- fmt.Errorf("not logged in after %d steps", maxSteps)
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Errorf("a client: %v", err)
		}
	}
	if st := r.status(t); !st.Telegram.Authorized || st.Telegram.SelfID != sim.SelfID {
		t.Fatalf("after the logins: %+v", st.Telegram)
	}
}

// TestLoginFlowEndsBeforeAsking: a flow that fails before it asks for the
// phone (the authorization check answering an error) fails the step that
// brought the phone with that error, and the login starts over.
func TestLoginFlowEndsBeforeAsking(t *testing.T) {
	srv := newSim(t, sim.Options{Authorized: false})
	r := start(t, srv, filepath.Join(t.TempDir(), "calld.db"), "", nil)
	r.waitReady(t)
	srv.FailRPC("users.getUsers", tgerr.New(400, "USER_ID_INVALID"), 1)
	phone := calld.LoginStep{Phone: "+15550001111"}
	if res := loginStep(r.cl, phone); calld.ErrorCode(res.err) != "USER_ID_INVALID" {
		t.Fatalf("the phone while the flow fails: %v, want code USER_ID_INVALID", res.err)
	}
	if res := loginStep(r.cl, phone); res.err != nil || res.st.State != calld.LoginCodeSent {
		t.Fatalf("the phone again: %q (%v), want %q", res.st.State, res.err, calld.LoginCodeSent)
	}
}
