package control

import (
	"os"
	"testing"

	"github.com/calld/calld/internal/leaktest"
)

// TestMain is the child of the peer-credential test when asked
// (peercred_test.go), else it runs the tests and checks that they leave
// no goroutine (internal/leaktest).
func TestMain(m *testing.M) {
	if socket := os.Getenv(childEnv); socket != "" {
		childMain(socket)
		return
	}
	leaktest.Main(m, nil)
}
