package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/calld/calld/internal/demo"
)

// runDemo is `calld demo`: the embedded simulator, a real daemon on a
// temporary state file and socket, and scripted call traffic.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("calld demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	logs := fs.Bool("logs", false, "also print the daemon's JSON log lines on stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: calld demo [--logs]")
		return 2
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := demo.Options{}
	if *logs {
		opts.Logs = stderr
	}
	if err := demo.Run(ctx, stdout, opts); err != nil {
		fmt.Fprintf(stderr, "calld demo: %v\n", err)
		return 1
	}
	return 0
}
