package e2e

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/calld/calld"
	"github.com/calld/calld/client"
	"github.com/calld/calld/internal/sim"
	"github.com/calld/calld/internal/store"
)

// realSession is a gotd session (session.Loader's JSON) logged in at
// Telegram's production DC 2: what `calld login` leaves in the state file.
const realSession = `{"Version":1,"Data":{"Config":{"ThisDC":2,"DCOptions":[{"ID":2,"IPAddress":"149.154.167.51","Port":443}]},"DC":2,"Addr":"149.154.167.51:443","AuthKey":"AAECAwQFBgcICQoLDA0ODw==","AuthKeyID":"AQIDBAUGBwg=","Salt":42}}`

// serveEnv is the environment of a `calld serve` child: none of calld's
// own variables leak in from the test's environment.
func serveEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CALLD_") && !strings.HasPrefix(kv, "XDG_RUNTIME_DIR=") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// TestSimRefusesAnotherServersSession: `serve --sim` with a config whose
// state file holds a login at other DCs exits with an error naming the
// file, and leaves the file byte for byte as it was.
func TestSimRefusesAnotherServersSession(t *testing.T) {
	e := newEnv(t, sim.Options{Authorized: true}, "")
	db, err := store.Open(e.state, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SessionStorage().StoreSession(context.Background(), []byte(realSession)); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *store.Tx) error {
		return tx.SetUpdatesState(calld.UpdatesState{Pts: 1000, Qts: 7, Seq: 300, Date: 1700000000})
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(e.state)
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(binary, "serve", "--config", e.config, "--sim")
	cmd.Env = serveEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	// Either it exits (the fix) or it listens on the socket (the defect).
	deadline := time.Now().Add(60 * time.Second)
wait:
	for {
		select {
		case <-done:
			break wait
		case <-time.After(20 * time.Millisecond): // polling a separate process: nothing to inject
		}
		if c, err := net.Dial("unix", e.socket); err == nil {
			c.Close()
			_ = cmd.Process.Signal(syscall.SIGTERM)
			<-done
			t.Fatalf("serve --sim accepted a state file holding another server's session\n%s", out.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve --sim neither exited nor served within 60s\n%s", out.String())
		}
	}
	if code := cmd.ProcessState.ExitCode(); code == 0 || !strings.Contains(out.String(), e.state) ||
		!strings.Contains(out.String(), "DC") {
		t.Fatalf("exit %d, output %q; want a failure naming %s and the DCs", code, out.String(), e.state)
	}
	after, err := os.ReadFile(e.state)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("the refused state file was modified")
	}
}

// TestSimWithoutConfigUsesFreshDir: `serve --sim` with no config puts its
// state and socket in a fresh directory under $XDG_RUNTIME_DIR and prints
// it; the socket there serves; the directory is removed at exit.
func TestSimWithoutConfigUsesFreshDir(t *testing.T) {
	runtime := t.TempDir()
	sd := startSimNoConfig(t, runtime)
	dir, cmd, done, logs := sd.dir, sd.cmd, sd.done, sd.logs
	e := &env{t: t, socket: filepath.Join(dir, "calld.sock")}
	if _, err := os.Stat(filepath.Join(dir, "calld.db")); err != nil {
		t.Fatalf("state file not in %s: %v", dir, err)
	}
	if out, errOut, code := e.cli("status"); code != 0 {
		t.Fatalf("calld status: exit %d: %s%s", code, out, errOut)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("calld did not exit within 30s")
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit %d after SIGTERM\n%s", code, logs.String())
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the fresh directory %s outlived the daemon: %v", dir, err)
	}
}

// TestStateFileMadePrivate: a pre-existing empty 0644 state file is 0600
// once calld has initialised it (it then holds the session's auth key).
func TestStateFileMadePrivate(t *testing.T) {
	e := newEnv(t, sim.Options{Authorized: true}, "")
	if err := os.WriteFile(e.state, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(e.state, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	d := e.start()
	fi, err := os.Stat(e.state)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode %v, want 0600", fi.Mode().Perm())
	}
	if code := d.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// simDaemon is a `calld serve --sim` run without a config.
type simDaemon struct {
	dir  string // the fresh directory it printed
	cmd  *exec.Cmd
	done chan error // cmd.Wait's error
	logs *syncBuffer
}

// startSimNoConfig runs `calld serve --sim` with $XDG_RUNTIME_DIR set to
// runtime, reads the directory it prints and waits until its socket there
// answers ready; the process is killed at the end of the test if still
// running, and its log lines are checked against the schema.
func startSimNoConfig(t *testing.T, runtime string) *simDaemon {
	t.Helper()
	cmd := exec.Command(binary, "serve", "--sim")
	cmd.Env = serveEnv("XDG_RUNTIME_DIR=" + runtime)
	cmd.Dir = t.TempDir()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	sd := &simDaemon{cmd: cmd, done: make(chan error, 1), logs: &syncBuffer{}}
	cmd.Stderr = sd.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		sd.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-sd.done
		}
		checkLogLines(t, sd.logs.String())
	})
	select {
	case line, ok := <-lines:
		if !ok {
			t.Fatalf("serve --sim printed nothing\n%s", sd.logs.String())
		}
		for _, f := range strings.Fields(line) {
			if strings.HasPrefix(f, runtime+string(filepath.Separator)) {
				sd.dir = strings.TrimRight(f, ".,:;")
			}
		}
		if sd.dir == "" {
			t.Fatalf("first line %q names no directory under %s\n%s", line, runtime, sd.logs.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("serve --sim printed nothing within 60s\n%s", sd.logs.String())
	}
	if fi, err := os.Stat(sd.dir); err != nil || !fi.IsDir() {
		t.Fatalf("%s: %v", sd.dir, err)
	}
	socket := filepath.Join(sd.dir, "calld.sock")
	cl := client.New(socket)
	defer cl.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := cl.Status(ctx)
		cancel()
		if err == nil && st.Ready {
			return sd
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ready daemon on %s: %v\n%s", socket, err, sd.logs.String())
		}
		time.Sleep(20 * time.Millisecond) // polling a separate process: nothing to inject
	}
}
