package main

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"text/tabwriter"
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
