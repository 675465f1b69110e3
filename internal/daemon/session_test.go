package daemon

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gotd/neo"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/santhosh-tekuri/jsonschema/v6"
	bolt "go.etcd.io/bbolt"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/mtproto/middleware"
	"github.com/calld/calld/internal/sim"
	"github.com/calld/calld/internal/store"
)

// login answers the phone and the code through the control socket and
// waits until the daemon is logged in.
func (r *run) login(t *testing.T) {
	t.Helper()
	for _, step := range []calld.LoginStep{{Phone: "+15550001111"}, {Code: sim.LoginCode}} {
		if _, err := r.cl.Login(context.Background(), step); err != nil {
			t.Fatalf("login %+v: %v", step, err)
		}
	}
}

// startLoggedIn starts a daemon on a fake clock that stands still,
// against a simulator that wants a login, and logs it in through the
// control socket; it returns once the manager has restored.
func startLoggedIn(t *testing.T) (*sim.Server, *run, *neo.Time) {
	t.Helper()
	srv := newSim(t, sim.Options{Authorized: false})
	clk := neo.NewTime(time.Now())
	r := start(t, srv, filepath.Join(t.TempDir(), "calld.db"), "", func(m *Main) { m.Clock = clk })
	r.waitReady(t)
	r.login(t)
	select {
	case <-r.m.Manager().Ready():
	case <-time.After(60 * time.Second):
		t.Fatal("the manager did not start after the login")
	}
	return srv, r, clk
}

// waitExecuted waits until the simulator has executed method n times.
func waitExecuted(t *testing.T, srv *sim.Server, method string, n int) {
	t.Helper()
	waitSim(t, srv, func() bool { return srv.Executed(method) >= n }, func() string {
		return fmt.Sprintf("%s executed %d times, want %d", method, srv.Executed(method), n)
	})
}

// waitSim waits until cond, a read of the simulator's state, holds (each
// change of that state wakes it), for up to 60 s; why says what failed.
func waitSim(t *testing.T, srv *sim.Server, cond func() bool, why func() string) {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		ch := srv.Changed()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatal(why())
		}
	}
}

// TestSessionRevokedWhileRunning: the session is logged out at Telegram
// while calld runs (as when it is terminated from another device). The
// next RPC's 401, confirmed by Telegram, makes calld "not logged in"
// (status, health, the login at its first question), said once in the
// logs; `calld login` then works without a restart, and calld is logged
// in again and tracks calls. A hang-up whose discard answered 401 is not
// ended by it: the discard is sent again and ends the call once logged in.
// A 401 that Telegram does not confirm (the session still logged in)
// changes nothing.
func TestSessionRevokedWhileRunning(t *testing.T) {
	// The daemon's clock stands still: the hung-up call's discard is sent
	// again by the login (Manager.Resync), not by its backoff's timer.
	srv, r, _ := startLoggedIn(t)
	ctx := context.Background()
	srv.AddPeer("ann")
	ringing, err := srv.IncomingCall(srv.AddPeer("cat"), false)
	if err != nil {
		t.Fatal(err)
	}
	r.logs.waitFor(t, fmt.Sprintf(`"call_id":"%d","from":"waiting","to":"ringing"`, ringing))

	// A 401 of one RPC while the session is logged in: checked, not
	// believed.
	checks := srv.Executed("users.getUsers")
	srv.FailRPC("contacts.resolveUsername", tgerr.New(401, "AUTH_KEY_UNREGISTERED"), 1)
	if _, err := r.cl.Place(ctx, "@ann", false); calld.ErrorCode(err) != calld.EUNAUTHORIZED {
		t.Fatalf("place with a failing resolve: %v, want code %q", err, calld.EUNAUTHORIZED)
	}
	waitExecuted(t, srv, "users.getUsers", checks+1)
	if st := r.status(t); !st.Telegram.Authorized || st.State != StateReady {
		t.Fatalf("after a 401 while logged in: state %q, telegram %+v", st.State, st.Telegram)
	}

	// The logout, then a hang-up: its discard answers 401, which the
	// server did not execute; the call stays hanging_up, to be sent
	// again.
	srv.LogOutAll()
	if _, err := r.cl.Discard(ctx, ringing, calld.ReasonHangup); calld.ErrorCode(err) != calld.EUNAUTHORIZED {
		t.Fatalf("hang up after the logout: %v, want code %q", err, calld.EUNAUTHORIZED)
	}
	r.logs.waitFor(t, `"event":"telegram.unauthorized"`)
	if c, err := r.cl.Call(ctx, ringing); err != nil || c.State != calld.StateHangingUp || c.EndedBy != calld.EndedByNone {
		t.Fatalf("the call hung up after the logout: %+v (%v), want hanging_up", c, err)
	}
	if _, err := r.cl.Place(ctx, "@ann", false); calld.ErrorCode(err) != calld.EUNAUTHORIZED {
		t.Fatalf("place after the logout: %v, want code %q", err, calld.EUNAUTHORIZED)
	}
	if st := r.status(t); st.Telegram.Authorized || st.State != StateNotLoggedIn {
		t.Fatalf("after the revocation: state %q, telegram %+v", st.State, st.Telegram)
	}
	if h, err := r.cl.Health(ctx); err == nil && h.Status == "ok" {
		t.Fatalf("health after the revocation: %+v", h)
	}
	if st, err := r.cl.Login(ctx, calld.LoginStep{}); err != nil || st.State != calld.LoginPhoneNeeded {
		t.Fatalf("the login after the revocation: %q (%v), want %q", st.State, err, calld.LoginPhoneNeeded)
	}

	r.login(t)
	r.logs.waitFor(t, `"event":"telegram.authorized"`)
	if st := r.status(t); !st.Telegram.Authorized || st.Telegram.SelfID != sim.SelfID || st.State != StateReady {
		t.Fatalf("after the second login: state %q, telegram %+v", st.State, st.Telegram)
	}
	// The hang-up's discard, sent again at the login, ends the call as
	// asked.
	r.logs.waitFor(t, fmt.Sprintf(`"call_id":"%d","from":"hanging_up","to":"ended"`, ringing))
	if c, err := r.cl.Call(ctx, ringing); err != nil || c.EndedBy != calld.EndedByLocal || c.Reason != calld.ReasonHangup || c.Error != "" {
		t.Fatalf("the call hung up after the logout, after the login: %+v (%v)", c, err)
	}
	if info, _ := srv.Call(ringing); info.State != sim.StateDiscarded {
		t.Fatalf("the server's call: %s, want discarded", info.State)
	}
	id, err := srv.IncomingCall(srv.AddPeer("bob"), false)
	if err != nil {
		t.Fatal(err)
	}
	r.logs.waitFor(t, fmt.Sprintf(`"call_id":"%d","from":"waiting","to":"ringing"`, id))
	logs := r.logs.String()
	for _, ev := range []string{"telegram.unauthorized", "telegram.authorized"} {
		if n := strings.Count(logs, `"event":"`+ev+`"`); n != 1 {
			t.Errorf("%d %s lines, want 1", n, ev)
		}
	}
	checkLogSchema(t, logs)
}

// checkLogSchema validates every log line against docs/log.schema.json.
func checkLogSchema(t *testing.T, logs string) {
	t.Helper()
	sch, err := jsonschema.NewCompiler().Compile("../../docs/log.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(line))
		if err == nil {
			err = sch.Validate(v)
		}
		if err != nil {
			t.Errorf("a log line against the schema: %v\n%s", err, line)
		}
	}
}

// TestDiscardNotLoggedInKeepsCall: a hang-up whose phone.discardCall
// answers a 401 (Telegram executed none of it) leaves the call hanging_up,
// its discard to be sent again, instead of ending it with an error while
// the peer rings on. SESSION_PASSWORD_NEEDED is such a 401 too (a login
// waiting for its two-step verification password).
func TestDiscardNotLoggedInKeepsCall(t *testing.T) {
	for _, typ := range []string{"AUTH_KEY_UNREGISTERED", "SESSION_PASSWORD_NEEDED"} {
		t.Run(typ, func(t *testing.T) {
			srv := newSim(t, sim.Options{Authorized: true})
			clk := neo.NewTime(time.Now()) // the resend's backoff never ends
			r := start(t, srv, filepath.Join(t.TempDir(), "calld.db"), "", func(m *Main) { m.Clock = clk })
			r.waitReady(t)
			id, err := srv.IncomingCall(srv.AddPeer("cat"), false)
			if err != nil {
				t.Fatal(err)
			}
			r.logs.waitFor(t, fmt.Sprintf(`"call_id":"%d","from":"waiting","to":"ringing"`, id))
			srv.FailRPC("phone.discardCall", tgerr.New(401, typ), 1)
			if _, err := r.cl.Discard(context.Background(), id, calld.ReasonHangup); err == nil {
				t.Fatal("the hang-up answered no error")
			}
			c, err := r.cl.Call(context.Background(), id)
			if err != nil || c.State != calld.StateHangingUp || c.EndedBy != calld.EndedByNone || c.Error != "" {
				t.Fatalf("the call after its discard's %s: %+v (%v), want hanging_up", typ, c, err)
			}
		})
	}
}

// TestDifferenceFailureLogged: a getDifference that fails is a warn line
// with the error (the engine retries it with a backoff; it used to fail
// silently), and the retry applies the difference.
func TestDifferenceFailureLogged(t *testing.T) {
	srv := newSim(t, sim.Options{Authorized: true})
	clk := neo.NewTime(time.Now())
	r := start(t, srv, filepath.Join(t.TempDir(), "calld.db"), "", func(m *Main) { m.Clock = clk })
	r.waitReady(t)
	srv.FailRPC("updates.getDifference", tgerr.New(400, "PERSISTENT_TIMESTAMP_INVALID"), 1)
	srv.OpenGap(1)
	pts := srv.SendMessage(srv.AddPeer("ann"), "hello") // its push opens the gap
	r.logs.waitFor(t, `"event":"updates.gap"`)
	// The gap's wait, then the retry's backoff, pass on calld's clock.
	travelUntil(t, clk, func() bool { return strings.Contains(r.logs.String(), `"event":"updates.difference_failed"`) })
	travelUntil(t, clk, func() bool { return strings.Contains(r.logs.String(), fmt.Sprintf(`"to_pts":%d`, pts)) })
	var failed map[string]any
	for _, l := range logLines(t, r.logs.String()) {
		if l["event"] == "updates.difference_failed" {
			failed = l
		}
	}
	if err, _ := failed["err"].(string); failed["level"] != "warn" || !strings.Contains(err, "PERSISTENT_TIMESTAMP_INVALID") || failed["from_pts"] == nil {
		t.Fatalf("the failure's line: %v", failed)
	}
	checkLogSchema(t, r.logs.String())
}

// travelUntil moves clk in 100 ms steps until cond holds (bounded by a
// real-time deadline). Each step that reaches a timer's instant makes its
// goroutine go on, and re-arm a timer, which Observe reports; a step
// waits for that report briefly, so that the clock does not run ahead of
// what it woke.
func travelUntil(t *testing.T, clk *neo.Time, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("the condition did not hold with the clock moved on")
		}
		armed := clk.Observe()
		clk.Travel(100 * time.Millisecond)
		select {
		case <-armed:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// directLogin logs the client's key in without the control socket, as a
// login flow does.
type directLogin struct{ phone string } // "": the default account's

func (d directLogin) Phone(context.Context) (string, error) {
	if d.phone != "" {
		return d.phone, nil
	}
	return "+15550001111", nil
}
func (directLogin) Code(context.Context, *tg.AuthSentCode) (string, error) {
	return sim.LoginCode, nil
}
func (directLogin) Password(context.Context) (string, error) { return "", errors.New("no password") }

// TestReloginCheckRetried: after a revocation, the check that confirms a
// login fails once (an RPC error): calld checks again after its backoff,
// on its clock, instead of waiting for another login, and is logged in.
func TestReloginCheckRetried(t *testing.T) {
	srv, r, clk := startLoggedIn(t)
	ctx := context.Background()
	srv.AddPeer("ann")
	srv.LogOutAll()
	if _, err := r.cl.Place(ctx, "@ann", false); calld.ErrorCode(err) != calld.EUNAUTHORIZED {
		t.Fatalf("place after the logout: %v", err)
	}
	r.logs.waitFor(t, `"event":"telegram.unauthorized"`)
	if _, err := r.m.client.Login(ctx, directLogin{}); err != nil {
		t.Fatal(err)
	}
	const failed = "authorization check failed: checking again"
	before := strings.Count(r.logs.String(), failed)
	srv.FailRPC("users.getUsers", tgerr.New(400, "INJECTED_CHECK_FAILURE"), 1)
	r.m.loginSucceeded()
	r.logs.waitForN(t, failed, before+1)
	clk.Travel(time.Second)
	r.logs.waitFor(t, `"event":"telegram.authorized"`)
	if st := r.status(t); st.State != StateReady || !st.Telegram.Authorized {
		t.Fatalf("logged in again: state %q, telegram %+v", st.State, st.Telegram)
	}
}

// TestLoginOtherAccountRefused: the state file holds one account's calls
// and updates state. Once that account's session was logged out, a login
// as another account is refused (409, naming both users) and logged out
// again at Telegram, and calld stays not logged in, its calls and
// updates state untouched; a login as the file's account then works.
func TestLoginOtherAccountRefused(t *testing.T) {
	srv, r, _ := startLoggedIn(t)
	ctx := context.Background()
	self := srv.Account().SelfID()
	other := srv.AddAccount("15550002222")
	before := r.status(t).Updates
	srv.LogOutAll()
	ann := srv.AddPeer("ann")
	for range 3 { // the other account's pts moves: a difference from the file's would change it
		other.SendMessage(ann, "hello")
	}
	if _, err := r.cl.Place(ctx, "@ann", false); calld.ErrorCode(err) != calld.EUNAUTHORIZED {
		t.Fatalf("place after the logout: %v", err)
	}
	r.logs.waitFor(t, `"event":"telegram.unauthorized"`)
	if _, err := r.cl.Login(ctx, calld.LoginStep{Phone: "+" + other.Phone()}); err != nil {
		t.Fatal(err)
	}
	_, err := r.cl.Login(ctx, calld.LoginStep{Code: sim.LoginCode})
	if calld.ErrorCode(err) != calld.ECONFLICT || !strings.Contains(err.Error(), strconv.FormatInt(self, 10)) ||
		!strings.Contains(err.Error(), strconv.FormatInt(other.SelfID(), 10)) {
		t.Fatalf("login as another account: %v, want a conflict naming users %d and %d", err, self, other.SelfID())
	}
	if ok, _, err := r.m.client.Authorized(ctx); err != nil || ok {
		t.Fatalf("the other account's session after the refusal: authorized %v (%v), want logged out", ok, err)
	}
	st := r.status(t)
	if st.State != StateNotLoggedIn || st.Telegram.Authorized || st.Updates != before {
		t.Fatalf("after the refused login: state %q, telegram %+v, updates %+v (before %+v)", st.State, st.Telegram, st.Updates, before)
	}
	if ls, err := r.cl.Login(ctx, calld.LoginStep{}); err != nil || ls.State != calld.LoginPhoneNeeded {
		t.Fatalf("login state after the refusal: %+v (%v)", ls, err)
	}
	r.login(t)
	r.logs.waitFor(t, `"event":"telegram.authorized"`)
	if st := r.status(t); st.State != StateReady || st.Telegram.SelfID != self {
		t.Fatalf("logged in as the file's account again: state %q, telegram %+v", st.State, st.Telegram)
	}
}

// TestStartOtherAccountRefused: before the manager starts, a session
// found logged in as another account than the state file's (a login that
// did not go through the control socket's flow, which refuses it) is
// logged out again, and calld goes on waiting, not logged in, for a login
// as the file's account; nothing of the file is sent for the other.
func TestStartOtherAccountRefused(t *testing.T) {
	srv := newSim(t, sim.Options{Authorized: false})
	path := filepath.Join(t.TempDir(), "calld.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const theirs = 4242
	if err := db.Update(func(tx *store.Tx) error { return tx.SetAccount(theirs) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	r := start(t, srv, path, "", nil)
	r.waitReady(t)
	ctx := context.Background()
	if _, err := r.m.client.Login(ctx, directLogin{}); err != nil {
		t.Fatal(err)
	}
	r.m.loginSucceeded()
	r.logs.waitFor(t, "a session of another account than the state file's: logged out again")
	if st := r.status(t); st.State != StateNotLoggedIn || st.Telegram.Authorized {
		t.Fatalf("with another account's session: state %q, telegram %+v", st.State, st.Telegram)
	}
	if ok, _, err := r.m.client.Authorized(ctx); err != nil || ok {
		t.Fatalf("the other account's session: authorized %v (%v), want logged out", ok, err)
	}
	var refused map[string]any
	for _, l := range logLines(t, r.logs.String()) {
		if l["event"] == "mtproto.login" && l["level"] == "warn" {
			refused = l
		}
	}
	if msg, _ := refused["err"].(string); !strings.Contains(msg, "4242") || !strings.Contains(msg, strconv.FormatInt(sim.SelfID, 10)) {
		t.Fatalf("the refusal's line: %v, want users %d and %d named", refused, theirs, sim.SelfID)
	}
	if n := srv.Executed("updates.getState") + srv.Executed("updates.getDifference"); n != 0 {
		t.Fatalf("%d updates requests sent for the other account", n)
	}
	checkLogSchema(t, r.logs.String())
}

// TestReloginOtherAccountUnchecked: a login as another account that did
// not go through the control socket's flow (which refuses it) is still
// not taken for the file's account: calld stays not logged in and says
// why.
func TestReloginOtherAccountUnchecked(t *testing.T) {
	srv, r, _ := startLoggedIn(t)
	ctx := context.Background()
	other := srv.AddAccount("15550002222")
	srv.AddPeer("ann")
	srv.LogOutAll()
	if _, err := r.cl.Place(ctx, "@ann", false); calld.ErrorCode(err) != calld.EUNAUTHORIZED {
		t.Fatalf("place after the logout: %v", err)
	}
	r.logs.waitFor(t, `"event":"telegram.unauthorized"`)
	if _, err := r.m.client.Login(ctx, directLogin{phone: "+" + other.Phone()}); err != nil {
		t.Fatal(err)
	}
	r.m.loginSucceeded()
	r.logs.waitFor(t, "a session of another account than the state file's: logged out again")
	if ok, _, err := r.m.client.Authorized(ctx); err != nil || ok {
		t.Fatalf("the other account's session: authorized %v (%v), want logged out", ok, err)
	}
	if st := r.status(t); st.State != StateNotLoggedIn || st.Telegram.Authorized {
		t.Fatalf("after a login as another account: state %q, telegram %+v", st.State, st.Telegram)
	}
	if strings.Contains(r.logs.String(), `"event":"telegram.authorized"`) {
		t.Fatal("telegram.authorized logged for another account")
	}
	checkLogSchema(t, r.logs.String())
}

// refuseOther logs the file's account out at Telegram, waits until calld
// says so, and brings the other account's updates state to where its next
// push follows the file's seq (so that, were it applied, it would be
// applied at once, not held as a gap). It returns the file's updates
// state.
func refuseOther(t *testing.T, srv *sim.Server, r *run, other *sim.Account) calld.UpdatesState {
	t.Helper()
	before := r.status(t).Updates
	srv.LogOutAll()
	if _, err := r.cl.Place(context.Background(), "@ann", false); calld.ErrorCode(err) != calld.EUNAUTHORIZED {
		t.Fatalf("place after the logout: %v", err)
	}
	r.logs.waitFor(t, `"event":"telegram.unauthorized"`)
	for {
		if _, _, seq, _ := other.State(); seq >= before.Seq {
			return before
		}
		other.Push()
	}
}

// TestOtherAccountKeptOut: from the other account's sign-in until its
// logout is answered, its pushed updates are dropped (not applied to the
// file's account: its incoming call is not taken, nothing is answered for
// it, the file's updates state does not move).
func TestOtherAccountKeptOut(t *testing.T) {
	srv, r, _ := startLoggedIn(t)
	ctx := context.Background()
	other := srv.AddAccount("15550002222")
	ann := srv.AddPeer("ann")
	before := refuseOther(t, srv, r, other)
	release := srv.HoldRPC("auth.logOut")
	if _, err := r.cl.Login(ctx, calld.LoginStep{Phone: "+" + other.Phone()}); err != nil {
		t.Fatal(err)
	}
	codeErr := make(chan error, 1)
	go func() {
		_, err := r.cl.Login(ctx, calld.LoginStep{Code: sim.LoginCode})
		codeErr <- err
	}()
	waitHeld(t, srv, "auth.logOut")
	callID, err := other.IncomingCall(ann, false)
	if err != nil {
		t.Fatal(err)
	}
	r.logs.waitFor(t, "pushed updates dropped: the session is not confirmed")
	release()
	if err := <-codeErr; calld.ErrorCode(err) != calld.ECONFLICT {
		t.Fatalf("code step as another account: %v, want a conflict", err)
	}
	calls, err := r.cl.Calls(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range calls {
		if c.ID == callID {
			t.Fatalf("the other account's call %d was taken: %+v", callID, c)
		}
	}
	if n := other.Count("phone.receivedCall") + other.Count("phone.discardCall"); n != 0 {
		t.Fatalf("%d call RPCs sent as the other account", n)
	}
	if after := r.status(t).Updates; after != before {
		t.Fatalf("the file's updates state moved: %+v -> %+v", before, after)
	}
	checkLogSchema(t, r.logs.String())
}

// TestOtherAccountLogoutFails: when the other account's session cannot be
// logged out, the login says so (409), and that session stays kept out:
// its pushes are dropped, and no RPC of the manager reaches Telegram for
// it (calls, and the difference the updates engine fetches when idle).
func TestOtherAccountLogoutFails(t *testing.T) {
	srv, r, clk := startLoggedIn(t)
	ctx := context.Background()
	other := srv.AddAccount("15550002222")
	ann := srv.AddPeer("ann")
	before := refuseOther(t, srv, r, other)
	srv.FailRPC("auth.logOut", tgerr.New(400, "LOGOUT_BROKEN"), 1000)
	if _, err := r.cl.Login(ctx, calld.LoginStep{Phone: "+" + other.Phone()}); err != nil {
		t.Fatal(err)
	}
	_, err := r.cl.Login(ctx, calld.LoginStep{Code: sim.LoginCode})
	if calld.ErrorCode(err) != calld.ECONFLICT || !strings.Contains(err.Error(), "could not be logged out") ||
		strings.Count(err.Error(), "code=") != 1 {
		t.Fatalf("code step, the logout failing: %v, want one conflict saying the session could not be logged out", err)
	}
	r.logs.waitFor(t, `"level":"error","event":"mtproto.login"`)
	if ok, self, err := r.m.client.Authorized(ctx); err != nil || !ok || self != other.SelfID() {
		t.Fatalf("the session: authorized %v as %d (%v), want still the other account's", ok, self, err)
	}
	if _, err := other.IncomingCall(ann, false); err != nil {
		t.Fatal(err)
	}
	r.logs.waitFor(t, "pushed updates dropped: the session is not confirmed")
	if _, err := r.cl.Place(ctx, "@ann", false); calld.ErrorCode(err) != calld.EUNAUTHORIZED {
		t.Fatalf("place: %v, want unauthorized", err)
	}
	// The updates engine fetches the difference when idle (15 min): held
	// back by the gate, it fails without reaching Telegram.
	failed := strings.Count(r.logs.String(), `"event":"updates.difference_failed"`)
	clk.Travel(15 * time.Minute)
	travelUntil(t, clk, func() bool {
		return strings.Count(r.logs.String(), `"event":"updates.difference_failed"`) > failed
	})
	if l := r.logs.String(); !strings.Contains(l[strings.LastIndex(l, `"event":"updates.difference_failed"`):], middleware.ErrGateClosed) {
		t.Fatalf("the difference failed otherwise than at the gate:\n%s", l)
	}
	for _, method := range []string{"updates.getDifference", "phone.requestCall", "phone.receivedCall", "phone.discardCall"} {
		if n := other.Count(method); n != 0 {
			t.Fatalf("%s sent %d times as the other account", method, n)
		}
	}
	if after := r.status(t).Updates; after != before {
		t.Fatalf("the file's updates state moved: %+v -> %+v", before, after)
	}
	checkLogSchema(t, r.logs.String())
}

// waitHeld waits until the simulator holds an RPC of method.
func waitHeld(t *testing.T, srv *sim.Server, method string) {
	t.Helper()
	waitSim(t, srv, func() bool { return srv.Held(method) > 0 }, func() string { return "no " + method + " held" })
}

// TestOlderFileAccount: a state file from before calld recorded its
// account gets the account its calls were made by, not the first login's:
// logged out and restarted, it refuses a login as another account.
func TestOlderFileAccount(t *testing.T) {
	srv, r, _ := startLoggedIn(t)
	ctx := context.Background()
	other := srv.AddAccount("15550002222")
	id, err := srv.IncomingCall(srv.AddPeer("ann"), false)
	if err != nil {
		t.Fatal(err)
	}
	r.logs.waitFor(t, fmt.Sprintf(`"event":"call.state","call_id":"%d"`, id)) // logged once committed
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	path := r.m.Config.State.Path
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bdb.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Delete([]byte("account")) }); err != nil {
		t.Fatal(err)
	}
	if err := bdb.Close(); err != nil {
		t.Fatal(err)
	}
	srv.LogOutAll()
	r = start(t, srv, path, "", nil)
	r.waitReady(t)
	if _, err := r.cl.Login(ctx, calld.LoginStep{Phone: "+" + other.Phone()}); err != nil {
		t.Fatal(err)
	}
	_, err = r.cl.Login(ctx, calld.LoginStep{Code: sim.LoginCode})
	if calld.ErrorCode(err) != calld.ECONFLICT || !strings.Contains(err.Error(), strconv.FormatInt(sim.SelfID, 10)) {
		t.Fatalf("login as another account into an older file of user %d: %v, want a conflict", sim.SelfID, err)
	}
}
