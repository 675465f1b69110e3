// Package configs holds the files installed next to the binary: the
// commented example configuration (calld.toml, embedded here as the one
// source of `calld config default`), the systemd units, sysusers.d and
// tmpfiles.d entries (read by the packaging and the units' tests).
package configs

import _ "embed"

// Example is calld.toml: every key at its default, fully commented.
// internal/config's tests keep it equal to config.Default().
//
//go:embed calld.toml
var Example []byte
