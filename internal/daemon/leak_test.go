package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/config"
	"github.com/calld/calld/internal/sim"
)

// TestRunLeavesNoGoroutine: once Run returned, no goroutine it started
// is left, in each state it can be stopped in. Goroutines of the test and
// of the simulator (those running before Run) are ignored; the
// simulator's per-connection ones end with calld's connection.
func TestRunLeavesNoGoroutine(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts sim.Options
		dead bool // the DC address answers nothing
		call bool // a call is tracked at the stop
	}{
		{"not logged in", sim.Options{Authorized: false}, false, false},
		{"DC unreachable", sim.Options{Authorized: true}, true, false},
		{"ready", sim.Options{Authorized: true}, false, false},
		{"a call ringing", sim.Options{Authorized: true}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newSim(t, tc.opts)
			addr := ""
			if tc.dead {
				addr = deadAddr(t)
			}
			before := goleak.IgnoreCurrent()
			r := start(t, srv, filepath.Join(t.TempDir(), "calld.db"), addr, nil)
			if tc.dead {
				r.logs.waitFor(t, `"event":"telegram.dial"`)
			} else {
				r.waitReady(t)
			}
			if tc.call {
				if _, err := srv.IncomingCall(srv.AddPeer("ann"), false); err != nil {
					t.Fatal(err)
				}
				r.logs.waitFor(t, `"event":"call.state"`)
			}
			_ = r.status(t)
			r.cl.Close()
			if err := r.stop(t); err != nil {
				t.Fatal(err)
			}
			if err := srv.Close(); err != nil {
				t.Logf("sim close: %v", err)
			}
			goleak.VerifyNone(t, before)
		})
	}
}

// TestStopBeforeServing: a stop that comes before Run serves (the context
// already done) still ends Run promptly and cleanly: nil, the socket file
// it created removed, no goroutine left.
func TestStopBeforeServing(t *testing.T) {
	srv := newSim(t, sim.Options{Authorized: true})
	before := goleak.IgnoreCurrent()
	cfg := config.Default()
	cfg.State.Path = filepath.Join(t.TempDir(), "calld.db")
	cfg.Control.Socket = filepath.Join(t.TempDir(), "calld.sock")
	cfg.Log.Format = "json"
	m := New(cfg)
	logs := newLogBuffer()
	m.Stderr = logs
	m.Sim = &SimTarget{Addr: srv.Addr(), DC: srv.DC(), PublicKey: srv.PublicKeyPEM()}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v\n%s", err, logs)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Run did not return within 10 s of a stop before serving\n%s", logs)
	}
	if _, err := os.Lstat(cfg.Control.Socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file left behind: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Logf("sim close: %v", err)
	}
	goleak.VerifyNone(t, before)
}

// TestStopDuringLoginStep: a stop while a login step waits for Telegram
// (auth.sendCode held) ends Run within ShutdownTimeout, answers the step,
// and leaves no goroutine (the request's handler included).
func TestStopDuringLoginStep(t *testing.T) {
	srv := newSim(t, sim.Options{Authorized: false})
	release := srv.HoldRPC("auth.sendCode")
	defer release()
	before := goleak.IgnoreCurrent()
	r := start(t, srv, filepath.Join(t.TempDir(), "calld.db"), "", func(m *Main) { m.ShutdownTimeout = 2 * time.Second })
	r.waitReady(t)
	stepped := make(chan error, 1)
	go func() {
		_, err := r.cl.Login(context.Background(), calld.LoginStep{Phone: "+15550001111"})
		stepped <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.WaitCount(ctx, "auth.sendCode", 1); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("stop took %s, ShutdownTimeout is 2 s", took)
	}
	select {
	case err := <-stepped:
		if err == nil {
			t.Error("the login step succeeded across the stop")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the login step was never answered")
	}
	r.cl.Close()
	release()
	if err := srv.Close(); err != nil {
		t.Logf("sim close: %v", err)
	}
	goleak.VerifyNone(t, before)
}

// TestStopWithManyCallsInFlight: 300 incoming calls whose
// phone.receivedCall Telegram holds: a stop with 300 RPCs in flight, then
// a restart that restores the 300 calls and sends them all again, stopped
// in turn; each stop within 10 s, no goroutine left.
func TestStopWithManyCallsInFlight(t *testing.T) {
	const n = 300
	srv := newSim(t, sim.Options{Authorized: true})
	release := srv.HoldRPC("phone.receivedCall")
	defer release()
	before := goleak.IgnoreCurrent()
	state := filepath.Join(t.TempDir(), "calld.db")
	busy := func(m *Main) { m.Config.Policy.RejectWhenBusy = false }
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for round, want := range []int{n, 2 * n} {
		r := start(t, srv, state, "", busy)
		r.waitReady(t)
		if round == 0 {
			for i := 0; i < n; i++ {
				if _, err := srv.IncomingCall(srv.AddPeer(fmt.Sprintf("peer%d", i)), false); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := srv.WaitCount(ctx, "phone.receivedCall", want); err != nil {
			t.Fatalf("round %d: %d phone.receivedCall, want %d: %v", round, srv.Count("phone.receivedCall"), want, err)
		}
		if st := r.status(t); st.Calls.Live != n {
			t.Fatalf("round %d: %d live calls, want %d", round, st.Calls.Live, n)
		}
		r.cl.Close()
		began := time.Now()
		if err := r.stop(t); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		t.Logf("round %d: stopped in %s", round, time.Since(began))
	}
	release()
	if err := srv.Close(); err != nil {
		t.Logf("sim close: %v", err)
	}
	goleak.VerifyNone(t, before)
}
