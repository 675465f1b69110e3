package main

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/calld/calld/internal/config"
)

// TestConfigCommands: `calld config check` exits 0 for a good file and 2
// naming the key and line for a bad one; `calld config default` prints
// the commented example, which decodes to the defaults.
func TestConfigCommands(t *testing.T) {
	good := writeFile(t, "good.toml", "[control]\nsocket = \"/tmp/x.sock\"\n")
	bad := writeFile(t, "bad.toml", "[control]\nsocket = \"/tmp/x.sock\"\n\n[policy]\nincomng = \"busy\"\n")
	badValue := writeFile(t, "value.toml", "[log]\nlevel = \"loud\"\n")
	account := writeFile(t, "alice.toml", "[telegram]\naccount = \"alice\"\n")
	badAccount := writeFile(t, "bob.toml", "\n[telegram]\naccount = \"bob/../x\"\n")
	badKeys := writeFile(t, "keys.toml", "[telegram]\npublic_keys = \"/nonexistent/keys.pem\"\n")
	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		code   int
		stdout string
		stderr []string
	}{
		{"check good", []string{"config", "check", "--config", good}, nil, 0, good + ": ok", nil},
		{"check flag after", []string{"config", "check", "--config=" + good}, nil, 0, good + ": ok", nil},
		{"check $CALLD_CONFIG", []string{"config", "check"}, map[string]string{"CALLD_CONFIG": good}, 0, good + ": ok", nil},
		{"check account", []string{"config", "check", "--config", account}, nil, 0, account + ": ok (account alice)\n", nil},
		{"check bad account", []string{"config", "check", "--config", badAccount}, nil, 2, "", []string{badAccount + ":3: telegram.account: ", "letters, digits"}},
		{"check unknown key", []string{"config", "check", "--config", bad}, nil, 2, "", []string{bad + ":5: policy.incomng"}},
		{"check bad value", []string{"config", "check", "--config", badValue}, nil, 2, "", []string{badValue + ":2:", "log.level"}},
		{"check keys file", []string{"config", "check", "--config", badKeys}, nil, 2, "", []string{badKeys + ":2: telegram.public_keys: ", "/nonexistent/keys.pem"}},
		{"check missing file", []string{"config", "check", "--config", "/nonexistent/calld.toml"}, nil, 2, "", []string{"/nonexistent/calld.toml"}},
		{"check no file", []string{"config", "check"}, nil, 2, "", []string{"no configuration file"}},
		{"check extra argument", []string{"config", "check", "now"}, nil, 2, "", []string{`unexpected argument "now"`}},
		{"check help", []string{"config", "check", "-h"}, nil, 0, "usage: calld config check [--config FILE]", nil},
		{"no subcommand", []string{"config"}, nil, 2, "", []string{"usage: calld config check|default"}},
		{"unknown subcommand", []string{"config", "frob"}, nil, 2, "", []string{`unknown config command "frob"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(context.Background(), tt.args, tt.env, "")
			if code != tt.code || !strings.Contains(stdout, tt.stdout) {
				t.Errorf("exit %d stdout %q, want %d and %q; stderr %s", code, stdout, tt.code, tt.stdout, stderr)
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q: %s", s, stderr)
				}
			}
		})
	}
	t.Run("default", func(t *testing.T) {
		code, stdout, stderr := runCLI(context.Background(), []string{"config", "default"}, nil, "")
		if code != 0 || stderr != "" {
			t.Fatalf("exit %d stderr %q", code, stderr)
		}
		if !strings.HasPrefix(stdout, "# calld.toml: configuration of calld") || strings.Count(stdout, "\n#") < 50 {
			t.Errorf("not the commented example:\n%s", stdout)
		}
		cfg, err := config.Parse([]byte(stdout), "default")
		if err != nil {
			t.Fatal(err)
		}
		if want := config.Default(); !reflect.DeepEqual(cfg, want) {
			t.Errorf("calld config default decodes to\n%+v\nwant the defaults\n%+v", cfg, want)
		}
	})
}
