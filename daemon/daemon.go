// Package daemon wires the parts of calld into one running daemon: it opens
// the store, connects the MTProto client (to Telegram or to the embedded
// simulator), runs the call manager, serves the control socket, and speaks
// systemd's notify protocol. cmd/calld's serve and demo, and the end-to-end
// tests, all run it through Main.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotd/td/clock"
	"github.com/rs/zerolog"

	"github.com/calld/calld/config"
	"github.com/calld/calld/control"
	"github.com/calld/calld/fsm"
	"github.com/calld/calld/logging"
	"github.com/calld/calld/manager"
	"github.com/calld/calld/mtproto"
	"github.com/calld/calld/store"
	"github.com/calld/calld/systemd"
)

// Version is set by cmd/calld.
var Version = "dev"

// Main is one daemon: New, then Run until its context ends.
type Main struct {
	Config config.Config
	// Stderr receives the logs (default os.Stderr).
	Stderr io.Writer
	// Clock drives the manager's timers (default: the system clock).
	Clock clock.Clock
	// Listener, when set, is the control socket to serve (tests); else
	// systemd's socket activation, else the configured path.
	Listener net.Listener
	// Sim, when set, replaces the configured Telegram servers with the
	// simulator at that address and key (serve --sim, demo, tests).
	Sim *SimTarget
	// ShutdownTimeout bounds how long in-flight requests (discards) may
	// take after a stop signal. Default 10 s.
	ShutdownTimeout time.Duration

	Log     zerolog.Logger
	level   *logging.Level
	db      *store.DB
	client  *mtproto.Client
	manager *manager.Manager
	hub     *control.Hub
	server  *control.Server
	ln      net.Listener

	stopReason atomic.Value
	login      *login
	loginOnce  chan struct{} // closed on a successful login
	runContext context.Context

	readyOnce sync.Once
	ready     chan struct{}
}

// SimTarget is where the embedded simulator listens.
type SimTarget struct {
	Addr      string
	DC        int
	PublicKey []byte // PEM
}

// New returns a Main for cfg.
func New(cfg config.Config) *Main {
	return &Main{Config: cfg, ready: make(chan struct{}), login: newLogin(), loginOnce: make(chan struct{})}
}

// Ready is closed once the daemon serves (after restore and listen).
func (m *Main) Ready() <-chan struct{} { return m.ready }

// Manager is the running call manager (nil before Run).
func (m *Main) Manager() *manager.Manager { return m.manager }

// Run runs the daemon until ctx is done, then stops gracefully: no new
// requests, in-flight ones finish within ShutdownTimeout, state is
// persisted, the store closed. An error means start-up failed or the
// store failed for good.
func (m *Main) Run(ctx context.Context) (err error) {
	if m.Stderr == nil {
		m.Stderr = os.Stderr
	}
	if m.Clock == nil {
		m.Clock = clock.System
	}
	if m.ShutdownTimeout == 0 {
		m.ShutdownTimeout = 10 * time.Second
	}
	log, level, err := logging.New(logging.Options{Level: m.Config.Log.Level, Format: m.Config.Log.Format, Out: m.Stderr})
	if err != nil {
		return err
	}
	m.Log, m.level = log, level

	m.db, err = store.Open(m.Config.State.Path, store.Options{Retention: store.Retention{
		MaxAge:    m.Config.State.JournalMaxAge.Duration,
		MaxEvents: m.Config.State.JournalMaxEvents,
	}})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := m.db.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()

	tcfg, err := m.telegramConfig()
	if err != nil {
		return err
	}
	m.hub = control.NewHub(256)
	m.manager = manager.New(manager.Config{
		DB:    m.db,
		Hub:   m.hub,
		Log:   log,
		Clock: m.Clock,
		Policy: manager.Policy{
			Reject:         m.Config.Policy.Incoming == config.IncomingReject,
			RejectWhenBusy: m.Config.Policy.RejectWhenBusy,
		},
		Timeouts: fsm.Timeouts{
			Receive:     m.Config.Policy.ReceiveTimeout.Duration,
			Ring:        m.Config.Policy.RingTimeout.Duration,
			MaxDuration: m.Config.Policy.MaxDuration.Duration,
		},
		Version:  Version,
		Protocol: manager.Protocol(m.Config.Media),
	})
	tcfg.Updates = m.manager
	m.client, err = mtproto.New(tcfg)
	if err != nil {
		return err
	}
	m.manager.SetTelegram(manager.Client(m.client))

	if err := m.listen(); err != nil {
		return err
	}
	m.server = control.NewServer(service{m}, m.hub, control.Options{
		Log:       log,
		AllowUIDs: m.Config.Control.AllowUIDs,
	})
	serveErr := make(chan error, 1)
	go func() { serveErr <- m.server.Serve(m.ln) }()

	// The manager runs inside the client's Run, under its own context so
	// that in-flight requests can finish after ctx ends.
	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	m.runContext = runCtx
	clientErr := make(chan error, 1)
	go func() {
		clientErr <- m.client.Run(runCtx, func(ctx context.Context) error {
			return m.runAuthorized(ctx)
		})
	}()

	select {
	case <-ctx.Done():
	case err = <-clientErr:
		m.Log.Error().Str(logging.FieldErr, fmt.Sprint(err)).Msg("telegram client stopped")
	}
	sig, _ := m.stopReason.Load().(string)
	if sig == "" {
		sig = "context"
	}
	m.Log.Info().Str(logging.FieldEvent, logging.EventDaemonStopping).Str(logging.FieldSignal, sig).Msg("stopping")
	_, _ = systemd.Stopping()
	sctx, cancel := context.WithTimeout(context.Background(), m.ShutdownTimeout)
	defer cancel()
	if serr := m.server.Shutdown(sctx); serr != nil {
		m.Log.Warn().Str(logging.FieldErr, serr.Error()).Msg("control socket shutdown")
	}
	stopRun()
	<-m.manager.Done()
	if cerr := <-clientErr; err == nil && cerr != nil && !errors.Is(cerr, context.Canceled) {
		err = cerr
	}
	return err
}

// SetStopReason records what stops the daemon (a signal's name), for the
// daemon.stopping log line. Call it before ending Run's context.
func (m *Main) SetStopReason(reason string) { m.stopReason.Store(reason) }

// runAuthorized waits for an authorized session, then runs the manager.
func (m *Main) runAuthorized(ctx context.Context) error {
	for {
		ok, self, err := m.client.Authorized(ctx)
		if err == nil && ok {
			m.manager.SetIdentity(true, self, m.dc())
			break
		}
		m.manager.SetIdentity(false, 0, m.dc())
		m.markReady()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.loginDone():
		}
	}
	go m.markReadyWhen(ctx)
	go func() {
		// Watchdog pings only while the loop turns and the store reads.
		_ = systemd.Watchdog(ctx, m.healthy, m.Log)
	}()
	go m.housekeeping(ctx)
	return m.manager.Run(ctx)
}

func (m *Main) dc() int {
	if m.Sim != nil {
		return m.Sim.DC
	}
	return m.Config.Telegram.DC
}

// markReadyWhen tells systemd READY=1 once the manager has restored its
// state.
func (m *Main) markReadyWhen(ctx context.Context) {
	select {
	case <-m.manager.Ready():
		m.markReady()
	case <-ctx.Done():
	}
}

func (m *Main) markReady() {
	m.readyOnce.Do(func() {
		_, _ = systemd.Ready(fmt.Sprintf("serving on %s", m.Config.Control.Socket))
		m.Log.Info().Str(logging.FieldEvent, logging.EventDaemonReady).
			Str(logging.FieldSocket, m.Config.Control.Socket).
			Str(logging.FieldStatePath, m.Config.State.Path).Msg("ready")
		close(m.ready)
	})
}

// listen opens the control socket: the one given, systemd's, or our own.
func (m *Main) listen() error {
	if m.Listener != nil {
		m.ln = m.Listener
		return nil
	}
	ls, err := systemd.Listeners()
	if err != nil {
		return err
	}
	if len(ls) > 0 {
		m.ln = ls[0]
		return nil
	}
	// We hold the store's lock, so a socket file left at the path is
	// stale: control.Listen removes it (and only if it is a socket).
	m.ln, err = control.Listen(m.Config.Control.Socket, m.Config.Control.SocketMode.Perm())
	return err
}

// telegramConfig builds the MTProto client's configuration.
func (m *Main) telegramConfig() (mtproto.Config, error) {
	t := m.Config.Telegram
	cfg := mtproto.Config{
		APIID:   t.APIID,
		APIHash: t.APIHash,
		DC:      t.DC,
		Session: m.db.SessionStorage(),
		Log:     m.Log,
	}
	keysPEM := []byte(nil)
	if t.PublicKeys != "" {
		b, err := os.ReadFile(t.PublicKeys)
		if err != nil {
			return cfg, fmt.Errorf("telegram.public_keys: %w", err)
		}
		keysPEM = b
	}
	for _, o := range t.DCOptions {
		cfg.DCOptions = append(cfg.DCOptions, mtproto.DCOption{ID: o.ID, Addr: o.Addr})
	}
	if s := m.Sim; s != nil {
		cfg.APIID, cfg.APIHash, cfg.DC = 1, "sim", s.DC
		cfg.DCOptions = []mtproto.DCOption{{ID: s.DC, Addr: s.Addr}}
		keysPEM = s.PublicKey
	}
	if keysPEM != nil {
		keys, err := mtproto.ParsePublicKeys(keysPEM)
		if err != nil {
			return cfg, fmt.Errorf("telegram.public_keys: %w", err)
		}
		cfg.PublicKeys = keys
	}
	return cfg, nil
}

// Reload applies what SIGHUP may change: the log level and the policy.
func (m *Main) Reload(cfg config.Config) {
	_, _ = systemd.Reloading()
	defer func() { _, _ = systemd.Ready("reloaded") }()
	if m.level != nil {
		_ = m.level.Set(cfg.Log.Level) // validated by config.Load
	}
	if m.manager != nil {
		m.manager.SetPolicy(manager.Policy{
			Reject:         cfg.Policy.Incoming == config.IncomingReject,
			RejectWhenBusy: cfg.Policy.RejectWhenBusy,
		}, cfg.Policy.MaxDuration.Duration)
	}
	m.Log.Info().Str(logging.FieldEvent, logging.EventDaemonReload).Str("log_level", cfg.Log.Level).
		Str("incoming", cfg.Policy.Incoming).Msg("configuration reloaded")
}

// loginDone is closed once a login through the control socket succeeded.
func (m *Main) loginDone() <-chan struct{} { return m.loginOnce }

func (m *Main) loginSucceeded() {
	select {
	case <-m.loginOnce:
	default:
		close(m.loginOnce)
	}
}

// runCtx is the context the Telegram client runs under.
func (m *Main) runCtx() context.Context { return m.runContext }

// healthy is the watchdog's check: the event loop answers and the store
// can be read.
func (m *Main) healthy(ctx context.Context) error {
	if err := m.manager.Alive(5 * time.Second); err != nil {
		return err
	}
	return m.db.View(func(tx *store.Tx) error {
		_, _, err := tx.UpdatesState()
		return err
	})
}

// housekeeping prunes the journal (at start-up, then hourly) and keeps
// systemd's STATUS= line current (every 15 s).
func (m *Main) housekeeping(ctx context.Context) {
	prune := func() {
		if n, err := m.db.Prune(); err != nil {
			m.Log.Error().Str(logging.FieldEvent, logging.EventStoreError).Str(logging.FieldErr, err.Error()).Msg("journal pruning failed")
		} else if n > 0 {
			m.Log.Info().Str(logging.FieldEvent, logging.EventLog).Int("removed", n).Msg("journal pruned")
		}
	}
	status := func() {
		st, err := m.manager.Status(ctx)
		if err != nil {
			return
		}
		conn := "disconnected"
		if st.Telegram.Connected {
			conn = fmt.Sprintf("connected to DC %d", st.Telegram.DC)
		}
		_, _ = systemd.Status(fmt.Sprintf("%s; %d live calls, %d known; pts=%d seq=%d",
			conn, st.Calls.Live, st.Calls.Total, st.Updates.Pts, st.Updates.Seq))
	}
	prune()
	select {
	case <-m.ready:
	case <-ctx.Done():
		return
	}
	status()
	statusTick := time.NewTicker(15 * time.Second)
	defer statusTick.Stop()
	pruneTick := time.NewTicker(time.Hour)
	defer pruneTick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-statusTick.C:
			status()
		case <-pruneTick.C:
			prune()
		}
	}
}
