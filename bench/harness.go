// Package bench owns calld's end-to-end benchmark suite (bench_test.go,
// run.sh) and the harness it shares with the reliability tests: a simulated
// Telegram on loopback, a real daemon (daemon.Main) on a temporary state
// file and control socket, and a Tracker that follows the daemon's journal
// through GET /v1/events so that tests and benchmarks wait on observable
// call states instead of sleeping.
//
// Run the suite with
//
//	go test ./bench -run '^$' -bench . -benchmem
//
// or `bench/run.sh suite`, which writes docs/bench/e2e-<date>.txt. The flag
// -bench.full runs the large sizes (see bench_test.go).
package bench

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/calld/calld/client"
	"github.com/calld/calld/internal/config"
	"github.com/calld/calld/internal/daemon"
	"github.com/calld/calld/internal/sim"
)

// NewSim starts a simulated Telegram (every auth key logged in) on
// 127.0.0.1 and closes it when tb ends.
func NewSim(tb testing.TB) *sim.Server {
	tb.Helper()
	srv, err := sim.New(sim.Options{Authorized: true})
	if err != nil {
		tb.Fatalf("simulator: %v", err)
	}
	if err := srv.Listen(context.Background(), "127.0.0.1:0"); err != nil {
		tb.Fatalf("simulator: %v", err)
	}
	tb.Cleanup(func() { _ = srv.Close() })
	return srv
}

// Config is the daemon configuration the suite uses: state file and socket
// in dir, JSON logs, incoming calls ring, no busy rejection (many calls are
// live at once), and a ring timeout long enough that no benchmark call
// times out.
func Config(dir string) config.Config {
	cfg := config.Default()
	cfg.State.Path = filepath.Join(dir, "calld.db")
	cfg.Control.Socket = filepath.Join(dir, "calld.sock")
	cfg.Log.Format = config.FormatJSON
	cfg.Policy.RejectWhenBusy = false
	cfg.Policy.RingTimeout = config.Duration{Duration: 30 * time.Minute}
	return cfg
}

// Daemon is a running in-process daemon.
type Daemon struct {
	Main   *daemon.Main
	Config config.Config
	Client *client.Client
	// Started is when Run was called; ReadyAfter how long Ready took.
	Started    time.Time
	ReadyAfter time.Duration

	stop    context.CancelFunc
	done    chan error
	stopped bool
	err     error
}

// StartDaemon runs a daemon with cfg against srv and waits (at most 60 s)
// until it is ready. logs receives its JSON logs (nil: discarded). The
// daemon is stopped when tb ends, if Stop was not called before.
func StartDaemon(tb testing.TB, srv *sim.Server, cfg config.Config, logs io.Writer) *Daemon {
	tb.Helper()
	d, err := Start(srv, cfg, logs, 60*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = d.Stop() })
	return d
}

// Start is StartDaemon without testing.TB: it returns an error when the
// daemon fails or is not ready within timeout.
func Start(srv *sim.Server, cfg config.Config, logs io.Writer, timeout time.Duration) (*Daemon, error) {
	if logs == nil {
		logs = io.Discard
	}
	m := daemon.New(cfg)
	m.Stderr = logs
	m.Sim = &daemon.SimTarget{Addr: srv.Addr(), DC: srv.DC(), PublicKey: srv.PublicKeyPEM()}
	ctx, stop := context.WithCancel(context.Background())
	d := &Daemon{Main: m, Config: cfg, stop: stop, done: make(chan error, 1), Started: time.Now()}
	go func() { d.done <- m.Run(ctx) }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-m.Ready():
		d.ReadyAfter = time.Since(d.Started)
	case err := <-d.done:
		stop()
		return nil, fmt.Errorf("daemon stopped before it was ready: %v", err)
	case <-t.C:
		stop()
		<-d.done
		return nil, fmt.Errorf("daemon not ready after %s", timeout)
	}
	d.Client = client.New(cfg.Control.Socket)
	return d, nil
}

// Stop stops the daemon gracefully and returns Run's error. Calling it
// again returns the same error.
func (d *Daemon) Stop() error {
	if d.stopped {
		return d.err
	}
	d.stopped = true
	d.Client.Close()
	d.stop()
	d.err = <-d.done
	return d.err
}
