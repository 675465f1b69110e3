package sim

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"
)

// fakeClock is the server clock of the tests: it moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// The shared simulator and the stored session (auth key) every test
// client reuses, so that only the first client pays for a handshake.
var (
	sharedOnce  sync.Once
	shared      *Server
	sharedErr   error
	sharedClock = &fakeClock{t: time.Unix(1_700_000_000, 0)}
	sharedStore = &session.StorageMemory{}
)

// testLogger logs to the file named by $SIM_TEST_LOG, else nowhere.
func testLogger() *zap.Logger {
	path := os.Getenv("SIM_TEST_LOG")
	if path == "" {
		return zap.NewNop()
	}
	cfg := zap.NewDevelopmentConfig()
	cfg.OutputPaths = []string{path}
	l, err := cfg.Build()
	if err != nil {
		return zap.NewNop()
	}
	return l
}

// closeShared closes the simulator the tests share, if one was started.
func closeShared() {
	if shared != nil {
		_ = shared.Close()
	}
}

func sharedServer(t testing.TB) *Server {
	t.Helper()
	sharedOnce.Do(func() {
		shared, sharedErr = New(Options{Authorized: true, Now: sharedClock.Now, ReceiveTimeout: 7 * time.Second, RingTimeout: 33 * time.Second, Logger: testLogger().Named("server")})
		if sharedErr == nil {
			sharedErr = shared.Listen(context.Background(), "127.0.0.1:0")
		}
	})
	if sharedErr != nil {
		t.Fatalf("shared server: %v", sharedErr)
	}
	return shared
}

// testCtx is a context bounded so a broken server fails the test instead
// of hanging it.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

type testClient struct {
	api     *tg.Client
	client  *telegram.Client
	updates chan tg.UpdatesClass
}

// startClient runs a gotd client (api_id 1) against srv until the test
// ends.
func startClient(t testing.TB, srv *Server, storage session.Storage, tune ...func(*telegram.Options)) *testClient {
	t.Helper()
	return startClientAs(t, srv, storage, 1, tune...)
}

// startClientAs is startClient with the given api_id.
func startClientAs(t testing.TB, srv *Server, storage session.Storage, apiID int, tune ...func(*telegram.Options)) *testClient {
	t.Helper()
	opts := srv.ClientOptions()
	opts.SessionStorage = storage
	opts.Logger = testLogger().Named("client")
	for _, f := range tune {
		f(&opts)
	}
	tc := &testClient{updates: make(chan tg.UpdatesClass, 1000)}
	opts.UpdateHandler = telegram.UpdateHandlerFunc(func(ctx context.Context, u tg.UpdatesClass) error {
		select {
		case tc.updates <- u:
		default: // full (benchmarks do not read): a test's next() times out
		}
		return nil
	})
	tc.client = telegram.NewClient(apiID, "hash", opts)
	tc.api = tc.client.API()

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- tc.client.Run(ctx, func(ctx context.Context) error {
			close(ready)
			<-ctx.Done()
			return nil
		})
	}()
	deadline := testCtx(t)
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("client stopped before ready: %v", err)
	case <-deadline.Done():
		cancel()
		t.Fatal("client not ready in time")
	}
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return tc
}

// next waits for the next pushed Updates matching pred, skipping others.
func (tc *testClient) next(t testing.TB, pred func(tg.UpdatesClass) bool) tg.UpdatesClass {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		select {
		case u := <-tc.updates:
			if pred == nil || pred(u) {
				return u
			}
		case <-ctx.Done():
			t.Fatal("no matching update pushed in time")
			return nil
		}
	}
}

// drain forgets every update received so far.
func (tc *testClient) drain() {
	for {
		select {
		case <-tc.updates:
		default:
			return
		}
	}
}

// phoneCallOf returns the PhoneCall of an updates{updatePhoneCall} push.
func phoneCallOf(u tg.UpdatesClass) tg.PhoneCallClass {
	c, ok := u.(*tg.Updates)
	if !ok {
		return nil
	}
	for _, x := range c.Updates {
		if pc, ok := x.(*tg.UpdatePhoneCall); ok {
			return pc.PhoneCall
		}
	}
	return nil
}

func seqOf(u tg.UpdatesClass) int {
	if c, ok := u.(*tg.Updates); ok {
		return c.Seq
	}
	return -1
}
