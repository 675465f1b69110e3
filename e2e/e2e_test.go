package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gotd/td/tg"

	"github.com/calld/calld"
	"github.com/calld/calld/client"
	"github.com/calld/calld/internal/sim"
)

var binary string // the calld binary built once for the package

// env is one test's world: a simulator, a state directory, a config.
type env struct {
	t      *testing.T
	srv    *sim.Server
	dir    string
	config string
	socket string
	state  string
}

func newEnv(t *testing.T, o sim.Options, extraConfig string) *env {
	t.Helper()
	srv, err := sim.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(context.Background(), "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	dir := t.TempDir()
	e := &env{
		t:      t,
		srv:    srv,
		dir:    dir,
		config: filepath.Join(dir, "calld.toml"),
		socket: filepath.Join(dir, "calld.sock"),
		state:  filepath.Join(dir, "calld.db"),
	}
	keys := filepath.Join(dir, "keys.pem")
	if err := os.WriteFile(keys, srv.PublicKeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := srv.CalldTelegramConfig(1, "e2e", keys) + fmt.Sprintf(`
[state]
path = %q

[control]
socket = %q

[log]
level = "debug"
format = "json"
%s`, e.state, e.socket, extraConfig)
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// daemon is a running `calld serve`.
type daemon struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs `calld serve --config` and waits until its socket answers
// with ready (or the process dies).
func (e *env) start() *daemon {
	e.t.Helper()
	d := e.spawn(exec.Command(binary, "serve", "--config", e.config))
	cl := client.New(e.socket)
	defer cl.Close()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := cl.Status(ctx)
		cancel()
		if err == nil && st.Ready {
			return d
		}
		select {
		case err := <-d.done:
			d.done <- err
			e.t.Fatalf("calld serve exited early: %v\n%s", err, d.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	e.t.Fatalf("calld serve not ready after 60s\n%s", d.logs.String())
	return nil
}

// spawn starts cmd (a calld daemon) with its output in the daemon's logs,
// killed at the end of the test if still running; each line of the logs
// must then match docs/log.schema.json.
func (e *env) spawn(cmd *exec.Cmd) *daemon {
	e.t.Helper()
	d := &daemon{cmd: cmd, logs: &syncBuffer{}, done: make(chan error, 1)}
	d.cmd.Stderr = d.logs
	d.cmd.Stdout = d.logs
	if err := d.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	e.t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			_ = d.cmd.Process.Kill()
			<-d.done
		}
		checkLogLines(e.t, d.logs.String())
		if e.t.Failed() {
			e.t.Logf("daemon logs:\n%s", d.logs.String())
		}
	})
	return d
}

// stop sends sig and waits for the exit status.
func (d *daemon) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	_ = d.cmd.Process.Signal(sig)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		t.Fatal("calld did not exit within 30s")
	}
	return d.cmd.ProcessState.ExitCode()
}

// cli runs a client subcommand against the env's socket.
func (e *env) cli(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	return e.cliInput("", args...)
}

func (e *env) cliInput(stdin string, args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	return runCLIInput(e.t, []string{"CALLD_SOCKET=" + e.socket}, stdin, args...)
}

// runCLI runs the binary with env added to this process's environment
// (without its CALLD_SOCKET and CALLD_ACCOUNT, so that env alone picks
// the socket).
func runCLI(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runCLIInput(t, env, "", args...)
}

// runCLIInput is runCLI with stdin: every e2e run of the CLI.
func runCLIInput(t *testing.T, env []string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CALLD_SOCKET=") && !strings.HasPrefix(kv, "CALLD_ACCOUNT=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("calld %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// cliJSON runs a subcommand with --json and decodes its output, which
// must match docs/openapi.yaml.
func (e *env) cliJSON(v any, args ...string) {
	e.t.Helper()
	out, errOut, code := e.cli(append(args, "--json")...)
	// `calld status` exits 3 when the daemon answers but is not healthy
	// (not ready, connected and authorized), still printing the status;
	// the callers check the fields they need.
	if code != 0 && (code != 3 || args[0] != "status") {
		e.t.Fatalf("calld %v: exit %d: %s", args, code, errOut)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		e.t.Fatalf("calld %v: %v\n%s", args, err, out)
	}
	checkCLIJSON(e.t, args, out)
}

// http does a raw request on the socket; the answer must match
// docs/openapi.yaml.
func (e *env) http(method, path, body string) (int, map[string]any) {
	e.t.Helper()
	c := &http.Client{Transport: apiTransport(e.t, &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", e.socket)
	}})}
	req, err := http.NewRequest(method, "http://calld"+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

func errCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

// waitCall polls `calld show` until the call is in state (bounded).
func (e *env) waitCall(id int64, state calld.State) calld.Call {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var c calld.Call
	for time.Now().Before(deadline) {
		out, _, code := e.cli("show", fmt.Sprint(id), "--json")
		if code == 0 && json.Unmarshal([]byte(out), &c) == nil && c.State == state {
			return c
		}
		time.Sleep(20 * time.Millisecond) // polling a separate process: nothing to inject
	}
	e.t.Fatalf("call %d not %s (last %+v)", id, state, c)
	return c
}

func TestServeRoutesAndCLI(t *testing.T) {
	e := newEnv(t, sim.Options{Authorized: true}, "")
	d := e.start()

	// version, status
	out, _, code := e.cli("version")
	if code != 0 || !strings.Contains(out, "calld") {
		t.Fatalf("version: %d %q", code, out)
	}
	var st calld.Status
	e.cliJSON(&st, "status")
	if !st.Ready || !st.Telegram.Connected || !st.Telegram.Authorized || st.Telegram.SelfID != sim.SelfID {
		t.Fatalf("status: %+v", st)
	}
	if out, _, code := e.cli("status"); code != 0 || !strings.Contains(out, fmt.Sprint(sim.SelfID)) {
		t.Fatalf("status table: %d %q", code, out)
	}

	// An incoming call: calls lists it, show shows it, discard refuses it.
	alice := e.srv.AddPeer("alice")
	id, err := e.srv.IncomingCall(alice, false)
	if err != nil {
		t.Fatal(err)
	}
	e.waitCall(id, calld.StateRinging)
	var list calld.CallsBody
	e.cliJSON(&list, "calls")
	if len(list.Calls) != 1 || list.Calls[0].ID != id {
		t.Fatalf("calls: %+v", list)
	}
	if out, _, _ := e.cli("calls"); !strings.Contains(out, fmt.Sprint(id)) || !strings.Contains(out, "ringing") {
		t.Fatalf("calls table: %q", out)
	}
	var ended calld.Call
	e.cliJSON(&ended, "discard", fmt.Sprint(id))
	if ended.State != calld.StateEnded || ended.Reason != calld.ReasonBusy {
		t.Fatalf("discard: %+v", ended)
	}
	if _, errOut, code := e.cli("discard", fmt.Sprint(id)); code != 1 || !strings.Contains(errOut, "conflict") {
		t.Fatalf("second discard: %d %q", code, errOut)
	}

	// An outgoing call through the DH exchange: media, connection, hangup.
	bob := e.srv.AddPeer("bob")
	e.srv.SetPeerBehaviour(bob, sim.Answer)
	var placed calld.Call
	e.cliJSON(&placed, "call", "@bob")
	if placed.PeerUsername != "bob" {
		t.Fatalf("placed to @bob: peer_username %q", placed.PeerUsername)
	}
	active := e.waitCall(placed.ID, calld.StateActive)
	if out, _, code := e.cli("calls"); code != 0 || !regexp.MustCompile(fmt.Sprintf(`(?m)^%d +outgoing +@bob +active `, placed.ID)).MatchString(out) {
		t.Fatalf("calld calls: exit %d, no row for call %d with peer @bob:\n%s", code, placed.ID, out)
	}
	status, media := e.http("GET", fmt.Sprintf("/v1/calls/%d/media", placed.ID), "")
	_, fp, _ := e.srv.CallKey(placed.ID)
	if status != 200 || media["key_fingerprint"] != fmt.Sprint(fp) {
		t.Fatalf("media: %d %v (peer fp %d)", status, media["key_fingerprint"], fp)
	}
	if len(active.Connections) == 0 {
		t.Fatal("active call has no connections")
	}
	relay := active.Connections[0].ID
	status, body := e.http("POST", fmt.Sprintf("/v1/calls/%d/connection", placed.ID), fmt.Sprintf(`{"connection_id":"%d"}`, relay))
	if status != 200 || body["connection_id"] != fmt.Sprint(relay) {
		t.Fatalf("connection: %d %v", status, body)
	}
	if status, body := e.http("POST", fmt.Sprintf("/v1/calls/%d/connection", placed.ID), `{"connection_id":"1"}`); status != 400 || errCode(body) != "invalid" {
		t.Fatalf("foreign relay: %d %v", status, body)
	}
	e.cliJSON(&ended, "discard", fmt.Sprint(placed.ID), "--reason", "auto")
	if ended.Reason != calld.ReasonHangup || ended.ConnectionID != relay {
		t.Fatalf("hangup: %+v", ended)
	}

	// An accepted incoming call.
	carol := e.srv.AddPeer("carol")
	in, err := e.srv.IncomingCall(carol, true)
	if err != nil {
		t.Fatal(err)
	}
	e.waitCall(in, calld.StateRinging)
	var acc calld.Call
	e.cliJSON(&acc, "accept", fmt.Sprint(in))
	e.waitCall(in, calld.StateActive)
	e.cliJSON(&ended, "discard", fmt.Sprint(in))
	if ended.Reason != calld.ReasonHangup || !ended.Video {
		t.Fatalf("accepted call ended: %+v", ended)
	}

	// Bad input: CONTRACT's errors, and nothing changes.
	for _, tc := range []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"POST", fmt.Sprintf("/v1/calls/%d/discard", id), `{"reason":`, 400, "invalid"},
		{"POST", "/v1/calls", `{"peer":"@bob","video":"yes"}`, 400, "invalid"},
		{"POST", "/v1/calls", `{"peer":"` + strings.Repeat("x", 2<<20) + `"}`, 413, "invalid"},
		{"GET", "/v1/calls/123456789", "", 404, "not_found"},
		{"POST", "/v1/calls/123456789/discard", `{}`, 404, "not_found"},
		{"GET", "/v1/calls/abc", "", 400, "invalid"},
		{"POST", "/v1/calls/" + fmt.Sprint(id) + "/discard", `{"reason":"sideways"}`, 400, "invalid"},
		{"POST", "/v1/calls", `{"peer":"@nobody"}`, 404, "not_found"},
		{"GET", "/v1/nothing", "", 404, "not_found"},
	} {
		status, body := e.http(tc.method, tc.path, tc.body)
		if status != tc.status || errCode(body) != tc.code {
			t.Errorf("%s %s: %d %v, want %d %s", tc.method, tc.path, status, body, tc.status, tc.code)
		}
	}
	if _, errOut, code := e.cli("show", "123456789"); code != 1 || !strings.Contains(errOut, "not_found") {
		t.Fatalf("show unknown: %d %q", code, errOut)
	}
	if _, _, code := e.cli("show", "not-a-number"); code != 2 {
		t.Fatalf("show bad id: exit %d, want 2", code)
	}

	// calls --all, events: the journal holds every transition.
	e.cliJSON(&list, "calls", "--all")
	if len(list.Calls) != 3 {
		t.Fatalf("calls --all: %d calls", len(list.Calls))
	}
	out, _, code = e.cli("events", "--json")
	if code != 0 {
		t.Fatalf("events: exit %d", code)
	}
	var seqs []uint64
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var ev calld.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("events line %q: %v", sc.Text(), err)
		}
		seqs = append(seqs, ev.Seq)
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("journal seqs not contiguous: %v", seqs)
		}
	}
	if len(seqs) < 12 {
		t.Fatalf("journal has %d events", len(seqs))
	}

	// The updates state equals the simulator's.
	e.cliJSON(&st, "status")
	pts, qts, seq, _ := e.srv.State()
	if st.Updates.Pts != pts || st.Updates.Qts != qts || st.Updates.Seq != seq {
		t.Fatalf("updates %+v, server pts=%d qts=%d seq=%d", st.Updates, pts, qts, seq)
	}

	// A second instance on the same state fails fast, naming the file.
	start := time.Now()
	second := exec.Command(binary, "serve", "--config", e.config)
	msg, err := second.CombinedOutput()
	if err == nil || time.Since(start) > 10*time.Second || !strings.Contains(string(msg), "already running") || !strings.Contains(string(msg), e.state) {
		t.Fatalf("second serve: %v after %s: %s", err, time.Since(start), msg)
	}

	// SIGTERM: a clean stop, exit 0, logged.
	if code := d.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit status after SIGTERM: %d", code)
	}
	logs := d.logs.String()
	for _, want := range []string{`"event":"daemon.ready"`, `"event":"daemon.stopping"`, `"signal":"terminated"`, `"event":"call.ended"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s", want)
		}
	}
	if strings.Contains(logs, `"api_hash":"e2e"`) || strings.Contains(logs, "\"e2e\"") {
		t.Error("api_hash reached the logs")
	}
}

func TestBadConfig(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, text, want string }{
		{"unknown key", "[policy]\nincomng = \"ring\"\n", "policy.incomng"},
		{"bad value", "[policy]\nincoming = \"sometimes\"\n", "policy.incoming"},
		{"wrong type", "[telegram]\ndc = \"two\"\n", "telegram.dc"},
		{"missing credentials", "[state]\npath = \"/tmp/x.db\"\n", "api_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".toml")
			if err := os.WriteFile(path, []byte(tc.text), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(binary, "serve", "--config", path).CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
				t.Fatalf("exit %v, output %q; want status 2 naming %s", err, out, tc.want)
			}
		})
	}
}

func TestLoginThroughSocket(t *testing.T) {
	e := newEnv(t, sim.Options{Authorized: false}, "")
	e.start() // ready means: serving the socket, waiting for a login
	var st calld.Status
	e.cliJSON(&st, "status")
	if st.Telegram.Authorized {
		t.Fatalf("fresh session authorized: %+v", st)
	}
	if _, _, code := e.cli("status"); code != 3 {
		t.Fatalf("calld status while logged out: exit %d, want 3", code)
	}
	if status, body := e.http("POST", "/v1/calls", `{"peer":"@x"}`); status != 401 || errCode(body) != "unauthorized" {
		t.Fatalf("call while logged out: %d %v", status, body)
	}
	out, errOut, code := e.cliInput("+15550001111\n"+sim.LoginCode+"\n", "login")
	if code != 0 {
		t.Fatalf("login: exit %d\n%s\n%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "15550001111") {
		t.Fatal("login printed the phone number unmasked")
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		e.cliJSON(&st, "status")
		if st.Telegram.Authorized && st.Ready {
			break
		}
		time.Sleep(20 * time.Millisecond) // another process: poll
	}
	if !st.Telegram.Authorized || st.Telegram.SelfID != sim.SelfID {
		t.Fatalf("after login: %+v", st)
	}
	if _, _, code := e.cli("status"); code != 0 {
		t.Fatalf("calld status after login: exit %d, want 0", code)
	}
	// And it works: a call is tracked.
	p := e.srv.AddPeer("dave")
	id, err := e.srv.IncomingCall(p, false)
	if err != nil {
		t.Fatal(err)
	}
	e.waitCall(id, calld.StateRinging)
}

func TestKillDashNineMidTraffic(t *testing.T) {
	e := newEnv(t, sim.Options{Authorized: true}, "[policy]\nreject_when_busy = false\n")
	d := e.start()
	var ids []int64
	for i := 0; i < 6; i++ {
		p := e.srv.AddPeer(fmt.Sprintf("p%d", i))
		id, err := e.srv.IncomingCall(p, false)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, id := range ids[:3] {
		e.waitCall(id, calld.StateRinging)
	}
	// Discard some while more arrive, then kill -9 in the middle.
	go func() {
		for _, id := range ids[:3] {
			e.cli("discard", fmt.Sprint(id))
		}
	}()
	e.waitCall(ids[0], calld.StateEnded)
	if code := d.stop(t, syscall.SIGKILL); code == 0 {
		t.Fatal("SIGKILL reported a clean exit")
	}
	// Restart: every call is there; live ones go on (CONTRACT §5.1) until
	// we discard them; the journal is contiguous, the updates state
	// equals the server's.
	e.start()
	for _, id := range ids {
		out, _, code := e.cli("show", fmt.Sprint(id), "--json")
		var c calld.Call
		if code != 0 || json.Unmarshal([]byte(out), &c) != nil {
			t.Fatalf("call %d after the restart: exit %d: %s", id, code, out)
		}
		if c.State.Live() && c.State != calld.StateHangingUp { // ringing, or waiting for receivedCall
			if _, errOut, code := e.cli("discard", fmt.Sprint(id)); code != 0 {
				t.Fatalf("discard %d: exit %d: %s", id, code, errOut)
			}
		}
		c = e.waitCall(id, calld.StateEnded)
		if c.Reason != calld.ReasonBusy && c.Reason != calld.ReasonMissed {
			t.Errorf("call %d ended with %q", id, c.Reason)
		}
	}
	out, _, _ := e.cli("events", "--json")
	byCall := map[int64][]calld.Event{}
	var last uint64
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var ev calld.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Seq != last+1 {
			t.Fatalf("journal gap: %d after %d", ev.Seq, last)
		}
		last = ev.Seq
		byCall[ev.CallID] = append(byCall[ev.CallID], ev)
	}
	for _, id := range ids {
		evs := byCall[id]
		if len(evs) == 0 || evs[0].From != "" || evs[len(evs)-1].To != "ended" {
			t.Fatalf("call %d journal: %+v", id, evs)
		}
		for i := 1; i < len(evs); i++ {
			if evs[i].From != evs[i-1].To {
				t.Fatalf("call %d journal breaks: %+v", id, evs)
			}
		}
	}
	var st calld.Status
	e.cliJSON(&st, "status")
	pts, qts, seq, _ := e.srv.State()
	if st.Updates.Pts != pts || st.Updates.Qts != qts || st.Updates.Seq != seq {
		t.Fatalf("updates %+v, server pts=%d qts=%d seq=%d", st.Updates, pts, qts, seq)
	}
}

// TestKillDashNineDuringRequestCall: calld is killed with SIGKILL while
// the simulator holds its phone.requestCall (the request dies with the
// connection). Restarted on the same state file, calld sends the persisted
// request again with the same random_id and g_a_hash; the call goes on to
// active with the peer's key and ends with exactly one discard.
func TestKillDashNineDuringRequestCall(t *testing.T) {
	e := newEnv(t, sim.Options{Authorized: true}, "")
	d := e.start()
	peer := e.srv.AddPeer("callee")
	e.srv.SetPeerBehaviour(peer, sim.Answer)
	release := e.srv.HoldRPC("phone.requestCall")
	before := e.srv.Count("phone.requestCall")
	go e.cli("call", "@callee") // answers an error when calld dies
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := e.srv.WaitCount(ctx, "phone.requestCall", before+1); err != nil {
		t.Fatal(err)
	}
	if code := d.stop(t, syscall.SIGKILL); code == 0 {
		t.Fatal("SIGKILL reported a clean exit")
	}
	release() // its connection is gone: dropped unrun, like a request lost in transit
	e.start()
	if err := e.srv.WaitCount(ctx, "phone.requestCall", before+2); err != nil {
		t.Fatal(err)
	}
	var reqs []*tg.PhoneRequestCallRequest
	for _, r := range e.srv.Requests() {
		if req, ok := r.Req.(*tg.PhoneRequestCallRequest); ok {
			reqs = append(reqs, req)
		}
	}
	if len(reqs) != 2 || reqs[0].RandomID != reqs[1].RandomID || !bytes.Equal(reqs[0].GAHash, reqs[1].GAHash) {
		t.Fatalf("requestCall not re-sent as persisted: %+v", reqs)
	}
	var calls []sim.CallInfo
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		if calls = e.srv.Calls(); len(calls) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond) // polling the sim for a separate process: nothing to inject
	}
	if len(calls) != 1 {
		t.Fatalf("the server has %d calls, want 1", len(calls))
	}
	id := calls[0].ID
	e.waitCall(id, calld.StateActive)
	status, media := e.http("GET", fmt.Sprintf("/v1/calls/%d/media", id), "")
	if _, fp, ok := e.srv.CallKey(id); !ok || status != 200 || media["key_fingerprint"] != fmt.Sprint(fp) {
		t.Fatalf("media: %d %v; the peer's fingerprint %d", status, media["key_fingerprint"], fp)
	}
	if _, errOut, code := e.cli("discard", fmt.Sprint(id)); code != 0 {
		t.Fatalf("discard: exit %d: %s", code, errOut)
	}
	n := 0
	for _, r := range e.srv.Requests() {
		if req, ok := r.Req.(*tg.PhoneDiscardCallRequest); ok && req.Peer.ID == id {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("the server got %d phone.discardCall, want 1", n)
	}
}

func TestReloadOnSIGHUP(t *testing.T) {
	e := newEnv(t, sim.Options{Authorized: true}, "")
	d := e.start()
	// A ringing call before the reload is not touched by it.
	before, err := e.srv.IncomingCall(e.srv.AddPeer("erin"), false)
	if err != nil {
		t.Fatal(err)
	}
	e.waitCall(before, calld.StateRinging)

	cfg, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	next := strings.Replace(string(cfg), `level = "debug"`, `level = "info"`, 1) +
		"\n[policy]\nincoming = \"reject\"\nreject_when_busy = false\n"
	if err := os.WriteFile(e.config, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(d.logs.String(), `"event":"daemon.reload"`) {
		if time.Now().After(deadline) {
			t.Fatal("no daemon.reload line after SIGHUP")
		}
		time.Sleep(10 * time.Millisecond) // another process: poll its log
	}
	after, err := e.srv.IncomingCall(e.srv.AddPeer("frank"), false)
	if err != nil {
		t.Fatal(err)
	}
	c := e.waitCall(after, calld.StateEnded)
	if c.Reason != calld.ReasonBusy {
		t.Fatalf("call after reload: %+v", c)
	}
	var still calld.Call
	e.cliJSON(&still, "show", fmt.Sprint(before))
	if still.State != calld.StateRinging {
		t.Fatalf("the reload touched a live call: %+v", still)
	}
	// A broken config on SIGHUP is refused and the daemon keeps running.
	if err := os.WriteFile(e.config, []byte("[policy]\nincoming = \"maybe\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = d.cmd.Process.Signal(syscall.SIGHUP)
	for !strings.Contains(d.logs.String(), "reload refused") {
		if time.Now().After(deadline) {
			t.Fatal("a bad config on SIGHUP was not refused")
		}
		time.Sleep(10 * time.Millisecond)
	}
	var st calld.Status
	e.cliJSON(&st, "status")
	if !st.Ready {
		t.Fatalf("daemon after a refused reload: %+v", st)
	}
	if !strings.Contains(st.ReloadError, "policy.incoming") || !strings.Contains(st.Status, "(reload refused: ") {
		t.Fatalf("a refused reload is not visible in /v1/status: reload_error %q, status %q", st.ReloadError, st.Status)
	}
	if code := d.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestSystemdNotify runs `calld serve` as systemd would (Type=notify):
// NOTIFY_SOCKET and WATCHDOG_USEC set, and reads what it tells systemd.
func TestSystemdNotify(t *testing.T) {
	e := newEnv(t, sim.Options{Authorized: true}, "")
	sock := filepath.Join(e.dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	cmd := exec.Command(binary, "serve", "--config", e.config)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=2000000")
	logs := &syncBuffer{}
	cmd.Stderr = logs
	t.Cleanup(func() { checkLogLines(t, logs.String()) }) // after the deferred kill
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
	want := func(prefix string) string {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatalf("notify socket closed waiting for %s", prefix)
				}
				for _, line := range strings.Split(m, "\n") {
					if strings.HasPrefix(line, prefix) {
						return line
					}
				}
			case <-timeout:
				t.Fatalf("no %s from calld; logs:\n%s", prefix, logs.String())
			}
		}
	}
	want("READY=1")
	// READY comes once the socket serves (CONTRACT §5.2): it answers at
	// once (exit 0, or 3 while Telegram is not connected yet; 1 is "cannot
	// reach the daemon").
	if _, errOut, code := e.cli("status"); code != 0 && code != 3 {
		t.Fatalf("READY=1 sent before the socket served: status exit %d %s", code, errOut)
	}
	// STATUS= follows what calld does, up to "ready: ...".
	st := want("STATUS=")
	for !strings.HasPrefix(st, "STATUS=ready: ") {
		st = want("STATUS=")
	}
	if !strings.Contains(st, "live calls") || !strings.Contains(st, "connected") {
		t.Fatalf("status line %q", st)
	}
	want("WATCHDOG=1")
	_ = cmd.Process.Signal(syscall.SIGTERM)
	want("STOPPING=1")
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	if cmd.ProcessState.ExitCode() != 0 {
		t.Fatalf("exit %d", cmd.ProcessState.ExitCode())
	}
}
