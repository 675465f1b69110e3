package e2e

import (
	"context"
	be "encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gotd/td/tgerr"
	bolt "go.etcd.io/bbolt"

	"github.com/calld/calld"
	"github.com/calld/calld/client"
	"github.com/calld/calld/internal/sim"
	"github.com/calld/calld/internal/store"
)

// stopWithin is the CONTRACT §5.2 bound: SIGTERM ends calld within 10 s in
// every state.
const stopWithin = 10 * time.Second

// launch runs `calld serve --config` without waiting for anything.
func (e *env) launch() *daemon {
	e.t.Helper()
	return e.spawn(exec.Command(binary, "serve", "--config", e.config))
}

// exited reports whether the daemon has exited (without blocking).
func (d *daemon) exited() bool {
	select {
	case err := <-d.done:
		d.done <- err
		return true
	default:
		return false
	}
}

// waitStatus polls GET /v1/status until ok accepts it; it reports false if
// the daemon exits first.
func (e *env) waitStatus(d *daemon, ok func(calld.Status) bool) (calld.Status, bool) {
	e.t.Helper()
	cl := client.New(e.socket)
	defer cl.Close()
	deadline := time.Now().Add(60 * time.Second)
	var st calld.Status
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		s, err := cl.Status(ctx)
		cancel()
		if err == nil {
			st = s
			if ok(s) {
				return s, true
			}
		}
		if d.exited() {
			return st, false
		}
		time.Sleep(20 * time.Millisecond) // another process: poll
	}
	e.t.Fatalf("status never reached the expected state; last %+v\n%s", st, d.logs.String())
	return st, false
}

// rewriteConfig replaces the simulator's address in the config.
func (e *env) rewriteConfig(addr string) {
	e.t.Helper()
	b, err := os.ReadFile(e.config)
	if err != nil {
		e.t.Fatal(err)
	}
	text := strings.Replace(string(b), fmt.Sprintf("addr = %q", e.srv.Addr()), fmt.Sprintf("addr = %q", addr), 1)
	if err := os.WriteFile(e.config, []byte(text), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// deadAddr is a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// mute is a server that accepts TCP connections, reads, and never
// answers: an MTProto handshake that never completes.
func mute(t *testing.T) (addr string, accepted <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan struct{}, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case ch <- struct{}{}:
			default:
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	return ln.Addr().String(), ch
}

// TestStopInEveryState sends SIGTERM to `calld serve` in each state of
// CONTRACT §5.2 and wants an exit within 10 s with status 0; a daemon
// whose start-up fails exits 1 by itself, the cause in its last log line.
func TestStopInEveryState(t *testing.T) {
	var handshakeAccepted <-chan struct{}
	for _, tc := range []struct {
		name string
		opts sim.Options
		// reach brings the daemon into the state (after launch).
		reach func(t *testing.T, e *env, d *daemon)
		// setup runs before launch.
		setup func(t *testing.T, e *env)
		// failsWith: the daemon exits 1 by itself, naming this.
		failsWith string
	}{
		{
			name: "not logged in",
			opts: sim.Options{Authorized: false},
			reach: func(t *testing.T, e *env, d *daemon) {
				e.waitStatus(d, func(st calld.Status) bool { return st.Ready && !st.Telegram.Authorized })
			},
		},
		{
			name:  "DC unreachable",
			opts:  sim.Options{Authorized: true},
			setup: func(t *testing.T, e *env) { e.rewriteConfig(deadAddr(t)) },
			reach: func(t *testing.T, e *env, d *daemon) {
				e.waitStatus(d, func(calld.Status) bool { return true })
			},
		},
		{
			name: "mid-handshake",
			opts: sim.Options{Authorized: true},
			setup: func(t *testing.T, e *env) {
				addr, accepted := mute(t)
				e.rewriteConfig(addr)
				handshakeAccepted = accepted
			},
			reach: func(t *testing.T, e *env, d *daemon) {
				select {
				case <-handshakeAccepted:
				case <-time.After(60 * time.Second):
					t.Fatal("calld never dialed")
				}
				e.waitStatus(d, func(calld.Status) bool { return true })
			},
		},
		{
			name: "corrupt call record",
			opts: sim.Options{Authorized: true},
			setup: func(t *testing.T, e *env) {
				db, err := store.Open(e.state, store.Options{})
				if err != nil {
					t.Fatal(err)
				}
				if err := db.Update(func(tx *store.Tx) error {
					return tx.PutCall(777, []byte(`{"id":"777"}`), true)
				}); err != nil {
					t.Fatal(err)
				}
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
				// Then the record is broken behind the store's back.
				bdb, err := bolt.Open(e.state, 0o600, nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := bdb.Update(func(tx *bolt.Tx) error {
					return tx.Bucket([]byte("calls")).Put(be.BigEndian.AppendUint64(nil, 777), []byte(`{"id":"777","state":`))
				}); err != nil {
					t.Fatal(err)
				}
				if err := bdb.Close(); err != nil {
					t.Fatal(err)
				}
			},
			failsWith: "call 777",
		},
		{
			name: "getState failing",
			opts: sim.Options{Authorized: true},
			setup: func(t *testing.T, e *env) {
				e.srv.FailRPC("updates.getState", tgerr.New(500, "INTERNAL"), 1000)
			},
			reach: func(t *testing.T, e *env, d *daemon) {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				if err := e.srv.WaitCount(ctx, "updates.getState", 2); err != nil {
					t.Fatalf("getState never retried: %v", err)
				}
			},
		},
		{
			name: "getState refused",
			opts: sim.Options{Authorized: true},
			setup: func(t *testing.T, e *env) {
				e.srv.FailRPC("updates.getState", tgerr.New(400, "STATE_REFUSED"), 1000)
			},
			failsWith: "STATE_REFUSED",
		},
		{
			name: "mid-login",
			opts: sim.Options{Authorized: false},
			reach: func(t *testing.T, e *env, d *daemon) {
				e.waitStatus(d, func(st calld.Status) bool { return st.Ready })
				status, body := e.http("POST", "/v1/login", `{"phone":"+15550001111"}`)
				if status != 200 || body["state"] != calld.LoginCodeSent {
					t.Fatalf("login phone step: %d %v", status, body)
				}
			},
		},
		{
			name: "discard in flight",
			opts: sim.Options{Authorized: true},
			reach: func(t *testing.T, e *env, d *daemon) {
				e.waitStatus(d, func(st calld.Status) bool { return st.Ready && st.Telegram.Authorized })
				id, err := e.srv.IncomingCall(e.srv.AddPeer("gina"), false)
				if err != nil {
					t.Fatal(err)
				}
				e.waitCall(id, calld.StateRinging)
				release := e.srv.HoldRPC("phone.discardCall")
				t.Cleanup(release)
				go discardRaw(e.socket, id)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := e.srv.WaitCount(ctx, "phone.discardCall", 1); err != nil {
					t.Fatalf("discard never reached the server: %v", err)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.opts, "")
			if tc.setup != nil {
				tc.setup(t, e)
			}
			d := e.launch()
			if tc.failsWith != "" {
				select {
				case <-d.done:
				case <-time.After(30 * time.Second):
					t.Fatal("start-up failed but calld did not exit within 30 s")
				}
				if code := d.cmd.ProcessState.ExitCode(); code != 1 {
					t.Fatalf("exit %d after a failed start-up, want 1", code)
				}
				if last := lastLine(d.logs.String()); !strings.Contains(last, tc.failsWith) {
					t.Fatalf("last log line %q does not name %q", last, tc.failsWith)
				}
				return
			}
			tc.reach(t, e, d)
			if d.exited() {
				t.Fatalf("calld exited before SIGTERM:\n%s", d.logs.String())
			}
			start := time.Now()
			_ = d.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-d.done:
			case <-time.After(stopWithin + 20*time.Second):
				t.Fatalf("calld still running %s after SIGTERM", time.Since(start))
			}
			if took := time.Since(start); took > stopWithin {
				t.Fatalf("stop took %s, want <= %s", took, stopWithin)
			}
			if code := d.cmd.ProcessState.ExitCode(); code != 0 {
				t.Fatalf("exit %d after SIGTERM, want 0", code)
			}
		})
	}
}

// discardRaw posts a discard and ignores the answer (it may never come).
func discardRaw(socket string, id int64) {
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}}
	resp, err := c.Post(fmt.Sprintf("http://calld/v1/calls/%d/discard", id), "application/json", strings.NewReader(`{}`))
	if err == nil {
		resp.Body.Close()
	}
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// logLines decodes the JSON log lines of s.
func logLines(s string) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(s, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// TestLoginWrongPassword: a wrong 2FA password is refused with a 4xx and
// `calld login` asks again; the login ends printing the real user id.
func TestLoginWrongPassword(t *testing.T) {
	e := newEnv(t, sim.Options{Authorized: false, Password: "hunter2"}, "")
	e.start()
	out, errOut, code := e.cliInput("+15550001111\n"+sim.LoginCode+"\nwrong\nhunter2\n", "login")
	if code != 0 {
		t.Fatalf("login: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "invalid") || !strings.Contains(errOut, "password") {
		t.Fatalf("the wrong password was not reported as such: %q", errOut)
	}
	if want := fmt.Sprintf("Logged in as user %d.", sim.SelfID); !strings.Contains(out, want) {
		t.Fatalf("login printed %q, want %q", out, want)
	}
}

// TestBadPublicKey: an invalid key inside a PEM block is a configuration
// error: exit 2 naming the key, and nothing created.
func TestBadPublicKey(t *testing.T) {
	e := newEnv(t, sim.Options{}, "")
	b, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(e.dir, "bad.pem")
	pem := "-----BEGIN RSA PUBLIC KEY-----\nbm90IGEga2V5\n-----END RSA PUBLIC KEY-----\n"
	if err := os.WriteFile(keys, []byte(pem), 0o600); err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(b), filepath.Join(e.dir, "keys.pem"), keys, 1)
	if err := os.WriteFile(e.config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(binary, "serve", "--config", e.config).CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "telegram.public_keys") {
		t.Fatalf("exit %v, output %q; want status 2 naming telegram.public_keys", err, out)
	}
	for _, p := range []string{e.state, e.socket} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("%s exists after a configuration error (%v)", p, err)
		}
	}
}

// TestUnknownAuthorizationIs503: while calld holds a session but cannot
// tell whether it is logged in (Telegram unreachable, or the check still
// failing), call routes answer 503 `unavailable`, never 401, and the
// status says why; the persisted updates state shows meanwhile.
func TestUnknownAuthorizationIs503(t *testing.T) {
	e := newEnv(t, sim.Options{Authorized: true}, "")
	d := e.start()
	if _, err := e.srv.IncomingCall(e.srv.AddPeer("hal"), false); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(d, func(st calld.Status) bool { return st.Updates.Seq > 0 })
	if code := d.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}

	t.Run("check failing", func(t *testing.T) {
		e.srv.FailRPC("users.getUsers", tgerr.New(500, "INTERNAL"), 3)
		d := e.launch()
		e.waitStatus(d, func(calld.Status) bool { return true })
		if status, body := e.http("POST", "/v1/calls", `{"peer":"@x"}`); status != 503 || errCode(body) != "unavailable" {
			t.Fatalf("call while the check fails: %d %v", status, body)
		}
		st, _ := e.waitStatus(d, func(st calld.Status) bool { return st.Ready && st.Telegram.Authorized })
		if st.State != "ready" || !strings.HasPrefix(st.Status, "ready: ") {
			t.Fatalf("after the check answered: %+v", st)
		}
		if code := d.stop(t, syscall.SIGTERM); code != 0 {
			t.Fatalf("exit %d", code)
		}
	})
	t.Run("DC unreachable", func(t *testing.T) {
		persisted := persistedUpdates(t, e.state)
		dead := deadAddr(t)
		e.rewriteConfig(dead)
		d := e.launch()
		st, _ := e.waitStatus(d, func(st calld.Status) bool { return strings.Contains(st.Status, "refused") })
		if st.State != "connecting" || !strings.HasPrefix(st.Status, fmt.Sprintf("connecting to DC %d (%s): ", e.srv.DC(), dead)) {
			t.Fatalf("status while unreachable: %+v", st)
		}
		if st.Updates != persisted || persisted.Seq == 0 {
			t.Fatalf("updates state %+v, want the persisted %+v", st.Updates, persisted)
		}
		if status, body := e.http("POST", "/v1/calls", `{"peer":"@x"}`); status != 503 || errCode(body) != "unavailable" {
			t.Fatalf("call while unreachable: %d %v", status, body)
		}
		out, _, _ := e.cli("status")
		if strings.Contains(out, "not authorized") || !strings.Contains(out, dead) {
			t.Fatalf("calld status while unreachable:\n%s", out)
		}
		if code := d.stop(t, syscall.SIGTERM); code != 0 {
			t.Fatalf("exit %d", code)
		}
	})
}

// persistedUpdates reads the updates state from a stopped daemon's store.
func persistedUpdates(t *testing.T, path string) calld.UpdatesState {
	t.Helper()
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var st calld.UpdatesState
	if err := db.View(func(tx *store.Tx) error {
		st, _, err = tx.UpdatesState()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return st
}
