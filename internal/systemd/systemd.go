// Package systemd is calld's side of the service manager: sd_notify
// messages (READY, STATUS, RELOADING, STOPPING), the watchdog pinger and
// socket activation (LISTEN_FDS). Outside systemd every function is a
// no-op, so the same binary runs in a terminal.
//
// The unit files it is written for live in configs/ (calld.service,
// calld.socket, sysusers.d/calld.conf); a test keeps them consistent with
// the config package's defaults.
package systemd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/gotd/td/clock"
	"github.com/rs/zerolog"

	"github.com/calld/calld/internal/logging"
)

// Notify sends one sd_notify message (newline-separated VAR=value
// assignments) to $NOTIFY_SOCKET. It returns false, nil when NOTIFY_SOCKET
// is not set (not running under systemd, or Type= is not notify).
func Notify(state string) (bool, error) {
	ok, err := daemon.SdNotify(false, state)
	if err != nil {
		return false, fmt.Errorf("sd_notify %q: %w", firstLine(state), err)
	}
	return ok, nil
}

// Ready tells systemd that start-up (or a reload) finished: READY=1, plus
// STATUS= when status is not empty. Send it only once the database is open,
// the control socket is served and the calls are restored.
func Ready(status string) (bool, error) {
	msg := daemon.SdNotifyReady
	if status != "" {
		msg += "\nSTATUS=" + oneLine(status)
	}
	return Notify(msg)
}

// Status sets the free-form status systemctl status shows, e.g.
// "connected dc=2, 1 live call".
func Status(s string) (bool, error) {
	return Notify("STATUS=" + oneLine(s))
}

// Stopping tells systemd that shutdown began: STOPPING=1.
func Stopping() (bool, error) {
	return Notify(daemon.SdNotifyStopping)
}

// Reloading tells systemd that a reload (SIGHUP) began: RELOADING=1 with
// MONOTONIC_USEC, which systemd >= 253 needs to match the reload. Call
// Ready when the reload is done.
func Reloading() (bool, error) {
	return Notify(daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec())
}

// Watchdog pings systemd's watchdog (WATCHDOG=1) every half
// WatchdogSec on clk, but only after check passes: a daemon whose event loop or
// database is stuck stops pinging and systemd restarts it. check gets a
// context that ends after half the period. It pings once right away (if
// check passes), logs each change between passing and failing as a
// daemon.watchdog line, and returns nil when ctx ends, or at once when the
// watchdog is not enabled for this process (WATCHDOG_USEC unset or
// WATCHDOG_PID another process). A malformed WATCHDOG_USEC is an error.
func Watchdog(ctx context.Context, clk clock.Clock, check func(context.Context) error, log zerolog.Logger) error {
	period, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return fmt.Errorf("watchdog: %w", err)
	}
	if period <= 0 {
		return nil
	}
	runWatchdog(ctx, clk, period/2, check, Notify, log)
	return nil
}

// runWatchdog is Watchdog's loop with the transport injected: one check
// (and, if it passes, one ping) now and every interval on clk, each check
// bounded by interval. Each wait is a new timer, so that a fake clock's
// Observe sees the loop waiting.
func runWatchdog(ctx context.Context, clk clock.Clock, interval time.Duration,
	check func(context.Context) error, notify func(string) (bool, error), log zerolog.Logger) {
	failing := false
	beat := func() {
		cctx, cancel := context.WithTimeout(ctx, interval)
		err := check(cctx)
		cancel()
		if err == nil {
			if _, nerr := notify(daemon.SdNotifyWatchdog); nerr != nil {
				err = nerr
			}
		}
		switch {
		case err != nil && !failing:
			failing = true
			log.Warn().Str(logging.FieldEvent, logging.EventDaemonWatchdog).
				Str(logging.FieldResult, "failing").Err(err).
				Msg("health check failed: not pinging the systemd watchdog")
		case err == nil && failing:
			failing = false
			log.Info().Str(logging.FieldEvent, logging.EventDaemonWatchdog).
				Str(logging.FieldResult, "ok").Msg("health check passes again")
		}
	}
	beat()
	for {
		t := clk.Timer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		if ctx.Err() != nil {
			return
		}
		beat()
	}
}

// Listeners returns the sockets systemd passed (LISTEN_FDS, LISTEN_PID),
// or nil, nil when the process was not socket-activated. It reads and
// unsets the LISTEN_* variables, so only the first call sees them. Every
// passed descriptor must be a listening socket.
func Listeners() ([]net.Listener, error) {
	files := activation.Files(true)
	var out []net.Listener
	var errs []error
	for _, f := range files {
		l, err := net.FileListener(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("socket activation: descriptor %d (%s) is not a listening socket: %w", f.Fd(), f.Name(), err))
		} else {
			out = append(out, l)
		}
		f.Close()
	}
	if len(errs) > 0 {
		for _, l := range out {
			l.Close()
		}
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// UnixListener returns the control socket systemd passed: nil, nil when
// the process was not socket-activated (the caller then listens itself),
// else exactly one Unix stream listener (calld.socket's ListenStream=), or
// an error naming what was passed instead (a TCP socket, a SOCK_SEQPACKET
// one, a datagram socket, a file). Its Addr is the path the socket is
// really bound to, which may differ from the configured one. Closing it
// does not remove the socket file: systemd owns it.
func UnixListener() (*net.UnixListener, error) {
	ls, err := Listeners()
	if err != nil || len(ls) == 0 {
		return nil, err
	}
	closeAll := func() {
		for _, l := range ls {
			l.Close()
		}
	}
	if len(ls) != 1 {
		closeAll()
		return nil, fmt.Errorf("socket activation: got %d sockets, want 1 (calld.socket's ListenStream=)", len(ls))
	}
	ul, ok := ls[0].(*net.UnixListener)
	if !ok || ul.Addr().Network() != "unix" { // "unixpacket" is SOCK_SEQPACKET
		closeAll()
		return nil, fmt.Errorf("socket activation: got a %s socket (%s), want a Unix stream socket", ls[0].Addr().Network(), ls[0].Addr())
	}
	ul.SetUnlinkOnClose(false)
	return ul, nil
}

func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
