package store

import (
	"os"
	"testing"

	"github.com/calld/calld/internal/leaktest"
)

// TestMain is the crash test's helper process when asked (crash_test.go),
// else it runs the tests and checks that they leave no goroutine
// (internal/leaktest).
func TestMain(m *testing.M) {
	if path := os.Getenv(crashEnv); path != "" {
		os.Exit(crashHelper(path))
	}
	leaktest.Main(m, nil)
}
