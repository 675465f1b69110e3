package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/calld/calld/client"
	"github.com/calld/calld/internal/buildinfo"
)

// buildInfo is what `calld version --json` prints: this binary's build
// (internal/buildinfo, the same the daemon reports) and the daemon's.
type buildInfo struct {
	buildinfo.Info
	// Daemon is the running daemon's version (from GET /v1/status), or
	// why it is not known; only `calld version` fills it in.
	Daemon *daemonVersion `json:"daemon,omitempty"`
}

// daemonVersion is the daemon part of `calld version --json`: its
// version, or the error that kept the client from asking (not running).
type daemonVersion struct {
	Version string `json:"version,omitempty"`
	Error   string `json:"error,omitempty"`
}

// currentBuild is this binary's version and build.
func currentBuild() buildInfo { return buildInfo{Info: buildinfo.Read()} }

// runVersion is `calld version [--json]`: this binary's version and build
// information, and the running daemon's version (GET /v1/status; "not
// running" when it cannot be reached, which is not an error here).
func runVersion(ctx context.Context, args []string, sio stdio) int {
	c := newClientCmd("version", commonFlags, sio)
	if _, err := c.parse(args, 0, 0); err != nil {
		return parseStatus(err)
	}
	b := currentBuild()
	cl, code := c.client()
	if cl == nil {
		return code
	}
	b.Daemon = askDaemonVersion(ctx, cl)
	cl.Close()
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
	daemon := b.Daemon.Version
	if b.Daemon.Error != "" {
		daemon = "not running"
	}
	fmt.Fprintf(tw, "daemon\t%s\n", daemon)
	tw.Flush()
	return 0
}

// askDaemonVersion asks the daemon for its version.
func askDaemonVersion(ctx context.Context, cl *client.Client) *daemonVersion {
	st, err := cl.Status(ctx)
	if err != nil {
		return &daemonVersion{Error: err.Error()}
	}
	return &daemonVersion{Version: st.Version}
}
