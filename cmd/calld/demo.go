package main

import (
	"context"
	"fmt"
	"io"
)

// runDemo runs the self-contained tour. It is being written; until then it says so.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "calld demo: not implemented yet")
	return 1
}
