// Package buildinfo is calld's version, in the one place both `calld
// version` and the daemon (/v1/status, the logs) take it from.
//
// The version is, in order: what the linker set
// (go build -ldflags "-X github.com/calld/calld/internal/buildinfo.version=1.2.3"),
// else the module version (go install github.com/calld/calld/cmd/calld@v1.2.3),
// else, built from a checkout, the VCS revision (its first 12 hex digits,
// "+modified" when the tree had uncommitted changes), else "dev".
package buildinfo

import "runtime/debug"

// version is set by the linker (see the package comment).
var version string

// Info is the binary's build: what `calld version --json` prints.
type Info struct {
	Version  string `json:"version"`
	Go       string `json:"go"`
	Module   string `json:"module,omitempty"`
	Revision string `json:"revision,omitempty"`
	Time     string `json:"time,omitempty"`
	Modified bool   `json:"modified,omitempty"`
}

// Read returns this binary's build information.
func Read() Info {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		info = nil
	}
	return from(version, info)
}

// Version is Read().Version.
func Version() string { return Read().Version }

// from derives the Info from the linker's version (may be empty) and the
// build information (nil when the binary has none).
func from(linked string, info *debug.BuildInfo) Info {
	b := Info{Version: linked}
	if info != nil {
		b.Go, b.Module = info.GoVersion, info.Main.Path
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
	}
	switch {
	case b.Version != "":
	case info != nil && info.Main.Version != "" && info.Main.Version != "(devel)":
		b.Version = info.Main.Version
	case b.Revision != "":
		b.Version = b.Revision[:min(12, len(b.Revision))]
		if b.Modified {
			b.Version += "+modified"
		}
	default:
		b.Version = "dev"
	}
	return b
}
