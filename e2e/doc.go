// Package e2e holds the end-to-end tests of the built calld binary (see
// e2e_test.go); it has no code of its own.
package e2e
