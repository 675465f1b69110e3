package main

import (
	"context"
	"fmt"
	"io"
)

// runServe runs the daemon. It is being written; until then it says so.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "calld serve: not implemented yet")
	return 1
}
