package logging

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that the tests leave no goroutine. It calls goleak
// itself rather than internal/leaktest because logging imports no calld
// package, even in its tests (TestLeaf).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
