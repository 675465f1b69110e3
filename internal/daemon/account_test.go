package daemon

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/calld/calld/internal/logging"
	"github.com/calld/calld/internal/metrics"
	"github.com/calld/calld/internal/sim"
)

// TestAccount: with [telegram] account set, /v1/status shows it, every log
// line and every metric carries it; a reload that changes it is refused
// (reload_error, an error daemon.reload line, nothing of that reload
// applied) and the daemon keeps serving as the same account; a reload
// that keeps it applies.
func TestAccount(t *testing.T) {
	srv := newSim(t, sim.Options{Authorized: true})
	r := start(t, srv, filepath.Join(t.TempDir(), "calld.db"), "", func(m *Main) {
		m.Config.Telegram.Account = "alice"
	})
	r.waitReady(t)
	if st := r.status(t); st.Account != "alice" {
		t.Errorf("/v1/status account = %q, want alice", st.Account)
	}
	fams, err := r.m.metrics.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		for _, s := range f.GetMetric() {
			has := false
			for _, l := range s.GetLabel() {
				has = has || l.GetName() == metrics.LabelAccount && l.GetValue() == "alice"
			}
			if !has {
				t.Errorf("%s%v lacks account=alice", f.GetName(), s.GetLabel())
			}
		}
	}

	changed := r.m.Config
	changed.Telegram.Account = "bob"
	changed.Log.Level = "error"
	r.m.Reload(changed)
	r.logs.waitFor(t, `"level":"error","event":"daemon.reload"`)
	st := r.status(t)
	if st.Account != "alice" || !strings.Contains(st.ReloadError, "telegram.account") || !strings.Contains(st.ReloadError, "alice") {
		t.Errorf("after a reload to account bob: account %q, reload_error %q", st.Account, st.ReloadError)
	}
	if got := r.m.level.String(); got != "debug" {
		t.Errorf("the refused reload changed the log level to %s", got)
	}
	r.m.Reload(r.m.Config)
	r.logs.waitFor(t, `"level":"info","event":"daemon.reload"`)
	if st := r.status(t); st.ReloadError != "" || st.Account != "alice" {
		t.Errorf("after a good reload: account %q, reload_error %q", st.Account, st.ReloadError)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	for _, l := range logLines(t, r.logs.String()) {
		if l[logging.FieldAccount] != "alice" {
			t.Errorf("a line without account alice: %v", l)
		}
	}
}
