package manager_test

import (
	"testing"

	"github.com/calld/calld/internal/leaktest"
)

// TestMain runs the tests, closes the simulator they share, and checks
// that they leave no goroutine (internal/leaktest).
func TestMain(m *testing.M) { leaktest.Main(m, closeShared) }
