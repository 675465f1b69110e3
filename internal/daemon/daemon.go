// Package daemon wires the parts of calld into one running daemon: it opens
// the store, connects the MTProto client (to Telegram or to the embedded
// simulator), runs the call manager, serves the control socket, and speaks
// systemd's notify protocol. cmd/calld's serve and demo, and the end-to-end
// tests, all run it through Main.
//
// Goroutines have owners: every goroutine of a run is started on one of
// two internal/group.Groups, the run's tasks (socket, watchdog,
// housekeeping, reloads, the Telegram client) and the work that uses the
// client (the manager, watchSession, a login flow), and the stop waits
// for both (work first) before Run returns; the manager waits for its
// own RPCs. Time is Main.Clock, the program's one clock; only the stop's deadline is wall
// time.
package daemon

import (
	"context"
	"crypto/rsa"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotd/td/clock"
	"github.com/rs/zerolog"

	"github.com/calld/calld/internal/buildinfo"
	"github.com/calld/calld/internal/config"
	"github.com/calld/calld/internal/control"
	"github.com/calld/calld/internal/fsm"
	"github.com/calld/calld/internal/group"
	"github.com/calld/calld/internal/logging"
	"github.com/calld/calld/internal/manager"
	"github.com/calld/calld/internal/metrics"
	"github.com/calld/calld/internal/mtproto"
	"github.com/calld/calld/internal/store"
	"github.com/calld/calld/internal/systemd"
)

// Main is one daemon: New, then Run until its context ends.
//
// Run builds every part (logger, store, client, manager, control server)
// before the socket serves, and nothing writes those fields afterwards:
// Reload, the login route and the status line only read them.
type Main struct {
	Config config.Config
	// Stderr receives the logs (default os.Stderr).
	Stderr io.Writer
	// Clock is the daemon's one clock: the manager's timers, the
	// re-checks of the authorization, the status and pruning timers and
	// the watchdog (default: the system clock). Only the stop's deadline
	// (ShutdownTimeout) is wall time: it bounds the process's exit.
	Clock clock.Clock
	// Listener, when set, is the control socket to serve (tests); else
	// systemd's socket activation, else the configured path.
	Listener net.Listener
	// Sim, when set, replaces the configured Telegram servers with the
	// simulator at that address and key (serve --sim, demo, tests).
	Sim *SimTarget
	// ShutdownTimeout bounds a whole stop, from the stop signal to Run's
	// return: in-flight requests (discards) drain within most of it, the
	// rest is left for the Telegram client and the store. Default 10 s.
	ShutdownTimeout time.Duration
	// RetryBudget bounds the retries of one RPC (tests); 0 means mtproto's
	// default.
	RetryBudget time.Duration

	// Built by Run before the socket serves; read-only afterwards.
	log     zerolog.Logger
	level   *logging.Level
	logs    logging.Batch // the manager gathers a commit's lines into one write
	db      *store.DB
	client  *mtproto.Client
	manager *manager.Manager
	hub     *control.Hub
	server  *control.Server
	ln      net.Listener
	metrics *metrics.Metrics
	// [metrics] listen, when set: its listener and server.
	metricsLn  net.Listener
	metricsSrv *http.Server
	runCtx     context.Context // the Telegram client's context; ends at stop
	workCtx    context.Context // what uses the client (manager, login); ends first
	built      chan struct{}   // closed once the fields above are set
	tasks      *group.Group    // every goroutine of the run
	work       *group.Group    // the goroutines using the client: the manager's, watchSession, a login

	stopReason atomic.Value
	reloadErr  atomic.Value // string: why the last reload was refused, "" once one succeeds
	login      *login
	relogin    chan struct{}   // a login succeeded (capacity 1: runTelegram, session.go)
	revoked    chan revocation // an RPC answered 401 (capacity 1; session.go)
	auth       authState       // the session's authorization, as last checked
	reached    atomic.Bool     // Telegram answered once (runTelegram ran)
	reloads    reloads

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
	return &Main{
		Config:  cfg,
		ready:   make(chan struct{}),
		built:   make(chan struct{}),
		login:   newLogin(),
		relogin: make(chan struct{}, 1),
		revoked: make(chan revocation, 1),
		reloads: newReloads(),
	}
}

// Ready is closed once the daemon serves and, when an account is logged
// in, has restored its calls; while no account is logged in, once it
// serves.
func (m *Main) Ready() <-chan struct{} { return m.ready }

// Manager is the call manager (nil until Run has built it).
func (m *Main) Manager() *manager.Manager {
	select {
	case <-m.built:
		return m.manager
	default:
		return nil
	}
}

// CheckConfig validates what Run reads besides the config itself (the
// public keys file): a start-up that would fail on it fails here, before
// anything is created. cmd/calld exits 2 on its error.
func (m *Main) CheckConfig() error {
	_, err := m.publicKeys()
	return err
}

// Logged reports whether Run's outcome is in its log: true once Run has
// built its logger, after which its log ends with daemon.stopped (and a
// failure's daemon.failed before it), so a caller must not repeat the
// error on the same stream. Read it after Run returned.
func (m *Main) Logged() bool { return m.level != nil }

// Run runs the daemon until ctx is done, then stops gracefully within
// ShutdownTimeout: no new requests, in-flight ones drain, state is
// persisted, the store closed. An error means start-up failed or a part
// failed for good (the store, the manager); it is also the last log line.
func (m *Main) Run(ctx context.Context) (err error) {
	m.setDefaults()
	log, level, err := logging.New(logging.Options{Level: m.Config.Log.Level, Format: m.Config.Log.Format, Out: m.Stderr,
		Account: m.Config.Telegram.Account, Batch: &m.logs})
	if err != nil {
		return err
	}
	m.log, m.level = log, level
	defer func() { m.logStopped(err) }()
	keys, err := m.publicKeys()
	if err != nil {
		return err
	}
	m.newMetrics()
	if err := m.openStore(); err != nil {
		return err
	}
	defer func() {
		if cerr := m.db.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if err := m.build(keys); err != nil {
		return err
	}

	// Everything is built; from here on the fields are only read.
	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	workCtx, stopWork := context.WithCancel(runCtx)
	defer stopWork()
	m.runCtx, m.workCtx = runCtx, workCtx
	m.tasks = group.New(stopRun)
	m.work = group.New(nil)
	close(m.built)

	m.startTasks(runCtx)
	stopped := false
	select {
	case <-ctx.Done():
		stopped = true
	case <-m.tasks.Failed():
	}
	return m.stop(stopped, stopWork, stopRun)
}

// setDefaults fills in what New leaves zero.
func (m *Main) setDefaults() {
	if m.Stderr == nil {
		m.Stderr = os.Stderr
	}
	if m.Clock == nil {
		m.Clock = clock.System
	}
	if m.ShutdownTimeout == 0 {
		m.ShutdownTimeout = 10 * time.Second
	}
}

// openStore opens the state file and, against the simulator, checks that
// its session is one the simulator could have made.
func (m *Main) openStore() error {
	db, err := store.Open(m.Config.State.Path, store.Options{Retention: store.Retention{
		MaxAge:    m.Config.State.JournalMaxAge.Duration,
		MaxEvents: m.Config.State.JournalMaxEvents,
	}, CommitSeconds: m.metrics.StoreCommit(), Replay: manager.Replay})
	if err != nil {
		return err
	}
	m.db = db
	if m.Sim != nil {
		// A local read: the stop is for the run, not for it.
		if err := m.checkSimSession(context.Background()); err != nil {
			_ = db.Close()
			return err
		}
	}
	return nil
}

// startTasks starts the run's goroutines, all owned by m.tasks: the
// control socket (then READY=1), the watchdog, housekeeping, reloads and
// the Telegram client, whose callback (runTelegram) m.work owns.
func (m *Main) startTasks(runCtx context.Context) {
	// Armed before anything runs, so that they count from the start.
	statusTimer, pruneTimer := m.Clock.Timer(statusEvery), m.Clock.Timer(pruneEvery)
	m.tasks.Go(func() error { m.housekeeping(runCtx, statusTimer, pruneTimer); return nil })
	m.tasks.Go(func() error { return m.server.Serve(m.ln) })
	m.serveMetrics()
	m.markServing()
	m.tasks.Go(func() error {
		// From READY=1 on, in every state: the loop (once it runs)
		// answers and the store reads.
		if err := systemd.Watchdog(runCtx, m.Clock, m.healthy, m.log); err != nil {
			m.log.Warn().Str(logging.FieldEvent, logging.EventDaemonWatchdog).Str(logging.FieldErr, err.Error()).Msg("no watchdog")
		}
		return nil
	})
	m.tasks.Go(func() error { m.applyReloads(runCtx); return nil })
	m.tasks.Go(func() error {
		return m.client.Run(runCtx, func(ctx context.Context) error {
			// Run by the work group, so that the stop ends it (and the
			// manager's RPCs) before the client closes its connection.
			errc := make(chan error, 1)
			if !m.work.Go(func() error {
				errc <- m.runTelegram(ctx)
				return nil
			}) {
				return nil
			}
			return <-errc
		})
	})
}

// build makes the parts, in dependency order, before anything runs.
func (m *Main) build(keys []*rsa.PublicKey) error {
	tcfg := m.telegramConfig(keys)
	tcfg.Metrics = m.metrics
	m.hub = control.NewHub(256)
	m.manager = manager.New(manager.Config{
		DB:    m.db,
		Hub:   m.hub,
		Log:   m.log,
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
		Version:  buildinfo.Version(),
		Protocol: manager.Protocol(m.Config.Media),
		Metrics:  m.metrics,
		LogBatch: &m.logs,
	})
	if err := m.manager.LoadStatus(); err != nil {
		return err
	}
	tcfg.Updates = m.manager
	var err error
	m.client, err = mtproto.New(tcfg)
	if err != nil {
		return err
	}
	m.manager.SetTelegram(manager.Client(m.client))
	m.manager.SetIdentity(false, 0, m.dc())
	// Without a stored session there is nothing to check: not logged in.
	if sess, err := m.db.SessionStorage().LoadSession(context.Background()); err == nil && len(sess) > 0 {
		m.auth.set(authUnknown, nil)
	} else {
		m.auth.set(authNo, nil)
	}
	if err := m.listen(); err != nil {
		return err
	}
	if err := m.listenMetrics(); err != nil {
		_ = m.ln.Close()
		return err
	}
	m.server = control.NewServer(service{m}, m.hub, control.Options{
		Log:                  m.log,
		AllowUIDs:            m.Config.Control.AllowUIDs,
		MaxConnections:       m.Config.Control.MaxConnections,
		MaxConnectionsPerUID: m.Config.Control.MaxConnectionsPerUID,
		IdleTimeout:          m.Config.Control.IdleTimeout.Duration,
		Clock:                m.Clock,
		Metrics:              m.metrics.Handler(),
	})
	return nil
}

// stop ends the run: the socket drains its in-flight requests, then the
// Telegram client, the manager and every other goroutine end; the whole
// stop stays within ShutdownTimeout. failed (rather than stopped) means a
// part ended the run: its error is returned.
func (m *Main) stop(stopped bool, stopWork, stopRun context.CancelFunc) error {
	// The stop's own deadline leaves a margin for the process to exit.
	// It is wall time, not m.Clock: it bounds the process's exit.
	deadline, cancelDeadline := context.WithTimeout(context.Background(), m.ShutdownTimeout*9/10)
	defer cancelDeadline()
	if stopped {
		sig, _ := m.stopReason.Load().(string)
		if sig == "" {
			sig = "context"
		}
		m.log.Info().Str(logging.FieldEvent, logging.EventDaemonStopping).Str(logging.FieldSignal, sig).Msg("stopping")
	}
	m.tasks.Stopping()
	_, _ = systemd.Stopping()
	// Requests drain for most of the budget; the rest is for the client
	// to close its connection and the store to commit.
	drain := m.ShutdownTimeout * 7 / 10
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	if serr := m.server.Shutdown(sctx); serr != nil {
		m.log.Warn().Str(logging.FieldErr, serr.Error()).Msg("control socket shutdown: requests still in flight are cut")
	}
	cancel()
	m.stopMetrics()
	// What uses the client ends before the client closes its connection
	// (gotd races when a connection closes under an RPC in flight).
	m.work.Stopping()
	stopWork()
	_, workTimedOut := m.work.Wait(deadline)
	stopRun()
	failure, timedOut := m.tasks.Wait(deadline)
	timedOut = timedOut || workTimedOut
	if timedOut {
		m.log.Warn().Str(logging.FieldEvent, logging.EventDaemonStopping).Str(logging.FieldErr, errStopTimeout.Error()).
			Dur(logging.FieldTimeout, m.ShutdownTimeout).Msg("stop took too long: exiting anyway")
	}
	return failure
}

// logStopped writes Run's last lines: daemon.failed naming the error, if
// any, then daemon.stopped with the reason (signal, context or error).
func (m *Main) logStopped(err error) {
	if err != nil {
		m.log.Error().Str(logging.FieldEvent, logging.EventDaemonFailed).Str(logging.FieldErr, err.Error()).Msg("calld failed")
		m.log.Error().Str(logging.FieldEvent, logging.EventDaemonStopped).Str(logging.FieldReason, "error").
			Str(logging.FieldErr, err.Error()).Msg("stopped: failed")
		return
	}
	if sig, _ := m.stopReason.Load().(string); sig != "" && sig != "context" {
		m.log.Info().Str(logging.FieldEvent, logging.EventDaemonStopped).Str(logging.FieldReason, "signal").
			Str(logging.FieldSignal, sig).Msg("stopped")
		return
	}
	m.log.Info().Str(logging.FieldEvent, logging.EventDaemonStopped).Str(logging.FieldReason, "context").Msg("stopped")
}

// SetStopReason records what stops the daemon (a signal's name), for the
// daemon.stopping log line. Call it before ending Run's context.
func (m *Main) SetStopReason(reason string) { m.stopReason.Store(reason) }

// runTelegram runs once the client is connected: it finds out whether
// the session is logged in (re-checking until Telegram answers: an error
// is "unknown", never "not logged in"), waits for a login if it is not,
// then runs the manager.
func (m *Main) runTelegram(ctx context.Context) error {
	m.reached.Store(true)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(m.workCtx, cancel)()
	unknown := func(err error) {
		m.auth.set(authUnknown, err)
		m.updateStatus()
	}
	for {
		ok, self, done := m.checkSession(ctx, unknown)
		if done {
			return nil
		}
		if ok {
			err := m.acceptAccount(ctx, self)
			if err == nil {
				m.auth.set(authYes, nil)
				m.manager.SetIdentity(true, self, m.dc())
				break
			}
			if !isOtherAccount(err) {
				return err
			}
		}
		m.auth.set(authNo, nil)
		m.manager.SetIdentity(false, 0, m.dc())
		m.markReady()
		m.updateStatus()
		select {
		case <-ctx.Done():
			return nil
		case <-m.relogin:
		}
	}
	m.updateStatus()
	m.work.Go(func() error {
		m.watchSession(ctx)
		return nil
	})
	m.work.Go(func() error {
		select {
		case <-m.manager.Ready():
			m.markReady()
			m.updateStatus()
		case <-ctx.Done():
		}
		return nil
	})
	if err := m.manager.Run(ctx); err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	return nil
}

func (m *Main) dc() int {
	if m.Sim != nil {
		return m.Sim.DC
	}
	return m.Config.Telegram.DC
}

// socketPath is where the control socket serves.
func (m *Main) socketPath() string {
	if m.ln != nil {
		if a, ok := m.ln.Addr().(*net.UnixAddr); ok && a.Name != "" {
			return a.Name
		}
	}
	return m.Config.Control.Socket
}

// markServing tells systemd READY=1 once the socket serves, whether or
// not Telegram is reachable (CONTRACT §5.2).
func (m *Main) markServing() {
	_, line := m.statusLine()
	_, _ = systemd.Ready(line)
	m.log.Info().Str(logging.FieldEvent, logging.EventDaemonReady).
		Str(logging.FieldSocket, m.socketPath()).
		Str(logging.FieldStatePath, m.Config.State.Path).Msg("ready")
}

// markReady closes Ready (see there).
func (m *Main) markReady() {
	m.readyOnce.Do(func() { close(m.ready) })
}

// listen opens the control socket: the one given, systemd's, or our own.
func (m *Main) listen() error {
	if m.Listener != nil {
		m.ln = m.Listener
		return nil
	}
	ul, err := systemd.UnixListener()
	if err != nil {
		return err
	}
	if ul != nil {
		m.ln = ul
		return nil
	}
	// control.Listen replaces only a dead socket file; one another
	// process answers on is refused, naming the path.
	m.ln, err = control.Listen(m.Config.Control.Socket, m.Config.Control.SocketMode.Perm())
	return err
}

// publicKeys reads and parses the configured (or the simulator's) public
// keys; nil means gotd's built-in production keys.
func (m *Main) publicKeys() ([]*rsa.PublicKey, error) {
	keysPEM := []byte(nil)
	if t := m.Config.Telegram; t.PublicKeys != "" && m.Sim == nil {
		b, err := os.ReadFile(t.PublicKeys)
		if err != nil {
			return nil, &config.Error{Key: "telegram.public_keys", Msg: err.Error()}
		}
		keysPEM = b
	}
	if m.Sim != nil {
		keysPEM = m.Sim.PublicKey
	}
	if keysPEM == nil {
		return nil, nil
	}
	keys, err := mtproto.ParsePublicKeys(keysPEM)
	if err != nil {
		return nil, &config.Error{Key: "telegram.public_keys", Msg: err.Error()}
	}
	return keys, nil
}

// telegramConfig builds the MTProto client's configuration.
func (m *Main) telegramConfig(keys []*rsa.PublicKey) mtproto.Config {
	t := m.Config.Telegram
	cfg := mtproto.Config{
		APIID:        t.APIID,
		APIHash:      t.APIHash,
		DC:           t.DC,
		Session:      m.db.SessionStorage(),
		Log:          m.log,
		PublicKeys:   keys,
		RetryBudget:  m.RetryBudget,
		Unauthorized: m.unauthorized,
		Gate:         &m.auth.gate,
	}
	for _, o := range t.DCOptions {
		cfg.DCOptions = append(cfg.DCOptions, mtproto.DCOption{ID: o.ID, Addr: o.Addr})
	}
	if s := m.Sim; s != nil {
		cfg.APIID, cfg.APIHash, cfg.DC = 1, "sim", s.DC
		cfg.DCOptions = []mtproto.DCOption{{ID: s.DC, Addr: s.Addr}}
	}
	return cfg
}

// Reload asks the daemon to apply what SIGHUP may change: the log level
// and the policy. It never blocks: the latest configuration is kept and
// applied by the daemon's own goroutine (reloads coalesce), also when it
// comes before Run or before a login.
func (m *Main) Reload(cfg config.Config) { m.reloads.post(reload{cfg: cfg}) }

// ReloadRefused logs (from the daemon's goroutine, like Reload) that a
// SIGHUP found an invalid configuration and keeps the current one.
func (m *Main) ReloadRefused(err error) { m.reloads.post(reload{err: err}) }

// reload is one SIGHUP's outcome.
type reload struct {
	cfg config.Config
	err error
}

// reloads holds the latest reload until applyReloads takes it.
type reloads struct {
	latest atomic.Pointer[reload]
	wake   chan struct{} // capacity 1
}

func newReloads() reloads { return reloads{wake: make(chan struct{}, 1)} }

func (r *reloads) post(x reload) {
	r.latest.Store(&x)
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// applyReloads applies reloads until ctx ends.
func (m *Main) applyReloads(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.reloads.wake:
		}
		r := m.reloads.latest.Swap(nil)
		if r == nil {
			continue
		}
		if r.err == nil && r.cfg.Telegram.Account != m.Config.Telegram.Account {
			r.err = errAccountChanged(m.Config.Telegram.Account, r.cfg.Telegram.Account)
		}
		if r.err != nil {
			m.reloadErr.Store(r.err.Error())
			m.log.Error().Str(logging.FieldEvent, logging.EventDaemonReload).Str(logging.FieldErr, r.err.Error()).
				Msg("reload refused: configuration invalid; keeping the current one")
			m.updateStatus()
			continue
		}
		m.reloadErr.Store("")
		_, _ = systemd.Reloading()
		cfg := r.cfg
		_ = m.level.Set(cfg.Log.Level) // validated by config.Load
		m.reloadMetrics(cfg)
		m.manager.SetPolicy(manager.Policy{
			Reject:         cfg.Policy.Incoming == config.IncomingReject,
			RejectWhenBusy: cfg.Policy.RejectWhenBusy,
		}, cfg.Policy.MaxDuration.Duration)
		m.log.Info().Str(logging.FieldEvent, logging.EventDaemonReload).Str(logging.FieldLogLevel, cfg.Log.Level).
			Str(logging.FieldIncoming, cfg.Policy.Incoming).Msg("configuration reloaded")
		_, line := m.statusLine()
		_, _ = systemd.Ready(line)
	}
}

// errAccountChanged refuses a reload that changes [telegram] account: the
// account is the running daemon's identity (its state file, its socket,
// its log and metric label), changed by a restart only.
func errAccountChanged(running, next string) error {
	quote := func(s string) string {
		if s == "" {
			return "none"
		}
		return fmt.Sprintf("%q", s)
	}
	return &config.Error{Key: "telegram.account", Msg: fmt.Sprintf("changed from %s to %s: the account of a running daemon changes at a restart only",
		quote(running), quote(next))}
}

// loginSucceeded tells runTelegram, or watchSession once the manager
// runs, that a login through the control socket succeeded.
func (m *Main) loginSucceeded() {
	select {
	case m.relogin <- struct{}{}:
	default: // one is waiting already
	}
}

// healthy is the watchdog's check: the event loop answers (once it runs)
// and the store can be read.
func (m *Main) healthy(ctx context.Context) error {
	if err := m.manager.Alive(5 * time.Second); err != nil {
		return err
	}
	return m.db.View(func(tx *store.Tx) error {
		_, _, err := tx.UpdatesState()
		return err
	})
}

// How often housekeeping refreshes systemd's STATUS= line and prunes the
// journal.
const (
	statusEvery = 15 * time.Second
	pruneEvery  = time.Hour
)

// housekeeping prunes the journal (at start-up, then on pruneTimer) and
// keeps systemd's STATUS= line current (on statusTimer, and on each
// change). It re-arms both timers, on the daemon's clock, until ctx ends.
func (m *Main) housekeeping(ctx context.Context, statusTimer, pruneTimer clock.Timer) {
	defer statusTimer.Stop()
	defer pruneTimer.Stop()
	m.prune()
	for {
		select {
		case <-ctx.Done():
			return
		case <-statusTimer.C():
			m.updateStatus()
			statusTimer.Reset(statusEvery)
		case <-pruneTimer.C():
			m.prune()
			pruneTimer.Reset(pruneEvery)
		}
	}
}

// prune removes the journal's events past the retention.
func (m *Main) prune() {
	if n, err := m.db.Prune(); err != nil {
		m.log.Error().Str(logging.FieldEvent, logging.EventStoreError).Str(logging.FieldErr, err.Error()).Msg("journal pruning failed")
	} else if n > 0 {
		m.log.Info().Str(logging.FieldEvent, logging.EventLog).Int(logging.FieldRemoved, n).Msg("journal pruned")
	}
}

// updateStatus sends the current status line to systemd (STATUS=).
func (m *Main) updateStatus() {
	_, line := m.statusLine()
	_, _ = systemd.Status(line)
}
