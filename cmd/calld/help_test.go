package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestHelp: every command answers -h, --help and `calld help CMD` alike,
// with exit status 0 and its own usage on stdout, its flags written
// --flag as in the synopsis.
func TestHelp(t *testing.T) {
	cmds := [][]string{{"serve"}, {"demo"}, {"config", "check"}, {"config", "default"}, {"completion"}}
	for _, name := range commandOrder {
		cmds = append(cmds, []string{name})
	}
	oneDash := regexp.MustCompile(`(^|\s)-[a-z]{2,}`)
	for _, cmd := range cmds {
		path := strings.Join(cmd, " ")
		var outs []string
		for _, args := range [][]string{append(cmd[:len(cmd):len(cmd)], "-h"), append(cmd[:len(cmd):len(cmd)], "--help"), append([]string{"help"}, cmd...)} {
			code, stdout, stderr := runCLI(context.Background(), args, nil, "")
			if code != 0 || stderr != "" || !strings.Contains(stdout, "usage: calld "+path) {
				t.Errorf("calld %s: exit %d, stderr %q, stdout:\n%s", strings.Join(args, " "), code, stderr, stdout)
			}
			if m := oneDash.FindString(stdout); m != "" {
				t.Errorf("calld %s shows a one-dash flag %q:\n%s", strings.Join(args, " "), m, stdout)
			}
			outs = append(outs, stdout)
		}
		if outs[0] != outs[1] || outs[1] != outs[2] {
			t.Errorf("calld %s: -h, --help and help differ:\n%s\n---\n%s\n---\n%s", path, outs[0], outs[1], outs[2])
		}
	}
	t.Run("version lists only its flags", func(t *testing.T) {
		_, stdout, _ := runCLI(context.Background(), []string{"version", "-h"}, nil, "")
		flags := regexp.MustCompile(`(?m)^\s+(?:-\w, )?(--[a-z-]+)`).FindAllStringSubmatch(stdout, -1)
		var got []string
		for _, f := range flags {
			got = append(got, f[1])
		}
		if strings.Join(got, " ") != "--socket --account --config --json --help" {
			t.Errorf("version -h lists %v, want --socket --account --config --json --help:\n%s", got, stdout)
		}
	})
	t.Run("top level", func(t *testing.T) {
		for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}, {"-help"}} {
			code, stdout, _ := runCLI(context.Background(), args, nil, "")
			if code != 0 || !strings.Contains(stdout, "Clients of the running daemon:") || !strings.Contains(stdout, "completion") ||
				!strings.Contains(stdout, "--account NAME") || !strings.Contains(stdout, "$CALLD_ACCOUNT") {
				t.Errorf("calld %v: exit %d\n%s", args, code, stdout)
			}
		}
	})
}

// TestCompletionAndMan: the completion scripts and the man pages come
// from the same definitions as the help.
func TestCompletionAndMan(t *testing.T) {
	for _, tt := range []struct{ shell, want string }{
		{"bash", "complete -o default -F __start_calld calld"},
		{"zsh", "#compdef calld"},
		{"fish", "complete -c calld"},
	} {
		code, stdout, stderr := runCLI(context.Background(), []string{"completion", tt.shell}, nil, "")
		if code != 0 || !strings.Contains(stdout, tt.want) {
			t.Errorf("completion %s: exit %d stderr %q, stdout lacks %q", tt.shell, code, stderr, tt.want)
		}
	}
	if code, _, stderr := runCLI(context.Background(), []string{"completion", "tcsh"}, nil, ""); code != 2 || !strings.Contains(stderr, "tcsh") {
		t.Errorf("completion tcsh: exit %d stderr %q", code, stderr)
	}
	// The completion protocol itself: subcommands, and a command's flags.
	code, stdout, _ := runCLI(context.Background(), []string{"__complete", "st"}, nil, "")
	if code != 0 || !strings.Contains(stdout, "status\t") {
		t.Errorf("__complete st: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = runCLI(context.Background(), []string{"__complete", "events", "--f"}, nil, "")
	if code != 0 || !strings.Contains(stdout, "--follow") {
		t.Errorf("__complete events --f: exit %d\n%s", code, stdout)
	}

	dir := t.TempDir()
	if code, _, stderr := runCLI(context.Background(), []string{"man", dir}, nil, ""); code != 0 {
		t.Fatalf("man: exit %d %s", code, stderr)
	}
	for _, page := range []string{"calld.1", "calld-status.1", "calld-config-check.1", "calld-serve.1"} {
		data, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil {
			t.Error(err)
			continue
		}
		if !strings.Contains(string(data), ".TH \"CALLD\" \"1\"") {
			t.Errorf("%s is not a man page:\n%s", page, data)
		}
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "calld-serve.1")); !strings.Contains(string(data), `--sim`) {
		t.Errorf("calld-serve.1 lacks --sim:\n%s", data)
	}
}

// TestServeFlagSpellings: serve takes its flags as the flag package did,
// with one dash or two, the value after a space or an =. (An extra
// argument ends serve after the flags are parsed, before it touches
// signals or files.)
func TestServeFlagSpellings(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--config", "/nonexistent/x.toml", "extra"},
		{"serve", "-config", "/nonexistent/x.toml", "--sim", "extra"},
		{"serve", "--config=/nonexistent/x.toml", "-sim", "extra"},
		{"serve", "-config=/nonexistent/x.toml", "-state", "x.db", "--socket=x.sock", "extra"},
	} {
		code, _, stderr := runCLI(context.Background(), args, nil, "")
		if code != 2 || !strings.Contains(stderr, `calld serve: unexpected argument "extra"`) {
			t.Errorf("calld %s: exit %d stderr %q, want 2 for the extra argument only", strings.Join(args, " "), code, stderr)
		}
	}
	code, _, stderr := runCLI(context.Background(), []string{"serve", "--bogus"}, nil, "")
	if code != 2 || !strings.Contains(stderr, "unknown flag: --bogus") || !strings.Contains(stderr, "usage: calld serve") {
		t.Errorf("serve --bogus: exit %d stderr %q", code, stderr)
	}
}
