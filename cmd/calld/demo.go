package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/calld/calld/internal/demo"
)

// demoCommand is `calld demo [--logs]`.
func demoCommand(ctx context.Context, sio stdio, code *int) *cobra.Command {
	cmd := leaf("demo [--logs]", "a self-contained tour with an embedded simulator", "daemon")
	cmd.Args = cobra.NoArgs
	logs := cmd.Flags().Bool("logs", false, "also print the daemon's JSON log lines on stderr")
	cmd.RunE = func(*cobra.Command, []string) error {
		*code = runDemo(ctx, *logs, sio.stdout, sio.stderr)
		return nil
	}
	return cmd
}

// runDemo is `calld demo`: the embedded simulator, a real daemon on a
// temporary state file and socket, and scripted call traffic.
func runDemo(ctx context.Context, logs bool, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := demo.Options{}
	if logs {
		opts.Logs = stderr
	}
	if err := demo.Run(ctx, stdout, opts); err != nil {
		fmt.Fprintf(stderr, "calld demo: %v\n", err)
		return 1
	}
	return 0
}
