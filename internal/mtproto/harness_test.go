package mtproto

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotd/td/session"
	"github.com/gotd/td/tg"
	"github.com/rs/zerolog"

	"github.com/calld/calld/internal/sim"
)

// One simulator for the package's loopback tests, and one stored session
// (auth key) that clients clone, so only the first client pays for a
// handshake (see DESIGN "Keeping the suite fast").
var (
	sharedOnce sync.Once
	shared     *sim.Server
	sharedErr  error

	warmOnce    sync.Once
	warmSession *session.StorageMemory
	warmErr     error
)

const (
	testReceiveTimeout = 7 * time.Second
	testRingTimeout    = 33 * time.Second
)

// closeShared closes the simulator the tests share, if one was started.
func closeShared() {
	if shared != nil {
		_ = shared.Close()
	}
}

func sharedSim(t testing.TB) *sim.Server {
	t.Helper()
	sharedOnce.Do(func() {
		shared, sharedErr = sim.New(sim.Options{
			Authorized:     true,
			ReceiveTimeout: testReceiveTimeout,
			RingTimeout:    testRingTimeout,
		})
		if sharedErr == nil {
			sharedErr = shared.Listen(context.Background(), "127.0.0.1:0")
		}
	})
	if sharedErr != nil {
		t.Fatalf("shared sim: %v", sharedErr)
	}
	return shared
}

// testCtx bounds a test so a broken server fails it instead of hanging it.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// simConfig is a Config pointing at srv through DCOptions and its PEM key.
func simConfig(t testing.TB, srv *sim.Server, addr string) Config {
	t.Helper()
	keys, err := ParsePublicKeys(srv.PublicKeyPEM())
	if err != nil {
		t.Fatalf("sim public key: %v", err)
	}
	return Config{
		APIID:      17349,
		APIHash:    "test-api-hash",
		DC:         srv.DC(),
		DCOptions:  []DCOption{{ID: srv.DC(), Addr: addr}},
		PublicKeys: keys,
		Log:        zerolog.Nop(),
	}
}

// warmStorage returns a copy of a session whose auth key the shared sim
// already knows.
func warmStorage(t testing.TB) *session.StorageMemory {
	t.Helper()
	srv := sharedSim(t)
	warmOnce.Do(func() {
		st := new(session.StorageMemory)
		cfg := simConfig(t, srv, srv.Addr())
		cfg.Session = st
		c, err := New(cfg)
		if err != nil {
			warmErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		warmErr = c.Run(ctx, func(context.Context) error { return nil })
		warmSession = st
	})
	if warmErr != nil {
		t.Fatalf("warm session: %v", warmErr)
	}
	return warmSession.Clone()
}

// sinkEvent is what recordSink saw.
type sinkEvent struct {
	updates   tg.UpdatesClass
	own       bool
	connected bool
	lost      error // Disconnected
}

// recordSink forwards everything to a channel; onOwn (if set) runs inside
// Updates for RPC results.
type recordSink struct {
	ch    chan sinkEvent
	onOwn func(u tg.UpdatesClass)
}

func newRecordSink() *recordSink { return &recordSink{ch: make(chan sinkEvent, 1000)} }

func (s *recordSink) Updates(_ context.Context, u tg.UpdatesClass, own bool) error {
	if own && s.onOwn != nil {
		s.onOwn(u)
	}
	s.ch <- sinkEvent{updates: u, own: own}
	return nil
}

func (s *recordSink) Connected(context.Context) { s.ch <- sinkEvent{connected: true} }
func (s *recordSink) Disconnected(err error) {
	if err == nil {
		err = errors.New("nil error")
	}
	s.ch <- sinkEvent{lost: err}
}

// next waits for the first event that match accepts, skipping others.
func (s *recordSink) next(t testing.TB, what string, match func(sinkEvent) bool) sinkEvent {
	t.Helper()
	timeout := time.NewTimer(20 * time.Second) // a failure guard, not a sleep
	defer timeout.Stop()
	for {
		select {
		case e := <-s.ch:
			if match(e) {
				return e
			}
		case <-timeout.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// phoneCallUpdate finds an updatePhoneCall of type T in pushed updates.
func phoneCallOf[T tg.PhoneCallClass](e sinkEvent) (T, bool) {
	var zero T
	if e.updates == nil {
		return zero, false
	}
	var list []tg.UpdateClass
	switch u := e.updates.(type) {
	case *tg.Updates:
		list = u.Updates
	case *tg.UpdatesCombined:
		list = u.Updates
	case *tg.UpdateShort:
		list = []tg.UpdateClass{u.Update}
	}
	for _, x := range list {
		if upc, ok := x.(*tg.UpdatePhoneCall); ok {
			if pc, ok := upc.PhoneCall.(T); ok {
				return pc, true
			}
		}
	}
	return zero, false
}

// runClient starts c.Run, talking to srv, in the background and returns
// once the connection is ready; the client stops when the test ends.
func runClient(t testing.TB, c *Client, srv *sim.Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	selves := srv.Count("users.getUsers")
	go func() {
		done <- c.Run(ctx, func(ctx context.Context) error {
			close(ready)
			<-ctx.Done()
			return nil
		})
	}()
	t.Cleanup(func() {
		// Once connected, gotd asks for its own user (users.getUsers)
		// to subscribe to updates. A client stopped while that request
		// is starting meets gotd v0.93.0's teardown race
		// (internal/gotdrace: the request's WaitGroup.Add against the
		// closing engine's Wait): let it reach the server first.
		wait, stop := context.WithTimeout(context.Background(), 30*time.Second)
		defer stop()
		if err := srv.WaitCount(wait, "users.getUsers", selves+1); err != nil {
			t.Logf("gotd's users.getUsers did not reach the server before the stop: %v", err)
		}
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("client run: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("client stopped before ready: %v", err)
	case <-testCtx(t).Done():
		t.Fatal("client not ready in time")
	}
}

// newSimClient builds and runs a client on the shared sim with a warm
// session; mod may adjust the config.
func newSimClient(t testing.TB, sink UpdatesSink, mod func(*Config)) (*Client, *sim.Server) {
	t.Helper()
	srv := sharedSim(t)
	cfg := simConfig(t, srv, srv.Addr())
	cfg.Session = warmStorage(t)
	cfg.Updates = sink
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runClient(t, c, srv)
	return c, srv
}

// tcpProxy forwards loopback connections to target and counts them.
type tcpProxy struct {
	ln      net.Listener
	target  string
	accepts atomic.Int64
}

func newTCPProxy(t testing.TB, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target}
	t.Cleanup(func() { _ = ln.Close() })
	go p.serve()
	return p
}

func (p *tcpProxy) Addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepts.Add(1)
		go func() {
			out, err := net.Dial("tcp", p.target)
			if err != nil {
				_ = in.Close()
				return
			}
			var once sync.Once
			closeBoth := func() { once.Do(func() { _ = in.Close(); _ = out.Close() }) }
			go func() { _, _ = io.Copy(out, in); closeBoth() }()
			_, _ = io.Copy(in, out)
			closeBoth()
		}()
	}
}
