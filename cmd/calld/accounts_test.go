package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calld/calld"
)

// TestResolveSocket: the socket a client command talks to: --socket,
// else --account ($CALLD_RUN_DIR/NAME.sock), else $CALLD_ACCOUNT, else
// $CALLD_SOCKET, else control.socket of --config ($CALLD_CONFIG), else
// the default; --socket with --account (and $CALLD_SOCKET with
// $CALLD_ACCOUNT) is an error, as is a name that is no account name.
func TestResolveSocket(t *testing.T) {
	cfg := writeFile(t, "c.toml", "[control]\nsocket = \"/tmp/from-config.sock\"\n")
	for _, tc := range []struct {
		name                  string
		socket, account, conf string
		env                   map[string]string
		want, err             string
	}{
		{name: "default", want: "/run/calld.sock"},
		{name: "config", conf: cfg, want: "/tmp/from-config.sock"},
		{name: "$CALLD_CONFIG", env: map[string]string{"CALLD_CONFIG": cfg}, want: "/tmp/from-config.sock"},
		{name: "$CALLD_SOCKET over config", conf: cfg, env: map[string]string{"CALLD_SOCKET": "/tmp/env.sock"}, want: "/tmp/env.sock"},
		{name: "--socket", socket: "/tmp/flag.sock", env: map[string]string{"CALLD_ACCOUNT": "bob"}, want: "/tmp/flag.sock"},
		{name: "--account", account: "alice", want: "/run/calld/alice.sock"},
		{name: "--account in $CALLD_RUN_DIR", account: "alice", env: map[string]string{"CALLD_RUN_DIR": "/tmp/run"}, want: "/tmp/run/alice.sock"},
		{name: "--account over $CALLD_SOCKET", account: "alice", env: map[string]string{"CALLD_SOCKET": "/tmp/env.sock"}, want: "/run/calld/alice.sock"},
		{name: "--account over config", account: "alice", conf: cfg, want: "/run/calld/alice.sock"},
		{name: "$CALLD_ACCOUNT", env: map[string]string{"CALLD_ACCOUNT": "bob"}, want: "/run/calld/bob.sock"},
		{name: "--account over $CALLD_ACCOUNT", account: "alice", env: map[string]string{"CALLD_ACCOUNT": "bob"}, want: "/run/calld/alice.sock"},
		{name: "$CALLD_ACCOUNT over config", conf: cfg, env: map[string]string{"CALLD_ACCOUNT": "bob"}, want: "/run/calld/bob.sock"},
		{name: "--socket and --account", socket: "/tmp/flag.sock", account: "alice", err: "--socket and --account name two sockets"},
		{name: "both variables", env: map[string]string{"CALLD_SOCKET": "/tmp/env.sock", "CALLD_ACCOUNT": "bob"}, err: "$CALLD_SOCKET and $CALLD_ACCOUNT name two sockets"},
		{name: "bad --account", account: "../etc", err: "--account: \"../etc\" is not an account name"},
		{name: "bad $CALLD_ACCOUNT", env: map[string]string{"CALLD_ACCOUNT": "a b"}, err: "$CALLD_ACCOUNT: \"a b\" is not an account name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resolveSocket(tc.socket, tc.account, tc.conf, func(k string) string { return tc.env[k] })
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("resolveSocket = %q, %v; want an error with %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("resolveSocket = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// deadSocket leaves a socket file at path that nobody listens on (what a
// daemon killed by SIGKILL leaves behind).
func deadSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestAccounts: `calld accounts` lists every *.sock of $CALLD_RUN_DIR,
// sorted, one row each with the daemon's account (else the socket's
// name), its connection, authorization and live calls; a socket whose
// daemon does not answer is a row saying so and makes the exit status 3;
// --json prints an array; --account NAME and $CALLD_ACCOUNT reach
// NAME.sock there; the shell completes --account from the sockets.
func TestAccounts(t *testing.T) {
	dir := t.TempDir()
	alice := startDaemonAt(t, filepath.Join(dir, "alice.sock"))
	alice.svc.setStatus(func(st *calld.Status) { st.Account = "alice" })
	b := startDaemonAt(t, filepath.Join(dir, "b.sock"))
	b.svc.setStatus(func(st *calld.Status) {
		st.Telegram.Connected, st.Telegram.Authorized, st.Calls.Live = false, false, 0
	})
	deadSocket(t, filepath.Join(dir, "dead.sock"))
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CALLD_RUN_DIR": dir}
	ctx := context.Background()

	code, stdout, stderr := runCLI(ctx, []string{"accounts"}, env, "")
	if code != exitUnhealthy {
		t.Errorf("accounts with a dead socket: exit %d, want %d; stderr %s", code, exitUnhealthy, stderr)
	}
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	want := [][]string{
		{"ACCOUNT", "SOCKET", "TELEGRAM", "AUTHORIZED", "LIVE"},
		{"alice", filepath.Join(dir, "alice.sock"), "connected", "yes", "2"},
		{"b", filepath.Join(dir, "b.sock"), "disconnected", "no", "0"},
		{"dead", filepath.Join(dir, "dead.sock"), "not", "answering:", "connection", "refused", "-", "-"},
	}
	if len(lines) != len(want) {
		t.Fatalf("accounts: %d lines, want %d:\n%s", len(lines), len(want), stdout)
	}
	for i, w := range want {
		if got := strings.Fields(lines[i]); len(got) < len(w) || !equalPrefix(got, w) {
			t.Errorf("accounts line %d = %q, want fields %q", i, lines[i], w)
		}
	}

	code, stdout, _ = runCLI(ctx, []string{"accounts", "--json"}, env, "")
	var rows []accountRow
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil || code != exitUnhealthy || len(rows) != 3 {
		t.Fatalf("accounts --json: exit %d, %v:\n%s", code, err, stdout)
	}
	if r := rows[0]; r.Account != "alice" || r.Socket != alice.socket || !r.Answering || r.Status == nil || r.Status.Calls.Live != 2 || r.Error != "" {
		t.Errorf("alice's row %+v", r)
	}
	if r := rows[1]; r.Account != "b" || !r.Answering || r.Status == nil || r.Status.Telegram.Connected {
		t.Errorf("b's row %+v", r)
	}
	if r := rows[2]; r.Account != "dead" || r.Answering || r.Status != nil || !strings.Contains(r.Error, "connection refused") {
		t.Errorf("dead's row %+v", r)
	}

	// Completion of --account: the sockets' names, before a command too.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"__complete", "status", "--account", ""}, "alice b dead"},
		{[]string{"__complete", "calls", "--all", "--account", "d"}, "dead"},
		{[]string{"__complete", "show", "--account=a"}, "--account=alice"},
		{[]string{"__complete", "--account", "a"}, "alice"},
		{[]string{"__complete", "--account", ""}, "alice b dead"},
	} {
		_, stdout, _ = runCLI(ctx, tc.args, env, "")
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		if got := strings.Join(lines[:len(lines)-1], " "); got != tc.want || lines[len(lines)-1] != ":4" {
			t.Errorf("%q: %q, want %q and :4 (no file completion)", tc.args, stdout, tc.want)
		}
	}

	if err := os.Remove(filepath.Join(dir, "dead.sock")); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := runCLI(ctx, []string{"accounts"}, env, ""); code != 0 || strings.Count(stdout, "\n") != 3 {
		t.Errorf("accounts, every daemon answering: exit %d\n%s%s", code, stdout, stderr)
	}
	// --account picks NAME.sock in $CALLD_RUN_DIR, before or after the
	// command, and so does $CALLD_ACCOUNT.
	for _, tc := range []struct {
		args []string
		env  map[string]string
	}{
		{[]string{"--account", "alice", "status", "--json"}, env},
		{[]string{"status", "--json", "--account=alice"}, env},
		{[]string{"status", "--json"}, map[string]string{"CALLD_RUN_DIR": dir, "CALLD_ACCOUNT": "alice"}},
	} {
		code, stdout, stderr := runCLI(ctx, tc.args, tc.env, "")
		if code != 0 || !strings.Contains(stdout, `"account":"alice"`) {
			t.Errorf("%q %v: exit %d\n%s%s", tc.args, tc.env, code, stdout, stderr)
		}
	}
	// The README's `calld --account NAME login`.
	code, stdout, stderr = runCLI(ctx, []string{"--account", "alice", "login"}, env, "+15551234567\n24680\ns3cret\n")
	if code != 0 || !strings.Contains(stdout, "9007199254740997") {
		t.Errorf("calld --account alice login: exit %d\n%s%s", code, stdout, stderr)
	}
	code, _, stderr = runCLI(ctx, []string{"status", "--account", "alice", "--socket", alice.socket}, env, "")
	if code != 2 || !strings.Contains(stderr, "--socket and --account name two sockets") {
		t.Errorf("--socket with --account: exit %d, %s", code, stderr)
	}
}

// TestAccountsEmpty: no run directory, or none with sockets: no rows,
// exit 0.
func TestAccountsEmpty(t *testing.T) {
	for _, dir := range []string{filepath.Join(t.TempDir(), "missing"), t.TempDir()} {
		code, stdout, stderr := runCLI(context.Background(), []string{"accounts"}, map[string]string{"CALLD_RUN_DIR": dir}, "")
		if code != 0 || !strings.HasPrefix(stdout, "ACCOUNT") || strings.Count(stdout, "\n") != 1 {
			t.Errorf("accounts in %s: exit %d\n%s%s", dir, code, stdout, stderr)
		}
		code, stdout, _ = runCLI(context.Background(), []string{"accounts", "--json"}, map[string]string{"CALLD_RUN_DIR": dir}, "")
		if code != 0 || strings.TrimSpace(stdout) != "[]" {
			t.Errorf("accounts --json in %s: exit %d %q", dir, code, stdout)
		}
	}
}

// TestRunDirMatchesUnits: the default run directory is where
// calld@.socket listens and calld@.service serves.
func TestRunDirMatchesUnits(t *testing.T) {
	for file, want := range map[string]string{
		"calld@.socket":  "\nListenStream=" + defaultRunDir + "/%i.sock\n",
		"calld@.service": " --socket " + defaultRunDir + "/%i.sock",
	} {
		data, err := os.ReadFile(filepath.Join("..", "..", "configs", file))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), want) {
			t.Errorf("configs/%s lacks %q", file, want)
		}
	}
}

func equalPrefix(got, want []string) bool {
	for i, w := range want {
		if got[i] != w {
			return false
		}
	}
	return true
}
