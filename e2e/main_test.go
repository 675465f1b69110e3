package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/calld/calld/internal/leaktest"
)

// e2eVersion is the version the tests' binary is built with.
const e2eVersion = "0.0.0-e2e"

// TestMain builds the binary the tests run, then runs them and checks
// that they leave no goroutine (internal/leaktest).
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "calld-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "calld")
	// The version as a release sets it (internal/buildinfo).
	args := []string{"build", "-ldflags", "-X github.com/calld/calld/internal/buildinfo.version=" + e2eVersion, "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, "../cmd/calld")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	leaktest.Main(m, func() { os.RemoveAll(dir) })
}
