// Command calld is the Telegram call-state daemon (calld serve), its
// self-contained tour (calld demo) and the client of its control socket
// (every other subcommand; see CONTRACT §1).
//
// This file owns the dispatch; each client subcommand lives in its own
// file, and the shared flag, socket and output helpers in output.go.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/gotd/td/clock"
	"github.com/spf13/cobra"
)

// stdio is what a subcommand may touch of the process: the standard
// streams, the environment and the clock (injected by tests).
type stdio struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	clock  clock.Clock

	// cmd is the command being declared or run (cli.go); declare is set
	// while the command tree is built: the command declares its flags
	// and arguments and returns.
	cmd     *cobra.Command
	declare bool
}

// command is one client subcommand.
type command struct {
	run     func(ctx context.Context, args []string, sio stdio) int
	summary string
}

var commands = map[string]command{
	"login":      {runLogin, "log the Telegram account in through the running daemon"},
	"status":     {runStatus, "daemon, connection, authorization and updates-state summary"},
	"accounts":   {runAccounts, "every daemon in $CALLD_RUN_DIR (/run/calld): account, connection, live calls"},
	"calls":      {runCalls, "table of live calls (--all: every known call)"},
	"show":       {runShow, "one call, all fields"},
	"discard":    {runDiscard, "end or refuse a call"},
	"call":       {runCall, "place an outgoing call"},
	"accept":     {runAccept, "accept an incoming ringing call"},
	"events":     {runEvents, "the event stream (NDJSON with --json)"},
	"signaling":  {runSignaling, "a call's incoming signaling payloads (--follow: until it ends)"},
	"rate":       {runRate, "rate an ended call that asked for it (1..5, --comment)"},
	"media":      {runMedia, "an active call's media parameters (--json: with the secrets)"},
	"connection": {runConnection, "choose the relay (CONN_ID) an active call's media uses"},
	"version":    {runVersion, "this binary's version and build info, and the daemon's version"},
}

var commandOrder = []string{"login", "status", "accounts", "calls", "show", "discard", "call", "accept", "events", "signaling", "rate", "media", "connection", "version"}

func main() {
	args := os.Args[1:]
	sio := stdio{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, clock: clock.System}
	if len(args) > 0 && (args[0] == "serve" || args[0] == "demo") {
		// The daemon and the demo handle signals themselves.
		os.Exit(run(context.Background(), args, sio))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, args, sio)
	stop()
	os.Exit(code)
}
