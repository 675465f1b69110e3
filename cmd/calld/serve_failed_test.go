package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeFailureEndsTheLog: a daemon that fails once its JSON log is
// built (here: the state file's directory is missing) exits 1, and its
// stderr is JSON lines only, ending with daemon.failed then
// daemon.stopped carrying the error: the error is not repeated as plain
// text after them. A failure before the log exists (a config that does
// not load) is plain text, exit 2.
func TestServeFailureEndsTheLog(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, "calld.toml", fmt.Sprintf(`[telegram]
api_id = 1
api_hash = "x"
[state]
path = %q
[control]
socket = %q
[log]
format = "json"
`, filepath.Join(dir, "missing", "calld.db"), filepath.Join(dir, "calld.sock")))
	code, _, stderr := runCLI(context.Background(), []string{"serve", "--config", cfg}, nil, "")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	var events []string
	var last struct{ Event, Err string }
	for _, l := range lines {
		if err := json.Unmarshal([]byte(l), &last); err != nil {
			t.Fatalf("stderr line %q is not JSON: %v; stderr:\n%s", l, err, stderr)
		}
		events = append(events, last.Event)
	}
	if n := len(events); n < 2 || events[n-2] != "daemon.failed" || events[n-1] != "daemon.stopped" ||
		!strings.Contains(last.Err, "missing") {
		t.Fatalf("events %v, last err %q; want daemon.failed then daemon.stopped naming the missing directory", events, last.Err)
	}

	code, _, stderr = runCLI(context.Background(), []string{"serve", "--config", filepath.Join(dir, "none.toml")}, nil, "")
	if code != 2 || !strings.HasPrefix(stderr, "calld serve: ") {
		t.Fatalf("a config that does not load: exit %d, stderr %q; want 2 and a plain-text line", code, stderr)
	}
}
