//go:build !race

package gotdrace

const raceEnabled = false
