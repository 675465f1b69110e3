package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/sim"
)

// TestAccountName: `calld serve` with [telegram] account = "alice": every
// log line carries it (checked against docs/log.schema.json at the end),
// /v1/status shows it, and so does `calld accounts` (the daemon's account,
// not its socket's name) and `calld --account NAME`; a SIGHUP with the
// account changed is refused (reload_error) and the daemon goes on as
// alice.
func TestAccountName(t *testing.T) {
	e := newEnv(t, sim.Options{Authorized: true}, "")
	setConfig := func(account string) {
		t.Helper()
		b, err := os.ReadFile(e.config)
		if err != nil {
			t.Fatal(err)
		}
		text, line := string(b), "account = \""+account+"\"\n"
		if i := strings.Index(text, "account = "); i >= 0 {
			text = text[:i] + line + text[i+strings.Index(text[i:], "\n")+1:]
		} else {
			text = strings.Replace(text, "api_hash = \"e2e\"\n", "api_hash = \"e2e\"\n"+line, 1)
		}
		if err := os.WriteFile(e.config, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	setConfig("alice")
	d := e.start()
	var st calld.Status
	e.cliJSON(&st, "status")
	if st.Account != "alice" {
		t.Errorf("status account %q, want alice", st.Account)
	}

	// The socket is calld.sock in e.dir: as $CALLD_RUN_DIR, account
	// "calld" names it, and `calld accounts` lists it as alice.
	cli := func(args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), "CALLD_RUN_DIR="+e.dir, "CALLD_SOCKET=", "CALLD_ACCOUNT=")
		out, err := cmd.Output()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	out, code := cli("accounts", "--json")
	var rows []struct {
		Account   string        `json:"account"`
		Socket    string        `json:"socket"`
		Answering bool          `json:"answering"`
		Status    *calld.Status `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil || code != 0 || len(rows) != 1 ||
		rows[0].Account != "alice" || rows[0].Socket != e.socket || !rows[0].Answering || rows[0].Status == nil {
		t.Errorf("calld accounts --json: exit %d, %v\n%s", code, err, out)
	}
	if out, code := cli("--account", "calld", "status"); code != 0 || !strings.Contains(out, "Ready") {
		t.Errorf("calld --account calld status: exit %d\n%s", code, out)
	}

	setConfig("bob")
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(d.logs.String(), "reload refused") {
		if time.Now().After(deadline) {
			t.Fatal("a SIGHUP changing the account was not refused")
		}
		time.Sleep(10 * time.Millisecond) // another process: poll its log
	}
	e.cliJSON(&st, "status")
	if st.Account != "alice" || !st.Ready || !strings.Contains(st.ReloadError, "telegram.account") {
		t.Errorf("after a SIGHUP to account bob: account %q, ready %v, reload_error %q", st.Account, st.Ready, st.ReloadError)
	}
	if code := d.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, l := range strings.Split(strings.TrimSpace(d.logs.String()), "\n") {
		if strings.HasPrefix(l, "{") && !strings.Contains(l, `"account":"alice"`) {
			t.Errorf("a line without account alice: %s", l)
		}
	}
}
