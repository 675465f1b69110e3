package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotd/neo"
	"github.com/gotd/td/clock"

	"github.com/calld/calld"
)

func TestCommands(t *testing.T) {
	ringing := strconv.FormatInt(idRinging, 10)
	active := strconv.FormatInt(idActive, 10)
	ended := strconv.FormatInt(idEnded, 10)
	type tc struct {
		name      string
		args      []string
		stdin     string
		code      int
		stdout    []string // substrings of stdout
		stderr    []string // substrings of stderr
		notStdout []string
		jsonOut   bool // stdout is one JSON document
		before    func(d *testDaemon)
		after     func(t *testing.T, d *testDaemon)
	}
	tests := []tc{
		{name: "status", args: []string{"status"}, code: 0,
			stdout: []string{"Version   1.2.3", "Ready     yes", "connected, authorized as user 9007199254740997, DC 4",
				"pts 101, qts 7, seq 9, date 2024-05-01T10:00:00Z", "2 live, 3 total"}, notStdout: []string{"Account"}},
		{name: "status of an account", args: []string{"status"}, code: 0,
			before: func(d *testDaemon) { d.svc.setStatus(func(st *calld.Status) { st.Account = "alice" }) },
			stdout: []string{"Version   1.2.3\nAccount   alice\nReady     yes\n"}},
		{name: "status not ready exits 3", args: []string{"status"}, code: 3,
			before: func(d *testDaemon) { d.svc.setStatus(func(st *calld.Status) { st.Ready = false }) },
			stdout: []string{"Ready     no"}},
		{name: "status disconnected exits 3", args: []string{"status", "--json"}, code: 3, jsonOut: true,
			before: func(d *testDaemon) { d.svc.setStatus(func(st *calld.Status) { st.Telegram.Connected = false }) },
			stdout: []string{`"connected":false`}},
		{name: "status not authorized exits 3", args: []string{"status"}, code: 3,
			before: func(d *testDaemon) { d.svc.setStatus(func(st *calld.Status) { st.Telegram.Authorized = false }) },
			stdout: []string{"connected, not authorized (run calld login)"}},
		{name: "status json", args: []string{"status", "--json"}, jsonOut: true,
			stdout: []string{`"self_id":"9007199254740997"`, `"pts":101`}},
		{name: "calls", args: []string{"calls"},
			stdout: []string{"ID                    DIRECTION  PEER    STATE    VIDEO  CREATED               DURATION  REASON  ENDED BY\n" +
				"9007199254740993      incoming   1001    ringing  no     2024-05-01T12:00:00Z  0s        -       -\n" +
				"-4000000000000000003  outgoing   @alice  active   yes    2024-05-01T11:00:00Z  1m15s     -       -\n"},
			notStdout: []string{ended}},
		{name: "calls all", args: []string{"calls", "--all"},
			stdout: []string{ringing, active, "77                    incoming   3003    ended    no     2024-05-01T10:00:00Z  42s       hangup  remote"}},
		{name: "calls json", args: []string{"calls", "--json", "--all"}, jsonOut: true,
			stdout: []string{`"id":"` + ringing + `"`, `"id":"` + active + `"`, `"id":"77"`}},
		{name: "calls extra argument", args: []string{"calls", "now"}, code: 2, stderr: []string{`unexpected argument "now"`, "usage: calld calls"}},
		{name: "calls unknown flag", args: []string{"calls", "--bogus"}, code: 2, stderr: []string{"unknown flag: --bogus", "usage: calld calls"}},
		{name: "calls one-dash long flag", args: []string{"calls", "-all", "-json"}, jsonOut: true, stdout: []string{`"id":"77"`}},
		{name: "calls help", args: []string{"calls", "-h"}, code: 0, stdout: []string{"usage: calld calls", "--all "}},
		{name: "show", args: []string{"show", active},
			stdout: []string{"ID           " + active, "Peer         @alice", "State        active", "Video        yes", "Connection   55",
				"Connections  55 192.0.2.1 [2001:db8::1] port 443", "Ended        -"}},
		{name: "show flags after the id", args: []string{"show", ringing, "--json"}, jsonOut: true,
			stdout: []string{`"id":"` + ringing + `"`, `"state":"ringing"`}},
		{name: "show after --", args: []string{"show", "--json", "--", active}, jsonOut: true, stdout: []string{`"id":"` + active + `"`}},
		{name: "show unknown", args: []string{"show", "31337"}, code: 1, stderr: []string{"calld show: not_found: call 31337 not found"}},
		{name: "show bad id", args: []string{"show", "abc"}, code: 2, stderr: []string{`call id "abc" is not a decimal 64-bit integer`}},
		{name: "show id overflow", args: []string{"show", "99999999999999999999"}, code: 2},
		{name: "show no id", args: []string{"show"}, code: 2, stderr: []string{"missing argument"}},
		{name: "show two ids", args: []string{"show", "1", "2"}, code: 2},
		{name: "discard", args: []string{"discard", ringing, "--reason", "hangup"},
			stdout: []string{"call " + ringing + " (incoming, peer 1001): ended, reason hangup, ended by local, duration 0s"},
			after: func(t *testing.T, d *testDaemon) {
				if got := d.svc.reasons; len(got) != 1 || got[0] != calld.ReasonHangup {
					t.Errorf("reasons sent %v", got)
				}
			}},
		{name: "discard default reason is auto", args: []string{"discard", "--json", ringing}, jsonOut: true,
			stdout: []string{`"state":"ended"`, `"reason":"busy"`},
			after: func(t *testing.T, d *testDaemon) {
				if got := d.svc.reasons; len(got) != 1 || got[0] != calld.ReasonAuto {
					t.Errorf("reasons sent %v", got)
				}
			}},
		{name: "discard reason=", args: []string{"discard", "--reason=missed", active}, stdout: []string{"reason missed"}},
		{name: "discard bad reason", args: []string{"discard", ringing, "--reason", "rude"}, code: 2, stderr: []string{`--reason "rude"`}},
		{name: "discard ended", args: []string{"discard", ended}, code: 1, stderr: []string{"calld discard: conflict: call 77 is already ended"}},
		{name: "call", args: []string{"call", "@alice", "--video"},
			stdout: []string{"call 501 (outgoing, peer @alice): waiting"},
			after: func(t *testing.T, d *testDaemon) {
				if len(d.svc.places) != 1 || d.svc.places[0].Peer != "@alice" || !d.svc.places[0].Video {
					t.Errorf("places %+v", d.svc.places)
				}
			}},
		{name: "call by id json", args: []string{"call", "--json", "12345"}, jsonOut: true, stdout: []string{`"state":"waiting"`, `"video":false`}},
		{name: "call bad peer", args: []string{"call", "alice smith"}, code: 2, stderr: []string{"PEER must be @username or a user id"}},
		{name: "call telegram error", args: []string{"call", "@nobody"}, code: 1, stderr: []string{"calld call: CALL_PEER_INVALID: the user cannot be called"}},
		{name: "accept", args: []string{"accept", ringing}, stdout: []string{"): accepting"}},
		{name: "accept not ringing", args: []string{"accept", active}, code: 1, stderr: []string{"conflict"}},
		{name: "events journal", args: []string{"events"},
			stdout: []string{"     1  2024-05-01T10:00:01.500Z  call.state  call " + ringing + "  waiting -> ringing\n", "     3  "}},
		{name: "events since", args: []string{"events", "--since", "2", "--json"},
			stdout: []string{`{"seq":3,`, `"call_id":"` + ringing + `"`}, notStdout: []string{`"seq":2`, `"seq":1`}},
		{name: "events bad since", args: []string{"events", "--since", "x"}, code: 2},
		{name: "version", args: []string{"version"}, stdout: []string{"calld", "dev", "go1.", "\ndaemon ", " 1.2.3\n"}},
		{name: "version json", args: []string{"version", "--json"}, jsonOut: true,
			stdout: []string{`"version":"dev"`, `"go":"go1.`, `"daemon":{"version":"1.2.3"}`}},
		{name: "media", args: []string{"media", active},
			stdout: []string{"Key fingerprint  -5", "Outgoing         yes", "Protocol         udp_p2p, udp_reflector, layers 65..92, library 9.0.0",
				"Connections      55 192.0.2.1 port 443"}, notStdout: []string{"AQID"}},
		{name: "media json", args: []string{"media", active, "--json"}, jsonOut: true, stdout: []string{`"key":"AQID"`, `"key_fingerprint":"-5"`}},
		{name: "media not active", args: []string{"media", ringing}, code: 1, stderr: []string{"calld media: not_found: no media"}},
		{name: "media no id", args: []string{"media"}, code: 2, stderr: []string{"usage: calld media ID"}},
		{name: "connection", args: []string{"connection", active, "-77"}, stdout: []string{"call " + active + " (outgoing, peer @alice): active, connection -77"},
			after: func(t *testing.T, d *testDaemon) {
				if got := d.svc.conns; len(got) != 1 || got[0] != -77 {
					t.Errorf("connection ids set %v", got)
				}
			}},
		{name: "connection json", args: []string{"connection", "--json", active, "56"}, jsonOut: true, stdout: []string{`"connection_id":"56"`}},
		{name: "connection bad conn id", args: []string{"connection", active, "x"}, code: 2, stderr: []string{`connection id "x"`}},
		{name: "connection missing conn id", args: []string{"connection", active}, code: 2, stderr: []string{"usage: calld connection ID CONN_ID"}},
		{name: "rate out of range", args: []string{"rate", ended, "6"}, code: 2, stderr: []string{`rating "6": want 1, 2, 3, 4 or 5`}},
		{name: "rate without rating", args: []string{"rate", ended}, code: 2, stderr: []string{"usage: calld rate ID 1..5"}},
		{name: "rate bad id", args: []string{"rate", "x", "5"}, code: 2},
		{name: "rate without media side", args: []string{"rate", ended, "5", "--comment", "ok"}, code: 1, stderr: []string{"not_found"}},
		{name: "signaling without id", args: []string{"signaling"}, code: 2, stderr: []string{"usage: calld signaling ID"}},
		{name: "signaling without media side", args: []string{"signaling", active}, code: 1, stderr: []string{"not_found"}},
		{name: "no command", args: nil, code: 2, stderr: []string{"usage: calld COMMAND"}},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, stderr: []string{`unknown command "frobnicate"`}},
		{name: "help", args: []string{"help"}, code: 0, stdout: []string{"discard", "events", "/run/calld.sock"}},
		{name: "login", args: []string{"login"}, stdin: "+15551234567\n24680\ns3cret\n",
			stdout: []string{"Logged in as user 9007199254740997."},
			stderr: []string{"Phone number", "Code sent to +1*****67 via app: ", "password (hint: the usual): "}},
		{name: "login retries a wrong code", args: []string{"login", "--json"}, stdin: "+15551234567\n11111\n\n24680\ns3cret",
			jsonOut: true, stdout: []string{`"state":"authorized"`, `"self_id":"9007199254740997"`},
			stderr: []string{"calld login: PHONE_CODE_INVALID: the code is wrong"}},
		{name: "login end of input", args: []string{"login"}, stdin: "+15551234567\n", code: 1,
			stderr: []string{"login aborted: end of input"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := startDaemon(t)
			if tt.before != nil {
				tt.before(d)
			}
			code, stdout, stderr := runCLI(context.Background(), tt.args, map[string]string{"CALLD_SOCKET": d.socket}, tt.stdin)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout)
				}
			}
			for _, s := range tt.notStdout {
				if strings.Contains(stdout, s) {
					t.Errorf("stdout has %q:\n%s", s, stdout)
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}
			if tt.jsonOut && !json.Valid([]byte(stdout)) {
				t.Errorf("stdout is not JSON: %q", stdout)
			}
			// (An unhealthy status prints the status and exits 3.)
			if code != 0 && stdout != "" && tt.code != 0 && tt.code != exitUnhealthy {
				t.Errorf("a failed command wrote to stdout: %q", stdout)
			}
			if tt.after != nil {
				tt.after(t, d)
			}
		})
	}
}

// TestUnreachable: with no daemon at the socket, status exits 1 (not 3)
// and version still prints the client's version.
func TestUnreachable(t *testing.T) {
	env := map[string]string{"CALLD_SOCKET": t.TempDir() + "/none.sock"}
	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"status"}, 1, "", "calld is not running at"},
		{[]string{"status", "--json"}, 1, "", "calld is not running at"},
		{[]string{"version"}, 0, " not running\n", ""},
		{[]string{"version", "--json"}, 0, `"daemon":{"error":"calld is not running at`, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, stdout, stderr := runCLI(context.Background(), tt.args, env, "")
			if code != tt.code || !strings.Contains(stdout, tt.stdout) || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("exit %d stdout %q stderr %q, want %d, %q and %q", code, stdout, stderr, tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}

func TestSocketResolution(t *testing.T) {
	d := startDaemon(t)
	cfg := writeFile(t, "calld.toml", "[control]\nsocket = \""+d.socket+"\"\n")
	wrongCfg := writeFile(t, "wrong.toml", "[control]\nsocket = \"/nonexistent/calld.sock\"\n")
	badCfg := writeFile(t, "bad.toml", "[control]\nsockett = \"x\"\n")
	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		code   int
		stderr string
	}{
		{"--socket", []string{"--socket", d.socket}, nil, 0, ""},
		{"--socket beats the environment", []string{"--socket", d.socket}, map[string]string{"CALLD_SOCKET": "/nonexistent/x.sock"}, 0, ""},
		{"$CALLD_SOCKET", nil, map[string]string{"CALLD_SOCKET": d.socket}, 0, ""},
		{"$CALLD_SOCKET beats --config", []string{"--config", wrongCfg}, map[string]string{"CALLD_SOCKET": d.socket}, 0, ""},
		{"--config", []string{"--config", cfg}, nil, 0, ""},
		{"--config beats $CALLD_CONFIG", []string{"--config", cfg}, map[string]string{"CALLD_CONFIG": wrongCfg}, 0, ""},
		{"$CALLD_CONFIG", nil, map[string]string{"CALLD_CONFIG": cfg}, 0, ""},
		{"config's socket not running", []string{"--config", wrongCfg}, nil, 1, "calld is not running at /nonexistent/calld.sock"},
		{"bad config is a usage error", []string{"--config", badCfg}, nil, 2, "sockett"},
		{"missing config", []string{"--config", "/nonexistent/calld.toml"}, nil, 2, "/nonexistent/calld.toml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"status", "--json"}, tt.args...)
			code, stdout, stderr := runCLI(context.Background(), args, tt.env, "")
			if code != tt.code || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("exit %d stderr %q, want %d and %q", code, stderr, tt.code, tt.stderr)
			}
			if code == 0 && !strings.Contains(stdout, `"version":"1.2.3"`) {
				t.Errorf("stdout %q", stdout)
			}
		})
	}
	t.Run("default socket", func(t *testing.T) {
		if _, err := os.Stat("/run/calld.sock"); err == nil {
			t.Skip("a daemon may be running at /run/calld.sock")
		}
		code, _, stderr := runCLI(context.Background(), []string{"status"}, nil, "")
		if code != 1 || !strings.Contains(stderr, "calld is not running at /run/calld.sock") {
			t.Errorf("exit %d stderr %q", code, stderr)
		}
	})
}

// TestEventsFollow streams the journal from --since, then live events,
// and ends with exit 0 when interrupted.
func TestEventsFollow(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []uint64 // seqs before the live ones
	}{
		{"since then live", []string{"events", "--follow", "--since", "1", "--json"}, []uint64{2, 3}},
		{"short flag", []string{"events", "-f", "--since=2", "--json"}, []uint64{3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := startDaemon(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			st := startStream(ctx, t, tt.args, d.socket, testClock)
			readSeq := st.readSeq
			for _, want := range tt.want {
				if got := readSeq(); got != want {
					t.Fatalf("replayed seq %d, want %d", got, want)
				}
			}
			// The replay is done, so the subscription exists.
			d.svc.emit(calld.Event{Event: "call.state", CallID: idRinging, From: "ringing", To: "accepting"})
			if got := readSeq(); got != 4 {
				t.Fatalf("live seq %d, want 4", got)
			}
			cancel()
			if code := st.end(); code != 0 {
				t.Errorf("exit %d after interrupt, want 0; stderr %s", code, st.stderr.String())
			}
		})
	}
}

// TestEventsFollowReconnects: `events --follow` outlives a daemon
// restart (CONTRACT §5.3): it reconnects with since = the last seq it
// printed, so nothing is lost or repeated, and runs until interrupted.
func TestEventsFollowReconnects(t *testing.T) {
	d := startDaemon(t)
	clk := neo.NewTime(t0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := startStream(ctx, t, []string{"events", "--follow", "--since", "1", "--json"}, d.socket, clk)
	expect := func(want uint64) {
		t.Helper()
		if got := st.readSeq(); got != want {
			t.Fatalf("seq %d, want %d (stderr %s)", got, want, st.stderr.String())
		}
	}
	expect(2)
	expect(3)
	waiting := clk.Observe()
	d.stop() // the daemon stops: the stream ends
	select {
	case <-waiting: // the client waits to reconnect
	case code := <-st.done:
		t.Fatalf("events --follow ended with exit %d when the daemon stopped; stderr %s", code, st.stderr.String())
	}
	// A new daemon on the same socket, with one event more in its journal
	// than the client printed.
	d2 := startDaemonAt(t, d.socket)
	d2.svc.emit(calld.Event{Event: "call.state", CallID: idRinging, From: "ringing", To: "accepting"})
	clk.Travel(time.Minute)
	expect(4)
	d2.svc.emit(calld.Event{Event: "call.state", CallID: idRinging, From: "accepting", To: "exchanging_keys"})
	expect(5)
	cancel()
	if code := st.end(); code != 0 {
		t.Errorf("exit %d after interrupt, want 0; stderr %s", code, st.stderr.String())
	}
	if !strings.Contains(st.stderr.String(), "reconnecting") {
		t.Errorf("stderr does not say it reconnects: %q", st.stderr.String())
	}
}

// syncBuffer is a strings.Builder safe for a writer and a reader in two
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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

// stream is a CLI command that streams NDJSON events, run in the
// background against socket.
type stream struct {
	t      *testing.T
	pr     *io.PipeReader
	br     *bufio.Reader
	stderr *syncBuffer
	done   chan int // the exit status
}

func startStream(ctx context.Context, t *testing.T, args []string, socket string, clk clock.Clock) *stream {
	pr, pw := io.Pipe()
	st := &stream{t: t, pr: pr, br: bufio.NewReader(pr), stderr: &syncBuffer{}, done: make(chan int, 1)}
	go func() {
		sio := stdio{stdin: strings.NewReader(""), stdout: pw, stderr: st.stderr, clock: clk,
			getenv: func(k string) string { return map[string]string{"CALLD_SOCKET": socket}[k] }}
		st.done <- run(ctx, args, sio)
		pw.Close()
	}()
	return st
}

// readSeq reads the next event's seq.
func (st *stream) readSeq() uint64 {
	st.t.Helper()
	line, err := st.br.ReadString('\n')
	if err != nil {
		st.t.Fatalf("reading the stream: %v (stderr %s)", err, st.stderr.String())
	}
	var ev calld.Event
	if err := json.Unmarshal([]byte(line), &ev); err != nil {
		st.t.Fatalf("line %q: %v", line, err)
	}
	return ev.Seq
}

// end drains the stream and returns the exit status (the context must
// be cancelled).
func (st *stream) end() int {
	go io.Copy(io.Discard, st.pr)
	return <-st.done
}
