package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gotd/neo"

	"github.com/calld/calld/internal/config"
	"github.com/calld/calld/internal/sim"
)

// TestServePaths: --state and --socket win over $CALLD_STATE and
// $CALLD_SOCKET, which win over the file; `--sim` without a config puts
// what nothing names in a fresh directory under $XDG_RUNTIME_DIR.
func TestServePaths(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "calld.toml")
	if err := os.WriteFile(file, []byte("[telegram]\napi_id = 1\napi_hash = \"h\"\n[state]\npath = \"/file.db\"\n[control]\nsocket = \"/file.sock\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name                  string
		flags                 servePaths
		envState, envSocket   string
		sim                   bool   // --sim without a config
		wantState, wantSocket string // "fresh/..." is in the fresh directory
	}{
		{name: "file", wantState: "/file.db", wantSocket: "/file.sock"},
		{name: "env", envState: "/env.db", envSocket: "/env.sock", wantState: "/env.db", wantSocket: "/env.sock"},
		{name: "flags", flags: servePaths{"/flag.db", "/flag.sock"}, envState: "/env.db", envSocket: "/env.sock", wantState: "/flag.db", wantSocket: "/flag.sock"},
		{name: "sim fresh", sim: true, wantState: "fresh/calld.db", wantSocket: "fresh/calld.sock"},
		{name: "sim state flag", sim: true, flags: servePaths{state: "/flag.db"}, wantState: "/flag.db", wantSocket: "fresh/calld.sock"},
		{name: "sim both named", sim: true, envState: "/env.db", flags: servePaths{socket: "/flag.sock"}, wantState: "/env.db", wantSocket: "/flag.sock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runtime := t.TempDir()
			t.Setenv("XDG_RUNTIME_DIR", runtime)
			t.Setenv(config.EnvState, tc.envState)
			t.Setenv(config.EnvSocket, tc.envSocket)
			p, path := tc.flags, file
			fresh := ""
			if tc.sim {
				path = ""
				var err error
				if fresh, err = p.simDir(); err != nil {
					t.Fatal(err)
				}
				if fresh != "" && filepath.Dir(fresh) != runtime {
					t.Fatalf("fresh directory %s not under $XDG_RUNTIME_DIR %s", fresh, runtime)
				}
			}
			cfg, err := loadServeConfig(path, tc.sim, p)
			if err != nil {
				t.Fatal(err)
			}
			want := func(s string) string {
				if rest, ok := strings.CutPrefix(s, "fresh/"); ok {
					return filepath.Join(fresh, rest)
				}
				return s
			}
			if cfg.State.Path != want(tc.wantState) || cfg.Control.Socket != want(tc.wantSocket) {
				t.Fatalf("state %s socket %s; want %s and %s", cfg.State.Path, cfg.Control.Socket, want(tc.wantState), want(tc.wantSocket))
			}
			if wantFresh := strings.HasPrefix(tc.wantState, "fresh/") || strings.HasPrefix(tc.wantSocket, "fresh/"); (fresh != "") != wantFresh {
				t.Fatalf("fresh directory %q, want one: %v", fresh, wantFresh)
			}
		})
	}
}

// TestSimTrafficOnTheClock: under `serve --sim` a peer calls in every
// simIncomingEvery of the daemon's clock (a fake one here).
func TestSimTrafficOnTheClock(t *testing.T) {
	srv, err := sim.New(sim.Options{Authorized: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	clk := neo.NewTime(time.Now())
	waiting := clk.Observe() // closed when simTraffic waits for its next call
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		simTraffic(ctx, clk, srv)
	}()
	defer func() {
		cancel()
		<-done
	}()
	for i := 1; i <= 2; i++ {
		<-waiting
		if n := len(srv.Calls()); n != i-1 {
			t.Fatalf("%d calls before %d × %s, want %d", n, i, simIncomingEvery, i-1)
		}
		waiting = clk.Observe()
		clk.Travel(simIncomingEvery)
	}
	<-waiting
	if n := len(srv.Calls()); n != 2 {
		t.Fatalf("%d calls after 2 × %s, want 2", n, simIncomingEvery)
	}
}
