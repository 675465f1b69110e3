package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/calld/calld/internal/leaktest"
)

// TestMain builds the binary the tests run, then runs them and checks
// that they leave no goroutine (internal/leaktest).
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "calld-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "calld")
	args := []string{"build", "-o", binary}
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
