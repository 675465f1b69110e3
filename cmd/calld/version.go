package main

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"text/tabwriter"

	"github.com/calld/calld/client"
)

// version is set at build time: go build -ldflags "-X main.version=1.2.3".
var version = "dev"

// buildInfo is what `calld version --json` prints.
type buildInfo struct {
	Version  string `json:"version"`
	Go       string `json:"go"`
	Module   string `json:"module,omitempty"`
	Revision string `json:"revision,omitempty"`
	Time     string `json:"time,omitempty"`
	Modified bool   `json:"modified,omitempty"`
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

func currentBuild() buildInfo {
	b := buildInfo{Version: version}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	b.Go = info.GoVersion
	b.Module = info.Main.Path
	if b.Version == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		b.Version = info.Main.Version
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

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
