// Package leaktest is the goroutine-leak check of every package's tests:
// each package's TestMain (in its main_test.go) is Main. After the tests,
// and after the package's shared fixtures are closed, no goroutine may be
// left. A goroutine calld starts has an owner that waits for it before its
// Close (or Run) returns (internal/group), so a leak found here is a bug to
// fix, never one to ignore. A package may ignore only goroutines that are
// not calld's and outlive a test by design (extra), each with a comment
// saying whose and why; none needs to today.
package leaktest

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// Main runs the tests, then cleanup (the package's shared fixtures: a
// simulator started once for all tests), then checks that no goroutine
// is left (go.uber.org/goleak, which waits a little for goroutines still
// winding down), and exits. extra are the package's ignores (see the
// package comment).
func Main(m *testing.M, cleanup func(), extra ...goleak.Option) {
	code := m.Run()
	if cleanup != nil {
		cleanup()
	}
	if code == 0 {
		if err := goleak.Find(extra...); err != nil {
			fmt.Fprintf(os.Stderr, "leaktest: goroutines left after the tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
