package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gotd/td/clock"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/calld/calld/internal/config"
	"github.com/calld/calld/internal/daemon"
	"github.com/calld/calld/internal/group"
	"github.com/calld/calld/internal/sim"
)

// runServe is `calld serve [--config FILE] [--sim] [--state PATH]
// [--socket PATH]`: the daemon in the foreground. Exit status 2 for a bad
// config, 1 when start-up or the store fails, 0 after a clean stop
// (SIGTERM, SIGINT).
func runServe(ctx context.Context, cmd *cobra.Command, args []string, stdout, stderr io.Writer) int {
	// The flags first: -h and usage errors end here, touching no signal.
	f, code, ok := parseServeFlags(cmd, args, stdout, stderr)
	if !ok {
		return code
	}
	// Signals are caught next, so that a SIGTERM sent while the config is
	// read is a stop (exit 0), not the default death.
	// Stop signals and SIGHUP have channels of their own: the runtime
	// drops a signal whose channel is full, and a stop must never be lost
	// behind pending reloads. One pending signal of each kind is enough
	// (a pending reload reads the config file when it runs).
	sig := serveSignals{stops: make(chan os.Signal, 1), hups: make(chan os.Signal, 1)}
	signal.Notify(sig.stops, syscall.SIGTERM, syscall.SIGINT)
	signal.Notify(sig.hups, syscall.SIGHUP)
	// Once serve returns the process is exiting: a SIGHUP (or a second
	// SIGTERM) that arrives now must not kill it by the default action and
	// turn a clean stop into a death by signal.
	defer signal.Ignore(syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	if f.sim && f.config == "" {
		// The simulator's session and calls are its own: never the
		// default state file, which may hold a real login.
		dir, err := f.paths.simDir()
		if err != nil {
			fmt.Fprintf(stderr, "calld serve: %v\n", err)
			return 1
		}
		if dir != "" {
			defer os.RemoveAll(dir)
			fmt.Fprintf(stdout, "calld serve --sim: state and socket in %s (try: CALLD_SOCKET=%s calld calls)\n",
				dir, filepath.Join(dir, simSocket))
		}
	}
	cfg, err := f.load()
	if err != nil {
		fmt.Fprintf(stderr, "calld serve: %v\n", err)
		return 2
	}
	m := daemon.New(cfg)
	m.Stderr, m.Clock = stderr, clock.System
	if !f.sim {
		// The keys file too is configuration: checked before anything
		// (the state file, the socket) is created.
		if err := m.CheckConfig(); err != nil {
			fmt.Fprintf(stderr, "calld serve: %v\n", err)
			return 2
		}
	} else {
		stopSim, err := startSim(ctx, m)
		if err != nil {
			fmt.Fprintf(stderr, "calld serve: simulator: %v\n", err)
			return 1
		}
		defer stopSim()
	}
	return sig.serve(ctx, m, f.load, stderr)
}

// serveFlags are serve's flags; config is the configuration file's path
// (from --config or $CALLD_CONFIG).
type serveFlags struct {
	config string
	sim    bool
	paths  servePaths
}

// serveCommand declares `calld serve`; runServe parses its flags itself
// (after catching the signals), declared by the same serveFlagSet.
func serveCommand(ctx context.Context, sio stdio, code *int) *cobra.Command {
	cmd := leaf("serve [--config FILE] [--sim] [--state PATH] [--socket PATH]", "run the daemon in the foreground", "daemon")
	cmd.DisableFlagParsing = true
	var f serveFlags
	var configPath string
	serveFlagSet(cmd.Flags(), &f, &configPath)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		*code = runServe(ctx, cmd, args, sio.stdout, sio.stderr)
		return nil
	}
	return cmd
}

// serveFlagSet declares serve's flags on fs.
func serveFlagSet(fs *pflag.FlagSet, f *serveFlags, configPath *string) {
	fs.SortFlags = false
	fs.StringVar(configPath, "config", "", "configuration `FILE` (default $CALLD_CONFIG, else built-in defaults)")
	fs.BoolVar(&f.sim, "sim", false, "run against the embedded simulated Telegram (without a config: state and socket in a fresh directory)")
	fs.StringVar(&f.paths.state, "state", "", "state file `PATH` (overrides $CALLD_STATE and [state] path)")
	fs.StringVar(&f.paths.socket, "socket", "", "control socket `PATH` (overrides $CALLD_SOCKET and [control] socket)")
}

// parseServeFlags parses serve's flags; false: serve ends with the exit
// status (0 after --help, 2 for wrong flags, the usage on stderr).
func parseServeFlags(cmd *cobra.Command, args []string, stdout, stderr io.Writer) (serveFlags, int, bool) {
	fs := pflag.NewFlagSet("calld serve", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var f serveFlags
	var configPath string
	serveFlagSet(fs, &f, &configPath)
	long := make([]string, len(args))
	for i, a := range args {
		long[i] = oneDashLong(fs, a)
	}
	err := fs.Parse(long)
	if errors.Is(err, pflag.ErrHelp) {
		cmd.SetOut(stdout)
		_ = cmd.Help()
		return f, 0, false
	}
	if err != nil {
		fmt.Fprintf(stderr, "calld serve: %v\n", err)
		writeUsage(stderr, cmd)
		return f, 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "calld serve: unexpected argument %q\n", fs.Arg(0))
		writeUsage(stderr, cmd)
		return f, 2, false
	}
	f.config = config.Path(configPath, os.Getenv)
	return f, 0, true
}

// load reads the configuration the flags name (again on SIGHUP).
func (f serveFlags) load() (config.Config, error) {
	return loadServeConfig(f.config, f.sim, f.paths)
}

// startSim starts the embedded simulator and its traffic for m and
// returns what stops them; the traffic's goroutine is the stop's to wait
// for.
func startSim(ctx context.Context, m *daemon.Main) (stop func(), err error) {
	// The peers' media engines send three signaling payloads once a
	// call is active and echo what they get (calld signaling ID).
	srv, err := sim.New(sim.Options{Authorized: true, SignalingPayloads: 3})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	if err := srv.Listen(ctx, "127.0.0.1:0"); err != nil {
		cancel()
		_ = srv.Close()
		return nil, err
	}
	m.Sim = &daemon.SimTarget{Addr: srv.Addr(), DC: srv.DC(), PublicKey: srv.PublicKeyPEM()}
	var traffic group.Group
	traffic.Go(func() error { simTraffic(ctx, m.Clock, srv); return nil })
	return func() {
		cancel()
		traffic.Wait(context.Background())
		_ = srv.Close()
	}, nil
}

// serveSignals are serve's signal channels: stops (SIGTERM, SIGINT) and
// reloads (SIGHUP).
type serveSignals struct{ stops, hups chan os.Signal }

// serve runs m until a stop signal or ctx ends it, and applies reloads
// meanwhile; it returns serve's exit status once m.Run returned.
func (sig serveSignals) serve(ctx context.Context, m *daemon.Main, load func() (config.Config, error), stderr io.Writer) int {
	runCtx, cancelRun := context.WithCancel(context.Background())
	defer cancelRun()
	done := make(chan error, 1)
	go func() { done <- m.Run(runCtx) }() // waited for below: serve returns on done only
	ended := ctx.Done()                   // nil once seen: a done context is not a busy loop
	for {
		select {
		case <-sig.hups:
			next, err := load()
			if err == nil {
				err = daemon.New(next).CheckConfig()
			}
			if err != nil {
				m.ReloadRefused(err)
				continue
			}
			m.Reload(next)
		case s := <-sig.stops:
			m.SetStopReason(s.String())
			cancelRun()
		case <-ended:
			ended = nil
			m.SetStopReason("context")
			cancelRun()
		case err := <-done:
			if err != nil {
				if !m.Logged() {
					// Otherwise the log's last line (daemon.stopped)
					// says it: stderr stays one JSON object per line.
					fmt.Fprintf(stderr, "calld serve: %v\n", err)
				}
				return 1
			}
			return 0
		}
	}
}

// servePaths are serve's --state and --socket; under `--sim` without a
// config, the fresh directory's files stand in for empty ones.
type servePaths struct{ state, socket string }

// The files of `serve --sim` in its fresh directory.
const (
	simState  = "calld.db"
	simSocket = "calld.sock"
)

// simDir creates the fresh directory of `serve --sim` without a config,
// under $XDG_RUNTIME_DIR, else the temp dir, for whichever of the state
// file and the socket neither a flag nor the environment names. It
// returns "" when both are named.
func (p *servePaths) simDir() (string, error) {
	if p.state == "" {
		p.state = os.Getenv(config.EnvState)
	}
	if p.socket == "" {
		p.socket = os.Getenv(config.EnvSocket)
	}
	if p.state != "" && p.socket != "" {
		return "", nil
	}
	parent := os.Getenv("XDG_RUNTIME_DIR")
	if parent == "" {
		parent = os.TempDir()
	}
	dir, err := os.MkdirTemp(parent, "calld-sim-")
	if err != nil {
		return "", fmt.Errorf("--sim: state directory: %w", err)
	}
	if p.state == "" {
		p.state = filepath.Join(dir, simState)
	}
	if p.socket == "" {
		p.socket = filepath.Join(dir, simSocket)
	}
	return dir, nil
}

// loadServeConfig reads and validates the configuration, with --state and
// --socket over it; the Telegram credentials are required unless the
// daemon runs against the simulator. Every error is a *config.Error
// naming the key.
func loadServeConfig(path string, useSim bool, p servePaths) (config.Config, error) {
	cfg, err := config.Load(path, os.Getenv)
	if err != nil {
		return cfg, err
	}
	if p.state != "" {
		cfg.State.Path = p.state
	}
	if p.socket != "" {
		cfg.Control.Socket = p.socket
	}
	return cfg, cfg.Validate(useSim)
}

// simPeers are the simulated users of `serve --sim`: `calld call @alice`
// is answered.
var simPeers = []string{"alice", "bob", "carol"}

// simIncomingEvery is how often a simulated peer calls in `serve --sim`.
const simIncomingEvery = 30 * time.Second

// simTraffic gives `serve --sim` something to track: the peers exist and
// answer calls, and one of them calls every simIncomingEvery on clk (a new
// timer each time, so that a fake clock's Observe sees it waiting).
func simTraffic(ctx context.Context, clk clock.Clock, srv *sim.Server) {
	var ids []int64
	for _, name := range simPeers {
		ids = append(ids, srv.AddPeer(name))
	}
	for i := 0; ; i++ {
		t := clk.Timer(simIncomingEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
			_, _ = srv.IncomingCall(ids[i%len(ids)], i%4 == 3)
		}
	}
}
