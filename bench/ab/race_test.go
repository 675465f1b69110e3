//go:build race

package main

// raceEnabled: the binaries TestSmallRun builds are built with -race too,
// as e2e's are, so that both share the build cache.
const raceEnabled = true
