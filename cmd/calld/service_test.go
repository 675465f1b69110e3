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

	"github.com/calld/calld"
	"github.com/calld/calld/internal/control"
	"github.com/calld/calld/internal/fsm"
	"github.com/calld/calld/internal/store"
)

const (
	idRinging int64 = 9007199254740993 // not exact as a float64
	idActive  int64 = -4000000000000000003
	idEnded   int64 = 77
)

var t0 = time.Date(2024, 5, 1, 10, 0, 0, 500_000_000, time.UTC)

func tp(t time.Time) *time.Time { return &t }

// fakeService is a small in-memory control.Service for the CLI tests.
type fakeService struct {
	hub *control.Hub

	mu      sync.Mutex
	calls   map[int64]fsm.Call
	order   []int64
	journal []store.Event
	login   control.LoginState
	next    int64
	places  []control.PlaceRequest
	reasons []fsm.Reason
}

func newFakeService(hub *control.Hub) *fakeService {
	s := &fakeService{hub: hub, calls: map[int64]fsm.Call{}, next: 500, login: control.LoginState{State: control.LoginPhoneNeeded}}
	for _, c := range []fsm.Call{
		{ID: idEnded, Direction: fsm.Incoming, PeerID: 3003, State: fsm.Ended, CreatedAt: tp(t0), EndedAt: tp(t0.Add(time.Minute)),
			Duration: 42, Reason: fsm.ReasonHangup, EndedBy: fsm.ByRemote},
		{ID: idActive, Direction: fsm.Outgoing, PeerID: 2002, State: fsm.Active, Video: true, CreatedAt: tp(t0.Add(time.Hour)),
			ConnectionID: 55, Connections: []fsm.Connection{{ID: 55, IP: "192.0.2.1", IPv6: "2001:db8::1", Port: 443}}},
		{ID: idRinging, Direction: fsm.Incoming, PeerID: 1001, State: fsm.Ringing, CreatedAt: tp(t0.Add(2 * time.Hour))},
	} {
		s.calls[c.ID] = c
		s.order = append(s.order, c.ID)
	}
	for i := 1; i <= 3; i++ {
		s.journal = append(s.journal, store.Event{Seq: uint64(i), At: t0.Add(time.Duration(i) * time.Second),
			Event: "call.state", CallID: idRinging, From: "waiting", To: "ringing"})
	}
	return s
}

func (s *fakeService) emit(ev store.Event) {
	s.mu.Lock()
	ev.Seq = uint64(len(s.journal) + 1)
	s.journal = append(s.journal, ev)
	s.mu.Unlock()
	s.hub.Publish(ev)
}

func (s *fakeService) Status(context.Context) (control.Status, error) {
	return control.Status{Version: "1.2.3", Ready: true,
		Telegram: control.TelegramStatus{Connected: true, Authorized: true, SelfID: 9007199254740997, DC: 4},
		Updates:  store.UpdatesState{Pts: 101, Qts: 7, Seq: 9, Date: 1714557600},
		Calls:    control.CallCounts{Live: 2, Total: 3}}, nil
}

func (s *fakeService) Calls(_ context.Context, all bool) ([]fsm.Call, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []fsm.Call
	for _, id := range slices.Backward(s.order) {
		if c := s.calls[id]; all || c.State.Live() {
			out = append(out, c)
		}
	}
	return out, nil
}

func (s *fakeService) Call(_ context.Context, id int64) (fsm.Call, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.calls[id]
	if !ok {
		return c, calld.Errorf(calld.ENOTFOUND, "call %d not found", id)
	}
	return c, nil
}

func (s *fakeService) Discard(ctx context.Context, id int64, reason fsm.Reason) (fsm.Call, error) {
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
	if reason == fsm.ReasonAuto {
		reason = fsm.ReasonBusy
	}
	c.State, c.Reason, c.EndedBy = fsm.Ended, reason, fsm.ByLocal
	s.calls[id] = c
	return c, nil
}

func (s *fakeService) Place(_ context.Context, peer string, video bool, _ *control.ProtocolOverride) (fsm.Call, error) {
	if peer == "@nobody" {
		return fsm.Call{}, calld.Errorf("CALL_PEER_INVALID", "the user cannot be called")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.places = append(s.places, control.PlaceRequest{Peer: peer, Video: video})
	s.next++
	c := fsm.Call{ID: s.next, Direction: fsm.Outgoing, PeerID: 4004, State: fsm.Waiting, Video: video, CreatedAt: tp(t0)}
	s.calls[c.ID] = c
	s.order = append(s.order, c.ID)
	return c, nil
}

func (s *fakeService) Accept(ctx context.Context, id int64, _ *control.ProtocolOverride) (fsm.Call, error) {
	c, err := s.Call(ctx, id)
	if err != nil {
		return c, err
	}
	if c.State != fsm.Ringing {
		return c, calld.Errorf(calld.ECONFLICT, "call %d is not ringing", id)
	}
	c.State = fsm.Accepting
	s.mu.Lock()
	s.calls[id] = c
	s.mu.Unlock()
	return c, nil
}

func (s *fakeService) Media(context.Context, int64) (control.Media, error) {
	return control.Media{}, calld.Errorf(calld.ENOTFOUND, "no media")
}

func (s *fakeService) SetConnection(ctx context.Context, id, _ int64) (fsm.Call, error) {
	return s.Call(ctx, id)
}

func (s *fakeService) Journal(since uint64, fn func(store.Event) error) error {
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

func (s *fakeService) Login(_ context.Context, step control.LoginStep) (control.LoginState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case step == control.LoginStep{}:
	case step.Phone != "" && s.login.State == control.LoginPhoneNeeded:
		s.login = control.LoginState{State: control.LoginCodeSent, Phone: "+1*****67", CodeVia: "app"}
	case step.Code != "" && s.login.State == control.LoginCodeSent:
		if step.Code != "24680" {
			return s.login, calld.Errorf("PHONE_CODE_INVALID", "the code is wrong")
		}
		s.login = control.LoginState{State: control.LoginPasswordNeeded, PasswordHint: "the usual"}
	case step.Password != "" && s.login.State == control.LoginPasswordNeeded:
		if step.Password != "s3cret" {
			return s.login, calld.Errorf("PASSWORD_HASH_INVALID", "the password is wrong")
		}
		s.login = control.LoginState{State: control.LoginAuthorized, SelfID: 9007199254740997}
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
}

func startDaemon(t *testing.T) *testDaemon {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "d.sock")
	hub := control.NewHub(16)
	svc := newFakeService(hub)
	srv := control.NewServer(svc, hub, control.Options{})
	l, err := control.Listen(socket, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &testDaemon{svc: svc, hub: hub, socket: socket}
}

// runCLI runs the binary's dispatch in-process.
func runCLI(ctx context.Context, args []string, env map[string]string, stdin string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	sio := stdio{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut,
		getenv: func(k string) string { return env[k] }}
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
