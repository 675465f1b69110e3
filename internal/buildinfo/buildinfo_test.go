package buildinfo

import (
	"runtime/debug"
	"testing"

	"github.com/calld/calld/internal/leaktest"
)

// TestMain checks that the tests leave no goroutine (internal/leaktest).
func TestMain(m *testing.M) { leaktest.Main(m, nil) }

func TestFrom(t *testing.T) {
	checkout := func(rev, modified string) *debug.BuildInfo {
		return &debug.BuildInfo{GoVersion: "go1.24.0", Main: debug.Module{Path: "github.com/calld/calld", Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.time", Value: "2026-11-30T04:00:00Z"}, {Key: "vcs.modified", Value: modified}}}
	}
	const rev = "0123456789abcdef0123456789abcdef01234567"
	tests := []struct {
		name   string
		linked string
		info   *debug.BuildInfo
		want   Info
	}{
		{"no build info", "", nil, Info{Version: "dev"}},
		{"linker wins", "1.2.3", checkout(rev, "true"),
			Info{Version: "1.2.3", Go: "go1.24.0", Module: "github.com/calld/calld", Revision: rev, Time: "2026-11-30T04:00:00Z", Modified: true}},
		{"go install @version", "", &debug.BuildInfo{GoVersion: "go1.24.0", Main: debug.Module{Path: "github.com/calld/calld", Version: "v1.4.0"}},
			Info{Version: "v1.4.0", Go: "go1.24.0", Module: "github.com/calld/calld"}},
		{"clean checkout", "", checkout(rev, "false"),
			Info{Version: "0123456789ab", Go: "go1.24.0", Module: "github.com/calld/calld", Revision: rev, Time: "2026-11-30T04:00:00Z"}},
		{"modified checkout", "", checkout(rev, "true"),
			Info{Version: "0123456789ab+modified", Go: "go1.24.0", Module: "github.com/calld/calld", Revision: rev, Time: "2026-11-30T04:00:00Z", Modified: true}},
		{"devel without vcs (go test, go run)", "", &debug.BuildInfo{GoVersion: "go1.24.0", Main: debug.Module{Path: "github.com/calld/calld", Version: "(devel)"}},
			Info{Version: "dev", Go: "go1.24.0", Module: "github.com/calld/calld"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := from(tt.linked, tt.info); got != tt.want {
				t.Errorf("from = %+v, want %+v", got, tt.want)
			}
		})
	}
}
