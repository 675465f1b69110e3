//go:build race

package gotdrace

const raceEnabled = true
