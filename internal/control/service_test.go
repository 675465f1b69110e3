package control

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/calld/calld"
	"github.com/calld/calld/client"
)

// Fixture ids: a ringing incoming call whose id is not exact in a
// float64, an active outgoing call with a negative id, an ended call.
const (
	idRinging int64 = 9007199254740993 // 2^53 + 1
	idActive  int64 = -5000000000000000001
	idEnded   int64 = 77
	idUnknown int64 = 123456
)

var t0 = time.Date(2024, 5, 1, 10, 0, 0, 123456789, time.UTC)

// memService is an in-memory Service with the daemon's observable rules
// (enough to exercise every route's success and error shapes).
type memService struct {
	hub *Hub

	mu      sync.Mutex
	calls   map[int64]calld.Call
	order   []int64 // creation order
	journal []calld.Event
	media   map[int64]calld.Media
	login   calld.LoginState
	nextID  int64

	panicStatus  bool
	degrade      func(*calld.Status) // if set, changes what Status answers
	journalErr   error
	duringReplay func(seq uint64) // called after each replayed event
	discardGate  chan struct{}    // if set, Discard waits for it to close
	discardEnter chan struct{}    // if set, Discard closes it on entry
}

func ptr(t time.Time) *time.Time { return &t }

func newMemService(hub *Hub) *memService {
	s := &memService{
		hub:    hub,
		calls:  map[int64]calld.Call{},
		media:  map[int64]calld.Media{},
		login:  calld.LoginState{State: calld.LoginPhoneNeeded},
		nextID: 1000,
	}
	plus1 := time.FixedZone("UTC+1", 3600)
	s.add(calld.Call{ID: idEnded, AccessHash: -1, Direction: calld.DirectionIncoming, PeerID: 1003,
		State: calld.StateEnded, CreatedAt: ptr(t0), EndedAt: ptr(t0.Add(30 * time.Second)),
		Reason: calld.ReasonMissed, EndedBy: calld.EndedByRemote})
	s.add(calld.Call{ID: idActive, AccessHash: 8, Direction: calld.DirectionOutgoing, PeerID: 1002,
		State: calld.StateActive, CreatedAt: ptr(t0.Add(time.Minute)), ActiveAt: ptr(t0.Add(2 * time.Minute).In(plus1)),
		Connections: []calld.Connection{{ID: 55, IP: "192.0.2.1", Port: 443}, {ID: 56, IP: "192.0.2.2", Port: 443}}})
	s.add(calld.Call{ID: idRinging, AccessHash: 9007199254740995, Direction: calld.DirectionIncoming, PeerID: 1001,
		State: calld.StateRinging, CreatedAt: ptr(t0.Add(3 * time.Minute)), RingingAt: ptr(t0.Add(3 * time.Minute))})
	s.media[idActive] = calld.Media{
		Key: []byte{0, 1, 2, 0xfe, 0xff}, KeyFingerprint: -7, Outgoing: true,
		Protocol:    calld.Protocol{UDPP2P: true, UDPReflector: true, MinLayer: 65, MaxLayer: 92, LibraryVersions: []string{"4.0.0"}},
		Connections: []calld.MediaConnection{{ID: 55, IP: "192.0.2.1", Port: 443, PeerTag: []byte("tag"), TURN: true, Username: "u", Password: "p"}},
	}
	for i := 1; i <= 5; i++ {
		s.journal = append(s.journal, calld.Event{Seq: uint64(i), At: t0.Add(time.Duration(i) * time.Second).In(plus1),
			Event: "call.state", CallID: idRinging, From: "waiting", To: "ringing"})
	}
	return s
}

func (s *memService) add(c calld.Call) {
	s.calls[c.ID] = c
	s.order = append(s.order, c.ID)
}

// emit appends an event to the journal and then publishes it, as the
// daemon does (commit, then publish).
func (s *memService) emit(callID int64, from, to string) calld.Event {
	s.mu.Lock()
	ev := calld.Event{Seq: uint64(len(s.journal) + 1), At: t0, Event: "call.state", CallID: callID, From: from, To: to}
	s.journal = append(s.journal, ev)
	s.mu.Unlock()
	s.hub.Publish(ev)
	return ev
}

func (s *memService) Status(context.Context) (calld.Status, error) {
	if s.panicStatus {
		panic("status exploded")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	live := 0
	for _, c := range s.calls {
		if c.State.Live() {
			live++
		}
	}
	st := calld.Status{Version: "test", Ready: true,
		Telegram: calld.TelegramStatus{Connected: true, Authorized: true, SelfID: 9007199254740997, DC: 2},
		Updates:  calld.UpdatesState{Pts: 10, Qts: 2, Seq: 3, Date: 1714557600},
		Calls:    calld.CallCounts{Live: live, Total: len(s.calls)}}
	if s.degrade != nil {
		s.degrade(&st)
	}
	return st, nil
}

func (s *memService) Calls(_ context.Context, all bool) ([]calld.Call, error) {
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

func (s *memService) get(id int64) (calld.Call, error) {
	c, ok := s.calls[id]
	if !ok {
		return calld.Call{}, calld.Errorf(calld.ENOTFOUND, "call %d not found", id)
	}
	return c, nil
}

func (s *memService) Call(_ context.Context, id int64) (calld.Call, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.get(id)
}

func (s *memService) Discard(_ context.Context, id int64, reason calld.Reason) (calld.Call, error) {
	if s.discardEnter != nil {
		close(s.discardEnter)
	}
	if s.discardGate != nil {
		<-s.discardGate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.get(id)
	if err != nil {
		return c, err
	}
	if !c.State.Live() || c.State == calld.StateHangingUp {
		return c, calld.Errorf(calld.ECONFLICT, "call %d is already ended", id)
	}
	if reason == calld.ReasonAuto {
		reason = calld.ReasonHangup
	}
	c.State, c.Reason, c.EndedBy, c.EndedAt = calld.StateEnded, reason, calld.EndedByLocal, ptr(t0.Add(time.Hour))
	s.calls[id] = c
	return c, nil
}

func (s *memService) Place(_ context.Context, peer string, video bool, _ *calld.ProtocolOverride) (calld.Call, error) {
	if peer == "@invalid_peer" {
		return calld.Call{}, calld.Errorf("CALL_PEER_INVALID", "the peer cannot be called")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	c := calld.Call{ID: s.nextID, Direction: calld.DirectionOutgoing, PeerID: 1, State: calld.StateWaiting, Video: video, CreatedAt: ptr(t0)}
	s.add(c)
	return c, nil
}

func (s *memService) Accept(_ context.Context, id int64, _ *calld.ProtocolOverride) (calld.Call, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.get(id)
	if err != nil {
		return c, err
	}
	if c.State != calld.StateRinging || c.Direction != calld.DirectionIncoming {
		return c, calld.Errorf(calld.ECONFLICT, "call %d is %s, not ringing here", id, c.State)
	}
	c.State = calld.StateAccepting
	s.calls[id] = c
	return c, nil
}

func (s *memService) Media(_ context.Context, id int64) (calld.Media, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.get(id)
	if err != nil {
		return calld.Media{}, err
	}
	if c.State != calld.StateActive {
		return calld.Media{}, calld.Errorf(calld.ECONFLICT, "call %d is not active", id)
	}
	return s.media[id], nil
}

func (s *memService) SetConnection(_ context.Context, id, connID int64) (calld.Call, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.get(id)
	if err != nil {
		return c, err
	}
	if !slices.ContainsFunc(c.Connections, func(k calld.Connection) bool { return k.ID == connID }) {
		return c, calld.Errorf(calld.EINVALID, "connection %d is not one of call %d's", connID, id)
	}
	c.ConnectionID = connID
	s.calls[id] = c
	return c, nil
}

func (s *memService) Journal(since uint64, fn func(calld.Event) error) error {
	if s.journalErr != nil {
		return s.journalErr
	}
	s.mu.Lock()
	snap := slices.Clone(s.journal)
	s.mu.Unlock()
	if last := uint64(len(snap)); since > last { // as store.Tx.Events
		return calld.Errorf(calld.EINVALID, "since %d is beyond the journal: the last event's seq is %d", since, last)
	}
	for _, ev := range snap {
		if ev.Seq <= since {
			continue
		}
		if err := fn(ev); err != nil {
			return err
		}
		if s.duringReplay != nil {
			s.duringReplay(ev.Seq)
		}
	}
	return nil
}

func (s *memService) Login(_ context.Context, step calld.LoginStep) (calld.LoginState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case step == calld.LoginStep{}:
	case step.Phone != "" && s.login.State == calld.LoginPhoneNeeded:
		s.login = calld.LoginState{State: calld.LoginCodeSent, Phone: "+1******89", CodeVia: "app"}
	case step.Code != "" && s.login.State == calld.LoginCodeSent:
		if step.Code != "12345" {
			return s.login, calld.Errorf("PHONE_CODE_INVALID", "the code is invalid")
		}
		s.login = calld.LoginState{State: calld.LoginPasswordNeeded, PasswordHint: "pet"}
	case step.Password != "" && s.login.State == calld.LoginPasswordNeeded:
		if step.Password != "hunter2" {
			return s.login, calld.Errorf("PASSWORD_HASH_INVALID", "wrong password")
		}
		s.login = calld.LoginState{State: calld.LoginAuthorized, SelfID: 9007199254740997}
	default:
		return s.login, calld.Errorf(calld.ECONFLICT, "login is at %s", s.login.State)
	}
	return s.login, nil
}

// testEnv is a server on a real Unix socket in a temporary directory.
type testEnv struct {
	svc    *memService
	hub    *Hub
	srv    *Server
	socket string
	http   *http.Client // raw HTTP over the socket
	client *client.Client
}

// start serves a fresh memService. opts may set Cred etc.
func start(t *testing.T, opts Options, hubBuffer int) *testEnv {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "c.sock")
	if len(socket) > 100 {
		t.Fatalf("socket path too long for a Unix socket: %s", socket)
	}
	hub := NewHub(hubBuffer)
	svc := newMemService(hub)
	srv := NewServer(svc, hub, opts)
	l, err := Listen(socket, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	env := &testEnv{svc: svc, hub: hub, srv: srv, socket: socket, client: client.New(socket),
		http: &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		}}}}
	t.Cleanup(func() {
		env.client.Close()
		env.http.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve returned %v, want nil after Shutdown", err)
		}
		if _, err := os.Lstat(socket); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket file left behind after shutdown: %v", err)
		}
	})
	return env
}

// uidAs returns a Cred function that reads the real SO_PEERCRED (and
// checks it is this process) and then pretends the peer has uid.
func uidAs(t *testing.T, uid int) func(net.Conn) (Cred, error) {
	return func(c net.Conn) (Cred, error) {
		cred, err := PeerCred(c)
		if err != nil {
			return cred, err
		}
		if cred.PID != os.Getpid() || cred.UID != os.Getuid() {
			t.Errorf("SO_PEERCRED = %+v, want pid %d uid %d", cred, os.Getpid(), os.Getuid())
		}
		cred.UID = uid
		return cred, nil
	}
}

func credError(net.Conn) (Cred, error) { return Cred{}, fmt.Errorf("no credentials here") }
