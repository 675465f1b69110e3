package daemon

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/calld/calld/internal/config"
	"github.com/calld/calld/internal/sim"
)

// TestReloadRefusedIsVisible: a refused reload shows in systemd's STATUS=
// and in /v1/status (reload_error, and the status line) until the next
// good reload clears it.
func TestReloadRefusedIsVisible(t *testing.T) {
	conn := notifySocket(t)
	// waitStatus reads notifications until a STATUS= line that ok accepts.
	waitStatus := func(ok func(string) bool) string {
		t.Helper()
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				t.Fatalf("no such STATUS=: %v", err)
			}
			for _, l := range strings.Split(string(buf[:n]), "\n") {
				if line, found := strings.CutPrefix(l, "STATUS="); found && ok(line) {
					return line
				}
			}
		}
	}
	srv := newSim(t, sim.Options{Authorized: true})
	r := start(t, srv, filepath.Join(t.TempDir(), "calld.db"), "", nil)
	r.waitReady(t)
	waitStatus(func(l string) bool { return strings.HasPrefix(l, "ready: ") })

	bad := &config.Error{Key: "policy.incoming", Line: 3, Msg: `"maybe" is not accept, reject or ignore`}
	r.m.ReloadRefused(bad)
	line := waitStatus(func(l string) bool { return strings.Contains(l, "reload refused") })
	if !strings.HasPrefix(line, "ready: ") || !strings.HasSuffix(line, " (reload refused: "+bad.Error()+")") {
		t.Errorf("STATUS=%s, want the ready line ending (reload refused: %s)", line, bad.Error())
	}
	st := r.status(t)
	if st.ReloadError != bad.Error() || !strings.Contains(st.Status, "(reload refused: ") {
		t.Errorf("/v1/status after a refused reload: reload_error %q, status %q", st.ReloadError, st.Status)
	}

	r.m.Reload(r.m.Config)
	line = waitStatus(func(l string) bool { return !strings.Contains(l, "reload refused") })
	if !strings.HasPrefix(line, "ready: ") {
		t.Errorf("STATUS=%s after a good reload, want the ready line", line)
	}
	if st := r.status(t); st.ReloadError != "" || strings.Contains(st.Status, "reload refused") {
		t.Errorf("/v1/status after a good reload: reload_error %q, status %q", st.ReloadError, st.Status)
	}
}
