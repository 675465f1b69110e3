package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/sim"
)

// templateExec is the ExecStart= of configs/calld@.service for instance
// name, as argv: %i replaced, /usr/bin/calld the built binary and every
// absolute path moved under root (CI has no running systemd).
func templateExec(t *testing.T, root, name string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "configs", "calld@.service"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "ExecStart=")
		if !ok {
			continue
		}
		args := strings.Fields(strings.ReplaceAll(line, "%i", name))
		if args[0] != "/usr/bin/calld" {
			t.Fatalf("ExecStart runs %s, not /usr/bin/calld", args[0])
		}
		args[0] = binary
		for i, a := range args[1:] {
			if strings.HasPrefix(a, "/") {
				args[i+1] = filepath.Join(root, a)
			}
		}
		return args
	}
	t.Fatal("configs/calld@.service has no ExecStart=")
	return nil
}

// instanceEnv is instance name of the template under root: the paths of
// ExecStart (config /etc/calld/NAME.toml, state and socket from --state and
// --socket), a config naming the simulator and the instance's own phone.
func instanceEnv(t *testing.T, srv *sim.Server, root, name string) (*env, []string) {
	t.Helper()
	argv := templateExec(t, root, name)
	e := &env{t: t, srv: srv, dir: root}
	for i := 1; i+1 < len(argv); i++ {
		switch argv[i] {
		case "--config":
			e.config = argv[i+1]
		case "--state":
			e.state = argv[i+1]
		case "--socket":
			e.socket = argv[i+1]
		}
	}
	if e.config != filepath.Join(root, "etc/calld", name+".toml") || e.socket != filepath.Join(root, "run/calld", name+".sock") ||
		filepath.Dir(e.state) != filepath.Join(root, "var/lib/calld", name) {
		t.Fatalf("template paths: config %s state %s socket %s", e.config, e.state, e.socket)
	}
	for _, d := range []string{filepath.Dir(e.config), filepath.Dir(e.state), filepath.Dir(e.socket)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	keys := filepath.Join(root, "etc/calld/keys.pem")
	if err := os.WriteFile(keys, srv.PublicKeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	tcfg, ok := strings.CutPrefix(srv.CalldTelegramConfig(1, "e2e", keys), "[telegram]\n")
	if !ok {
		t.Fatal("CalldTelegramConfig does not start with [telegram]")
	}
	cfg := "[telegram]\naccount = " + strconv.Quote(name) + "\n" + tcfg + "\n[log]\nlevel = \"info\"\nformat = \"json\"\n"
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return e, argv
}

// TestTemplateInstances: three instances calld@a, calld@b and calld@c of
// configs/calld@.service run as processes with the template's paths under
// a temporary root, each logged in (calld login) as its own account of ONE
// simulator, each with its own [telegram] account. A call to b reaches
// only b: b's `calld calls` lists it, a's and c's do not; `calld accounts`
// lists the three by name, and `calld --account b calls` finds b's socket
// in $CALLD_RUN_DIR; the simulator sees exactly one discard, from b. All
// three stop cleanly on SIGTERM.
func TestTemplateInstances(t *testing.T) {
	srv, err := sim.New(sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(t.Context(), "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	root := t.TempDir()
	names := []string{"a", "b", "c"}
	envs := map[string]*env{}
	daemons := map[string]*daemon{}
	accts := map[string]*sim.Account{}
	for i, name := range names {
		e, argv := instanceEnv(t, srv, root, name)
		accts[name] = srv.AddAccount(fmt.Sprintf("+1555000010%d", i))
		envs[name] = e
		daemons[name] = e.spawn(exec.Command(argv[0], argv[1:]...))
	}
	for _, name := range names {
		e, a := envs[name], accts[name]
		e.waitStatus(daemons[name], func(st calld.Status) bool { return st.Ready && st.Telegram.Connected })
		out, errOut, code := e.cliInput("+"+a.Phone()+"\n"+sim.LoginCode+"\n", "login")
		if code != 0 || !strings.Contains(out, fmt.Sprintf("Logged in as user %d.", a.SelfID())) {
			t.Fatalf("calld@%s login: exit %d: %s%s", name, code, out, errOut)
		}
		st, _ := e.waitStatus(daemons[name], func(st calld.Status) bool { return st.Telegram.Authorized })
		if st.Telegram.SelfID != a.SelfID() {
			t.Fatalf("calld@%s is user %d, want %d", name, st.Telegram.SelfID, a.SelfID())
		}
	}

	peer := srv.AddPeer("caller")
	id, err := accts["b"].IncomingCall(peer, false)
	if err != nil {
		t.Fatal(err)
	}
	envs["b"].waitCall(id, calld.StateRinging)
	for _, name := range names {
		var body calld.CallsBody
		envs[name].cliJSON(&body, "calls")
		shown := len(body.Calls) == 1 && body.Calls[0].ID == id
		if want := name == "b"; shown != want || (!want && len(body.Calls) != 0) {
			t.Fatalf("calld@%s calls: %+v (only b has call %d)", name, body.Calls, id)
		}
	}
	runDir := filepath.Join(root, "run/calld")
	checkAccounts(t, runDir, names, accts)
	// calld --account b calls: the socket found by name, b's call only.
	out, errOut, code := runCLI(t, []string{"CALLD_RUN_DIR=" + runDir}, "--account", "b", "calls", "--json")
	var bCalls calld.CallsBody
	if code != 0 || json.Unmarshal([]byte(out), &bCalls) != nil || len(bCalls.Calls) != 1 || bCalls.Calls[0].ID != id {
		t.Fatalf("calld --account b calls: exit %d: %s%s", code, out, errOut)
	}
	if _, errOut, code := envs["b"].cli("discard", fmt.Sprint(id)); code != 0 {
		t.Fatalf("calld@b discard: exit %d: %s", code, errOut)
	}
	envs["b"].waitCall(id, calld.StateEnded)
	if info, _ := srv.Call(id); info.State != sim.StateDiscarded || info.DiscardedBy != sim.BySelf {
		t.Fatalf("the simulator's call: %+v", info)
	}
	for _, name := range names {
		want := map[bool]int{true: 1}[name == "b"]
		if n := accts[name].Count("phone.discardCall"); n != want {
			t.Fatalf("calld@%s sent %d phone.discardCall, want %d", name, n, want)
		}
	}
	if n := srv.Count("phone.discardCall"); n != 1 {
		t.Fatalf("the simulator saw %d phone.discardCall, want 1", n)
	}
	for _, name := range names {
		if code := daemons[name].stop(t, syscall.SIGTERM); code != 0 {
			t.Fatalf("calld@%s exited %d on SIGTERM\n%s", name, code, daemons[name].logs.String())
		}
	}
}

// checkAccounts: `calld accounts --json` with CALLD_RUN_DIR=runDir lists
// every instance once, by its configured account, answering, logged in
// as its own user.
func checkAccounts(t *testing.T, runDir string, names []string, accts map[string]*sim.Account) {
	t.Helper()
	out, errOut, code := runCLI(t, []string{"CALLD_RUN_DIR=" + runDir}, "accounts", "--json")
	if code != 0 {
		t.Fatalf("calld accounts: exit %d: %s%s", code, out, errOut)
	}
	var rows []struct {
		Account   string        `json:"account"`
		Socket    string        `json:"socket"`
		Answering bool          `json:"answering"`
		Status    *calld.Status `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("calld accounts --json: %v\n%s", err, out)
	}
	if len(rows) != len(names) {
		t.Fatalf("calld accounts lists %d daemons, want %d:\n%s", len(rows), len(names), out)
	}
	for i, r := range rows {
		name := names[i]
		if r.Account != name || r.Socket != filepath.Join(runDir, name+".sock") || !r.Answering || r.Status == nil ||
			r.Status.Account != name || r.Status.Telegram.SelfID != accts[name].SelfID() {
			t.Errorf("calld accounts row %d: %+v (status %+v), want account %s, user %d", i, r, r.Status, name, accts[name].SelfID())
		}
	}
}
