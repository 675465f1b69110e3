package daemon

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/calld/calld"
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
