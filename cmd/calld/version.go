package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/calld/calld/internal/buildinfo"
)

// currentBuild is this binary's version and build (internal/buildinfo,
// the same the daemon reports).
func currentBuild() buildinfo.Info { return buildinfo.Read() }

// runVersion is `calld version [--json]`: this binary's version and build
// information (it does not ask the daemon; `calld status` shows the
// daemon's version).
func runVersion(_ context.Context, args []string, sio stdio) int {
	c := newClientCmd("version", "[--json]", sio)
	if _, err := c.parse(args, 0, 0); err != nil {
		return parseStatus(err)
	}
	b := currentBuild()
	if c.json {
		data, _ := json.Marshal(b)
		printRaw(sio.stdout, data)
		return 0
	}
	tw := tabwriter.NewWriter(sio.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "calld\t%s\n", b.Version)
	fmt.Fprintf(tw, "go\t%s\n", orDash(b.Go))
	fmt.Fprintf(tw, "module\t%s\n", orDash(b.Module))
	if b.Revision != "" {
		rev := b.Revision
		if b.Modified {
			rev += " (modified)"
		}
		fmt.Fprintf(tw, "revision\t%s\n", rev)
	}
	if b.Time != "" {
		fmt.Fprintf(tw, "built from\t%s\n", b.Time)
	}
	tw.Flush()
	return 0
}
