package main

import (
	"testing"

	"github.com/calld/calld/internal/leaktest"
)

// TestMain checks that the tests leave no goroutine (internal/leaktest).
func TestMain(m *testing.M) { leaktest.Main(m, nil) }
