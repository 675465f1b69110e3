package systemd

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/calld/calld/internal/config"
)

// unit is a minimally parsed systemd unit file: section -> key -> values
// (in order; a key may repeat).
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not key=value in a section: %q", path, n, line)
			}
			v = strings.TrimSpace(v)
			// systemd has no end-of-line comments: "Type=notify # x"
			// would set Type to all of it.
			if strings.Contains(v, " #") || strings.Contains(v, ";") {
				t.Errorf("%s:%d: comment inside a value: %q", path, n, line)
			}
			u[section][strings.TrimSpace(k)] = append(u[section][strings.TrimSpace(k)], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// get returns the last value of section.key, or "" (and an error) if unset.
func (u unit) get(t *testing.T, section, key string) string {
	t.Helper()
	vs := u[section][key]
	if len(vs) == 0 {
		t.Errorf("[%s] %s= is not set", section, key)
		return ""
	}
	return vs[len(vs)-1]
}

func TestUnitFiles(t *testing.T) {
	dir := "../../configs"
	svc := parseUnit(t, filepath.Join(dir, "calld.service"))
	sock := parseUnit(t, filepath.Join(dir, "calld.socket"))
	def := config.Default()

	equal := []struct {
		u            unit
		section, key string
		want         string
		what         string
	}{
		{svc, "Service", "Type", "notify", "the daemon speaks sd_notify"},
		{svc, "Service", "NotifyAccess", "main", ""},
		{svc, "Service", "ExecStart", "/usr/local/bin/calld serve --config " + config.DefaultPath, "the packaged config path"},
		{svc, "Service", "ExecReload", "/bin/kill -HUP $MAINPID", "SIGHUP reloads"},
		{svc, "Service", "User", "calld", "the sysusers user"},
		{svc, "Service", "Group", "calld", "the sysusers group"},
		{svc, "Service", "StateDirectory", strings.TrimPrefix(filepath.Dir(def.State.Path), "/var/lib/"), "state.path's directory"},
		{svc, "Service", "StateDirectoryMode", "0700", "the database holds the auth key"},
		{svc, "Service", "ConfigurationDirectory", strings.TrimPrefix(filepath.Dir(config.DefaultPath), "/etc/"), "--config's directory"},
		{svc, "Service", "RestartPreventExitStatus", "2", "config errors exit 2"},
		{svc, "Service", "ProtectSystem", "strict", ""},
		{svc, "Service", "NoNewPrivileges", "yes", ""},
		{svc, "Unit", "Requires", "calld.socket", ""},
		{svc, "Install", "WantedBy", "multi-user.target", ""},
		{sock, "Socket", "ListenStream", def.Control.Socket, "control.socket's default"},
		{sock, "Socket", "SocketMode", def.Control.SocketMode.String(), "control.socket_mode's default"},
		{sock, "Socket", "SocketGroup", "calld", "the sysusers group"},
		{sock, "Socket", "RemoveOnStop", "yes", ""},
		{sock, "Install", "WantedBy", "sockets.target", ""},
	}
	for _, c := range equal {
		if got := c.u.get(t, c.section, c.key); got != c.want {
			t.Errorf("[%s] %s=%s, want %s (%s)", c.section, c.key, got, c.want, c.what)
		}
	}
	if got := svc.get(t, "Unit", "After"); !strings.Contains(got, "calld.socket") {
		t.Errorf("After=%s lacks calld.socket", got)
	}
	if strings.HasPrefix(def.Control.Socket, "/run/calld/") {
		t.Errorf("the socket must not live in a RuntimeDirectory= that is removed on stop")
	}
	wd, err := time.ParseDuration(svc.get(t, "Service", "WatchdogSec"))
	if err != nil || wd < 10*time.Second {
		t.Errorf("WatchdogSec=%v (%v): want a duration of at least 10s", wd, err)
	}
	// The group the socket is handed to exists: sysusers creates it.
	users, err := os.ReadFile(filepath.Join(dir, "sysusers.d", "calld.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var haveUser, haveGroup bool
	for _, line := range strings.Split(string(users), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[1] == "calld" {
			haveUser = haveUser || f[0] == "u"
			haveGroup = haveGroup || f[0] == "g" || f[0] == "u"
		}
	}
	if !haveUser || !haveGroup {
		t.Errorf("sysusers.d/calld.conf: user=%v group=%v", haveUser, haveGroup)
	}
}
