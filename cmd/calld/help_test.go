package main

import (
	"context"
	"debug/elf"
	"debug/gosym"
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

// TestUsageLayout: the usage lists a command's commands under its groups'
// titles, in the order they were added, names padded to one column (or
// under "Commands:" for a command without groups, config's), then its
// flags.
func TestUsageLayout(t *testing.T) {
	tests := []struct {
		args []string
		want []string // in this order, each a whole line
	}{
		{[]string{"-h"}, []string{
			"usage: calld COMMAND [flags] [args]", "", "The daemon:",
			"  serve       run the daemon in the foreground", "  demo        a self-contained tour with an embedded simulator", "",
			"Clients of the running daemon:", "  login       log the Telegram account in through the running daemon",
			"  connection  choose the relay (CONN_ID) an active call's media uses", "",
			"Configuration and shell:", "  config      check or print the configuration",
			"  help        Help about any command", "",
			"Flags:", "  -h, --help           help for calld"}},
		{[]string{"config", "-h"}, []string{
			"usage: calld config check|default", "", "Commands:",
			"  check       validate a configuration file: exit 0, or 2 naming the key and line",
			"  default     print the fully commented default configuration", "",
			"Flags:", "  -h, --help   help for config"}},
	}
	for _, tt := range tests {
		code, stdout, _ := runCLI(context.Background(), tt.args, nil, "")
		lines := strings.Split(stdout, "\n")
		i := 0
		for _, l := range lines {
			if i < len(tt.want) && l == tt.want[i] {
				i++
			}
		}
		if code != 0 || i < len(tt.want) || !strings.HasSuffix(stdout, "\n") || strings.HasSuffix(stdout, "\n\n") {
			t.Errorf("calld %s: exit %d, line %q not found in order in:\n%s", strings.Join(tt.args, " "), code, tt.want[min(i, len(tt.want)-1)], stdout)
		}
	}
}

// TestNoTextTemplate: calld does not link text/template (nor
// html/template). Their calls of methods by name make the linker keep
// every exported method of every type in the binary: with them calld was
// 56 MB instead of 27, carrying all of gotd's tg package, much of it
// resident (the usage function in cli.go says more). The binary looked at
// is this test's, which links the commands as calld does.
func TestNoTextTemplate(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(exe)
	if err != nil {
		t.Skipf("not an ELF binary: %v", err)
	}
	defer f.Close()
	// go test strips the symbol table; the function table stays.
	pcln, text := f.Section(".gopclntab"), f.Section(".text")
	if pcln == nil || text == nil {
		t.Fatalf("%s: no .gopclntab or .text", exe)
	}
	data, err := pcln.Data()
	if err != nil {
		t.Fatal(err)
	}
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(data, text.Addr))
	if err != nil {
		t.Fatalf("%s: %v", exe, err)
	}
	var seen int
	for _, fn := range tab.Funcs {
		if strings.HasPrefix(fn.Name, "main.") {
			seen++
		}
		if fn.Name == "text/template.(*Template).Execute" || fn.Name == "html/template.(*Template).Execute" {
			t.Errorf("%s links %s", exe, fn.Name)
		}
	}
	if seen == 0 {
		t.Fatalf("%s: no function of package main among %d: not the binary looked for", exe, len(tab.Funcs))
	}
}
