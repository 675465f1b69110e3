package client_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that the tests leave no goroutine. The client is
// public and a user's program links it, so its tests check with goleak
// directly, as a user would, rather than through internal/leaktest.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
