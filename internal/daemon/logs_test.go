package daemon

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/config"
	"github.com/calld/calld/internal/logging"
	"github.com/calld/calld/internal/sim"
)

// logLines decodes JSON log lines.
func logLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// TestLogsOfACleanRun: a run that takes a call, discards it and stops on
// a signal logs nothing at warn or above (journalctl -p warning stays
// quiet: the disconnection of the stop is info); both call.discard lines
// carry result ("sent", then "ok"); control.request is debug for a read
// and info for a mutating route (docs/logging.md); the last line is
// daemon.stopped naming the signal.
func TestLogsOfACleanRun(t *testing.T) {
	srv := newSim(t, sim.Options{Authorized: true})
	r := start(t, srv, filepath.Join(t.TempDir(), "calld.db"), "", nil)
	r.waitReady(t)
	id, err := srv.IncomingCall(srv.AddPeer("ann"), false)
	if err != nil {
		t.Fatal(err)
	}
	r.logs.waitFor(t, `"to":"ringing"`)
	if _, err := r.cl.Call(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if _, err := r.cl.Discard(context.Background(), id, calld.ReasonBusy); err != nil {
		t.Fatal(err)
	}
	r.m.SetStopReason("terminated")
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	lines := logLines(t, r.logs.String())
	var results []any
	requests := map[string]any{}
	for _, l := range lines {
		if l["level"] == "warn" || l["level"] == "error" {
			t.Errorf("a clean run logged at %s: %v", l["level"], l)
		}
		switch l["event"] {
		case logging.EventCallDiscard:
			results = append(results, l[logging.FieldResult])
		case logging.EventControlRequest:
			requests[l[logging.FieldMethod].(string)] = l["level"]
		}
	}
	if len(results) != 2 || results[0] != "sent" || results[1] != "ok" {
		t.Errorf("call.discard results %v, want [sent ok]", results)
	}
	if requests["GET"] != "debug" || requests["POST"] != "info" {
		t.Errorf("control.request levels %v, want GET debug, POST info", requests)
	}
	last := lines[len(lines)-1]
	if last["event"] != logging.EventDaemonStopped || last["level"] != "info" || last[logging.FieldReason] != "signal" ||
		last[logging.FieldSignal] != "terminated" || last[logging.FieldErr] != nil {
		t.Errorf("last line %v, want info daemon.stopped reason signal, signal terminated", last)
	}
}

// TestLogsOfAFailedStart: a start-up that fails ends with daemon.failed
// then daemon.stopped (error, reason "error", the err), the last line.
func TestLogsOfAFailedStart(t *testing.T) {
	cfg := config.Default()
	cfg.State.Path = filepath.Join(t.TempDir(), "missing", "calld.db")
	cfg.Log.Format = "json"
	m := New(cfg)
	logs := newLogBuffer()
	m.Stderr = logs
	err := m.Run(context.Background())
	if err == nil {
		t.Fatal("Run with a state path in a missing directory succeeded")
	}
	lines := logLines(t, logs.String())
	if len(lines) < 2 || lines[len(lines)-2]["event"] != logging.EventDaemonFailed {
		t.Fatalf("logs %v, want daemon.failed before the last line", lines)
	}
	last := lines[len(lines)-1]
	if last["event"] != logging.EventDaemonStopped || last["level"] != "error" || last[logging.FieldReason] != "error" ||
		last[logging.FieldErr] != err.Error() {
		t.Errorf("last line %v, want error daemon.stopped reason error, err %q", last, err)
	}
}
