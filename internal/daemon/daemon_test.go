package daemon

import (
	"bytes"
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotd/neo"
	"github.com/gotd/td/tgerr"

	"github.com/calld/calld"
	"github.com/calld/calld/client"
	"github.com/calld/calld/internal/config"
	"github.com/calld/calld/internal/sim"
	"github.com/calld/calld/internal/store"
)

// logBuffer collects a daemon's log lines; changed is closed and replaced
// on each write, so that tests wait for a line without polling.
type logBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func newLogBuffer() *logBuffer { return &logBuffer{changed: make(chan struct{})} }

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	close(l.changed)
	l.changed = make(chan struct{})
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor waits until the logs contain s.
func (l *logBuffer) waitFor(t *testing.T, s string) {
	t.Helper()
	l.waitForN(t, s, 1)
}

// waitForN waits until the logs contain s n times.
func (l *logBuffer) waitForN(t *testing.T, s string, n int) {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		l.mu.Lock()
		has, ch := strings.Count(l.b.String(), s) >= n, l.changed
		l.mu.Unlock()
		if has {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("no %q in the logs:\n%s", s, l.String())
		}
	}
}

// run is one Main running in the test against a simulator.
type run struct {
	m      *Main
	logs   *logBuffer
	cl     *client.Client
	cancel context.CancelFunc
	done   chan error
}

func newSim(t *testing.T, o sim.Options) *sim.Server { return sim.Start(t, o) }

// deadAddr is a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start runs a Main on state (a path) against srv at addr (srv's own when
// empty); tweak may change it before Run.
func start(t *testing.T, srv *sim.Server, state, addr string, tweak func(*Main)) *run {
	t.Helper()
	cfg := config.Default()
	cfg.State.Path = state
	cfg.Control.Socket = filepath.Join(t.TempDir(), "calld.sock")
	cfg.Log.Level, cfg.Log.Format = "debug", "json"
	ln, err := net.Listen("unix", cfg.Control.Socket)
	if err != nil {
		t.Fatal(err)
	}
	if addr == "" {
		addr = srv.Addr()
	}
	m := New(cfg)
	r := &run{m: m, logs: newLogBuffer(), cl: client.New(cfg.Control.Socket), done: make(chan error, 1)}
	m.Stderr = r.logs
	m.Listener = ln
	m.Sim = &SimTarget{Addr: addr, DC: srv.DC(), PublicKey: srv.PublicKeyPEM()}
	if tweak != nil {
		tweak(m)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- m.Run(ctx) }()
	t.Cleanup(func() {
		r.cl.Close()
		if err := r.stop(t); err != nil {
			t.Errorf("run: %v", err)
		}
		if t.Failed() {
			t.Logf("logs:\n%s", r.logs.String())
		}
	})
	return r
}

// stop ends the run and waits for Run (at most the 10 s of CONTRACT §5.2).
func (r *run) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of the stop")
		return nil
	}
}

func (r *run) status(t *testing.T) calld.Status {
	t.Helper()
	st, err := r.cl.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (r *run) waitReady(t *testing.T) {
	t.Helper()
	select {
	case <-r.m.Ready():
	case err := <-r.done:
		t.Fatalf("Run returned before ready: %v\n%s", err, r.logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("not ready after 60 s\n%s", r.logs.String())
	}
}

// placeCode is the error code of POST /v1/calls.
func (r *run) placeCode(t *testing.T) string {
	t.Helper()
	_, err := r.cl.Place(context.Background(), "@nobody", false)
	var ce *calld.Error
	if !errors.As(err, &ce) {
		t.Fatalf("place: %v, want an API error", err)
	}
	return ce.Code
}

// TestAuthorizationCheckRetried: an error of the start-up authorization
// check (users.getUsers answering 500) is "unknown", answered 503, and
// checked again until Telegram answers; it is never "not logged in".
func TestAuthorizationCheckRetried(t *testing.T) {
	srv := newSim(t, sim.Options{Authorized: true})
	srv.FailRPC("users.getUsers", tgerr.New(500, "INTERNAL"), 1000)
	clk := neo.NewTime(time.Now())
	r := start(t, srv, filepath.Join(t.TempDir(), "calld.db"), "", func(m *Main) {
		m.Clock = clk
		m.RetryBudget = time.Millisecond // the RPC gives up at once; the daemon re-checks
	})
	for i := 0; i < 2; i++ {
		// The daemon waits to check again: it arms its timer before the
		// line (the clock's Observe would also see the housekeeping's
		// timers).
		r.logs.waitForN(t, "authorization check failed: checking again", i+1)
		if i == 1 {
			srv.FailRPC("users.getUsers", nil, 0) // Telegram recovers
		}
		st := r.status(t)
		if st.State != StateUnknown || st.Telegram.Authorized || !strings.Contains(st.Status, "INTERNAL") {
			t.Fatalf("after a failed check %d: %+v", i+1, st)
		}
		if code := r.placeCode(t); code != calld.EUNAVAILABLE {
			t.Fatalf("place while the authorization is unknown: %s, want %s", code, calld.EUNAVAILABLE)
		}
		clk.Travel(time.Minute)
	}
	r.waitReady(t)
	if st := r.status(t); st.State != StateReady || !st.Telegram.Authorized || st.Telegram.SelfID != sim.SelfID {
		t.Fatalf("after the check answered: %+v", st)
	}
}

// TestNotLoggedIn: without a session calld says so (401, "not logged
// in: run calld login"), and a storm of reloads neither blocks the caller
// nor the stop.
func TestNotLoggedInReloadStorm(t *testing.T) {
	srv := newSim(t, sim.Options{Authorized: false})
	r := start(t, srv, filepath.Join(t.TempDir(), "calld.db"), "", nil)
	r.waitReady(t)
	st := r.status(t)
	if st.State != StateNotLoggedIn || st.Status != "not logged in: run calld login" {
		t.Fatalf("status: %+v", st)
	}
	if code := r.placeCode(t); code != calld.EUNAUTHORIZED {
		t.Fatalf("place while not logged in: %s", code)
	}
	cfg := r.m.Config
	cfg.Policy.Incoming = config.IncomingReject
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		for i := 0; i < 10000; i++ {
			r.m.Reload(cfg)
		}
	}()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("10,000 reloads before login blocked")
	}
	r.logs.waitFor(t, `"event":"daemon.reload"`)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestStartUpRaces runs Reload, Status and a login step while Run starts
// (run it with -race): nothing Run builds is written after the socket
// serves, and an early login gets the run's context.
func TestStartUpRaces(t *testing.T) {
	srv := newSim(t, sim.Options{Authorized: false})
	r := start(t, srv, filepath.Join(t.TempDir(), "calld.db"), "", nil)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < 100; i++ {
			r.m.Reload(r.m.Config)
			_ = r.m.Manager()
		}
	}()
	go func() {
		defer wg.Done()
		for {
			st, err := r.cl.Login(context.Background(), calld.LoginStep{Phone: "+15550001111"})
			if err == nil {
				if st.State != calld.LoginCodeSent {
					t.Errorf("login phone step: %+v", st)
				}
				return
			}
			select {
			case <-r.m.Ready():
			case <-r.done:
				return
			}
		}
	}()
	wg.Wait()
}

// TestUnreachableWithSession: with a stored session and Telegram out of
// reach, calld says "connecting to DC n (addr): <dial error>", shows the
// persisted updates state, answers call routes 503 (not 401), and logs the
// address and the error.
func TestUnreachableWithSession(t *testing.T) {
	srv := newSim(t, sim.Options{Authorized: true})
	state := filepath.Join(t.TempDir(), "calld.db")
	first := start(t, srv, state, "", nil)
	first.waitReady(t)
	if _, err := srv.IncomingCall(srv.AddPeer("ann"), false); err != nil {
		t.Fatal(err)
	}
	first.logs.waitFor(t, `"event":"call.state"`)
	if err := first.stop(t); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(state, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var want calld.UpdatesState
	if err := db.View(func(tx *store.Tx) error {
		want, _, err = tx.UpdatesState()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if want.Seq == 0 {
		t.Fatalf("no updates state persisted: %+v", want)
	}

	dead := deadAddr(t)
	r := start(t, srv, state, dead, nil)
	r.logs.waitFor(t, `"event":"telegram.dial"`)
	if !strings.Contains(r.logs.String(), `"addr":"`+dead+`"`) {
		t.Fatalf("the dial log line does not name %s", dead)
	}
	st := r.status(t)
	if st.State != StateConnecting || !strings.HasPrefix(st.Status, "connecting to DC 2 ("+dead+"): ") ||
		!strings.Contains(st.Status, "refused") {
		t.Fatalf("status while unreachable: %+v", st)
	}
	if st.Updates != want {
		t.Fatalf("updates state %+v, want the persisted %+v", st.Updates, want)
	}
	if code := r.placeCode(t); code != calld.EUNAVAILABLE {
		t.Fatalf("place while unreachable with a session: %s, want %s", code, calld.EUNAVAILABLE)
	}
}

// notifySocket is a systemd notify socket for the test's daemon
// (NOTIFY_SOCKET), closed at the end of the test.
func notifySocket(t *testing.T) *net.UnixConn {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", sock)
	return conn
}

// TestWatchdogFromReady: READY=1 and then WATCHDOG=1 reach systemd in
// every state, not only once logged in.
func TestWatchdogFromReady(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts sim.Options
		dead bool
	}{
		{"not logged in", sim.Options{Authorized: false}, false},
		{"DC unreachable", sim.Options{Authorized: true}, true},
		{"ready", sim.Options{Authorized: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := notifySocket(t)
			t.Setenv("WATCHDOG_USEC", "200000")
			srv := newSim(t, tc.opts)
			addr := ""
			if tc.dead {
				addr = deadAddr(t)
			}
			start(t, srv, filepath.Join(t.TempDir(), "calld.db"), addr, nil)
			_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			buf := make([]byte, 4096)
			ready := false
			for {
				n, _, err := conn.ReadFromUnix(buf)
				if err != nil {
					t.Fatalf("no WATCHDOG=1 after READY=1 (ready seen: %v): %v", ready, err)
				}
				msg := string(buf[:n])
				if strings.HasPrefix(msg, "READY=1") {
					ready = true
				}
				if ready && msg == "WATCHDOG=1" {
					return
				}
			}
		})
	}
}
