package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/calld/calld/config"
	"github.com/calld/calld/daemon"
	"github.com/calld/calld/logging"
	"github.com/calld/calld/sim"
)

// runServe is `calld serve [--config FILE] [--sim]`: the daemon in the
// foreground. Exit status 2 for a bad config, 1 when start-up or the
// store fails, 0 after a clean stop (SIGTERM, SIGINT).
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("calld serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (default $CALLD_CONFIG, else built-in defaults)")
	useSim := fs.Bool("sim", false, "run against the embedded simulated Telegram")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: calld serve [--config FILE] [--sim]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	path := config.Path(*configPath, os.Getenv)
	cfg, err := loadServeConfig(path, *useSim)
	if err != nil {
		fmt.Fprintf(stderr, "calld serve: %v\n", err)
		return 2
	}

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(signals)

	m := daemon.New(cfg)
	m.Stderr = stderr
	if *useSim {
		// The peers' media engines send three signaling payloads once a
		// call is active and echo what they get (calld signaling ID).
		srv, err := sim.New(sim.Options{Authorized: true, SignalingPayloads: 3})
		if err != nil {
			fmt.Fprintf(stderr, "calld serve: simulator: %v\n", err)
			return 1
		}
		if err := srv.Listen(ctx, "127.0.0.1:0"); err != nil {
			fmt.Fprintf(stderr, "calld serve: simulator: %v\n", err)
			return 1
		}
		defer srv.Close()
		m.Sim = &daemon.SimTarget{Addr: srv.Addr(), DC: srv.DC(), PublicKey: srv.PublicKeyPEM()}
		go simTraffic(ctx, srv)
	}

	runCtx, cancelRun := context.WithCancel(context.Background())
	defer cancelRun()
	done := make(chan error, 1)
	var sigName string
	go func() { done <- m.Run(runCtx) }()
	for {
		select {
		case sig := <-signals:
			if sig == syscall.SIGHUP {
				next, err := loadServeConfig(path, *useSim)
				if err != nil {
					m.Log.Error().Str(logging.FieldEvent, logging.EventDaemonReload).Str(logging.FieldErr, err.Error()).
						Msg("reload refused: configuration invalid; keeping the current one")
					continue
				}
				m.Reload(next)
				continue
			}
			sigName = sig.String()
			m.SetStopReason(sigName)
			cancelRun()
		case <-ctx.Done():
			m.SetStopReason("context")
			cancelRun()
		case err := <-done:
			if err != nil {
				fmt.Fprintf(stderr, "calld serve: %v\n", err)
				return 1
			}
			return 0
		}
	}
}

// loadServeConfig reads and validates the configuration; the Telegram
// credentials are required unless the daemon runs against the simulator.
// Every error is a *config.Error naming the key.
func loadServeConfig(path string, useSim bool) (config.Config, error) {
	cfg, err := config.Load(path, os.Getenv)
	if err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate(useSim)
}

// simPeers are the simulated users of `serve --sim`: `calld call @alice`
// is answered.
var simPeers = []string{"alice", "bob", "carol"}

// simIncomingEvery is how often a simulated peer calls in `serve --sim`.
const simIncomingEvery = 30 * time.Second

// simTraffic gives `serve --sim` something to track: the peers exist and
// answer calls, and one of them calls every simIncomingEvery.
func simTraffic(ctx context.Context, srv *sim.Server) {
	var ids []int64
	for _, name := range simPeers {
		ids = append(ids, srv.AddPeer(name))
	}
	t := time.NewTicker(simIncomingEvery)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = srv.IncomingCall(ids[i%len(ids)], i%4 == 3)
		}
	}
}
