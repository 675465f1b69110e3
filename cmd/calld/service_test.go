package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotd/neo"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/control"
)

const (
	idRinging int64 = 9007199254740993 // not exact as a float64
	idActive  int64 = -4000000000000000003
	idEnded   int64 = 77
)

var t0 = time.Date(2024, 5, 1, 10, 0, 0, 500_000_000, time.UTC)

func tp(t time.Time) *time.Time { return &t }

// fakeService is a small in-memory calld.CallService for the CLI tests.
type fakeService struct {
	hub *control.Hub

	mu      sync.Mutex
	calls   map[int64]calld.Call
	order   []int64
	journal []calld.Event
	login   calld.LoginState
	next    int64
	places  []calld.PlaceRequest
	reasons []calld.Reason
	conns   []int64       // connection ids set by SetConnection
	status  *calld.Status // replaces the healthy status when set
}

func newFakeService(hub *control.Hub) *fakeService {
	s := &fakeService{hub: hub, calls: map[int64]calld.Call{}, next: 500, login: calld.LoginState{State: calld.LoginPhoneNeeded}}
	for _, c := range []calld.Call{
		{ID: idEnded, Direction: calld.DirectionIncoming, PeerID: 3003, State: calld.StateEnded, CreatedAt: tp(t0), EndedAt: tp(t0.Add(time.Minute)),
			Duration: 42, Reason: calld.ReasonHangup, EndedBy: calld.EndedByRemote},
		{ID: idActive, Direction: calld.DirectionOutgoing, PeerID: 2002, PeerUsername: "alice", State: calld.StateActive, Video: true, CreatedAt: tp(t0.Add(time.Hour)),
			ActiveAt:     tp(t0.Add(time.Hour + 10*time.Second)),
			ConnectionID: 55, Connections: []calld.Connection{{ID: 55, IP: "192.0.2.1", IPv6: "2001:db8::1", Port: 443}}},
		{ID: idRinging, Direction: calld.DirectionIncoming, PeerID: 1001, State: calld.StateRinging, CreatedAt: tp(t0.Add(2 * time.Hour))},
	} {
		s.calls[c.ID] = c
		s.order = append(s.order, c.ID)
	}
	for i := 1; i <= 3; i++ {
		s.journal = append(s.journal, calld.Event{Seq: uint64(i), At: t0.Add(time.Duration(i) * time.Second),
			Event: "call.state", CallID: idRinging, From: "waiting", To: "ringing"})
	}
	return s
}

func (s *fakeService) emit(ev calld.Event) {
	s.mu.Lock()
	ev.Seq = uint64(len(s.journal) + 1)
	s.journal = append(s.journal, ev)
	s.mu.Unlock()
	s.hub.Publish(ev)
}

func (s *fakeService) Status(context.Context) (calld.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status != nil {
		return *s.status, nil
	}
	return calld.Status{Version: "1.2.3", Ready: true,
		Telegram: calld.TelegramStatus{Connected: true, Authorized: true, SelfID: 9007199254740997, DC: 4},
		Updates:  calld.UpdatesState{Pts: 101, Qts: 7, Seq: 9, Date: 1714557600},
		Calls:    calld.CallCounts{Live: 2, Total: 3}}, nil
}

func (s *fakeService) Calls(_ context.Context, all bool) ([]calld.Call, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []calld.Call
	for _, id := range slices.Backward(s.order) {
		if c := s.calls[id]; all || c.State.Live() {
			out = append(out, c)
		}
	}
	return out, nil
}

func (s *fakeService) Call(_ context.Context, id int64) (calld.Call, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.calls[id]
	if !ok {
		return c, calld.Errorf(calld.ENOTFOUND, "call %d not found", id)
	}
	return c, nil
}

func (s *fakeService) Discard(ctx context.Context, id int64, reason calld.Reason) (calld.Call, error) {
	c, err := s.Call(ctx, id)
	if err != nil {
		return c, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reasons = append(s.reasons, reason)
	if !c.State.Live() {
		return c, calld.Errorf(calld.ECONFLICT, "call %d is already ended", id)
	}
	if reason == calld.ReasonAuto {
		reason = calld.ReasonBusy
	}
	c.State, c.Reason, c.EndedBy = calld.StateEnded, reason, calld.EndedByLocal
	s.calls[id] = c
	return c, nil
}

func (s *fakeService) Place(_ context.Context, peer string, video bool, _ *calld.ProtocolOverride) (calld.Call, error) {
	if peer == "@nobody" {
		return calld.Call{}, calld.Errorf("CALL_PEER_INVALID", "the user cannot be called")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.places = append(s.places, calld.PlaceRequest{Peer: peer, Video: video})
	s.next++
	c := calld.Call{ID: s.next, Direction: calld.DirectionOutgoing, PeerID: 4004, State: calld.StateWaiting, Video: video, CreatedAt: tp(t0)}
	if name, ok := strings.CutPrefix(peer, "@"); ok {
		c.PeerUsername = name // as the daemon records a call placed to @name
	}
	s.calls[c.ID] = c
	s.order = append(s.order, c.ID)
	return c, nil
}

func (s *fakeService) Accept(ctx context.Context, id int64, _ *calld.ProtocolOverride) (calld.Call, error) {
	c, err := s.Call(ctx, id)
	if err != nil {
		return c, err
	}
	if c.State != calld.StateRinging {
		return c, calld.Errorf(calld.ECONFLICT, "call %d is not ringing", id)
	}
	c.State = calld.StateAccepting
	s.mu.Lock()
	s.calls[id] = c
	s.mu.Unlock()
	return c, nil
}

func (s *fakeService) Media(_ context.Context, id int64) (calld.Media, error) {
	if id != idActive {
		return calld.Media{}, calld.Errorf(calld.ENOTFOUND, "no media")
	}
	return calld.Media{Key: []byte{1, 2, 3}, KeyFingerprint: -5, Outgoing: true,
		Protocol:    calld.Protocol{UDPP2P: true, UDPReflector: true, MinLayer: 65, MaxLayer: 92, LibraryVersions: []string{"9.0.0"}},
		Connections: []calld.MediaConnection{{ID: 55, IP: "192.0.2.1", Port: 443, PeerTag: []byte{7}}}}, nil
}

func (s *fakeService) SetConnection(ctx context.Context, id, conn int64) (calld.Call, error) {
	c, err := s.Call(ctx, id)
	if err != nil {
		return c, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns = append(s.conns, conn)
	c.ConnectionID = conn
	s.calls[id] = c
	return c, nil
}

func (s *fakeService) Journal(since uint64, fn func(calld.Event) error) error {
	s.mu.Lock()
	snap := slices.Clone(s.journal)
	s.mu.Unlock()
	for _, ev := range snap {
		if ev.Seq > since {
			if err := fn(ev); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *fakeService) Login(_ context.Context, step calld.LoginStep) (calld.LoginState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case step == calld.LoginStep{}:
	case step.Phone != "" && s.login.State == calld.LoginPhoneNeeded:
		s.login = calld.LoginState{State: calld.LoginCodeSent, Phone: "+1*****67", CodeVia: "app"}
	case step.Code != "" && s.login.State == calld.LoginCodeSent:
		if step.Code != "24680" {
			return s.login, calld.Errorf("PHONE_CODE_INVALID", "the code is wrong")
		}
		s.login = calld.LoginState{State: calld.LoginPasswordNeeded, PasswordHint: "the usual"}
	case step.Password != "" && s.login.State == calld.LoginPasswordNeeded:
		if step.Password != "s3cret" {
			return s.login, calld.Errorf("PASSWORD_HASH_INVALID", "the password is wrong")
		}
		s.login = calld.LoginState{State: calld.LoginAuthorized, SelfID: 9007199254740997}
	default:
		return s.login, calld.Errorf(calld.ECONFLICT, "login is at %s", s.login.State)
	}
	return s.login, nil
}

// daemon is a control server on a temporary socket.
type testDaemon struct {
	svc    *fakeService
	hub    *control.Hub
	socket string
	stop   func() // stops the server (once)
}

func startDaemon(t *testing.T) *testDaemon {
	t.Helper()
	return startDaemonAt(t, filepath.Join(t.TempDir(), "d.sock"))
}

// startDaemonAt starts a control server on socket; it stops at the end
// of the test, or at stop.
func startDaemonAt(t *testing.T, socket string) *testDaemon {
	t.Helper()
	hub := control.NewHub(16)
	svc := newFakeService(hub)
	srv := control.NewServer(svc, hub, control.Options{})
	l, err := control.Listen(socket, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	d := &testDaemon{svc: svc, hub: hub, socket: socket}
	d.stop = sync.OnceFunc(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	t.Cleanup(d.stop)
	return d
}

// testClock is the CLI's clock in tests: 75 s after idActive became
// active.
var testClock = neo.NewTime(t0.Add(time.Hour + 85*time.Second))

// runCLI runs the binary's dispatch in-process.
func runCLI(ctx context.Context, args []string, env map[string]string, stdin string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	sio := stdio{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut,
		getenv: func(k string) string { return env[k] }, clock: testClock}
	code = run(ctx, args, sio)
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// setStatus changes the status the fake daemon reports.
func (s *fakeService) setStatus(change func(*calld.Status)) {
	st, _ := s.Status(context.Background())
	change(&st)
	s.mu.Lock()
	s.status = &st
	s.mu.Unlock()
}
