package metrics_test

import (
	"testing"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/leaktest"
	"github.com/calld/calld/internal/metrics"
)

func TestMain(m *testing.M) { leaktest.Main(m, nil) }

func gather(t *testing.T, m *metrics.Metrics, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	return metrics.Find(fams, name, labels)
}

// TestCallState: a call is counted in one live state at a time and its
// end once; a repeated state counts nothing.
func TestCallState(t *testing.T) {
	m := metrics.New(metrics.Options{})
	steps := []struct {
		to       calld.State
		wantLive map[calld.State]float64
		wantEnds float64
	}{
		{calld.StateWaiting, map[calld.State]float64{calld.StateWaiting: 1}, 0},
		{calld.StateRinging, map[calld.State]float64{calld.StateWaiting: 0, calld.StateRinging: 1}, 0},
		{calld.StateRinging, map[calld.State]float64{calld.StateRinging: 1}, 0},
		{calld.StateHangingUp, map[calld.State]float64{calld.StateRinging: 0, calld.StateHangingUp: 1}, 0},
		{calld.StateEnded, map[calld.State]float64{calld.StateHangingUp: 0}, 1},
		{calld.StateEnded, map[calld.State]float64{calld.StateHangingUp: 0}, 1},
	}
	from := calld.State("")
	for i, s := range steps {
		rec := calld.Call{State: s.to, Direction: calld.DirectionIncoming, Reason: calld.ReasonBusy, EndedBy: calld.EndedByLocal}
		m.CallState(from, &rec)
		from = s.to
		for st, want := range s.wantLive {
			if got, ok := gather(t, m, metrics.NameCallsLive, map[string]string{"state": string(st)}); !ok || got != want {
				t.Errorf("step %d (%s): live %s = %v (%v), want %v", i, s.to, st, got, ok, want)
			}
		}
		got, _ := gather(t, m, metrics.NameCallsEnded, map[string]string{"direction": "incoming", "reason": "busy", "ended_by": "local"})
		if got != s.wantEnds {
			t.Errorf("step %d (%s): ended = %v, want %v", i, s.to, got, s.wantEnds)
		}
	}
}

// TestNilRecordsNothing: a part built without metrics may call every
// method.
func TestNilRecordsNothing(t *testing.T) {
	var m *metrics.Metrics
	m.CallState("", &calld.Call{State: calld.StateEnded})
	m.Discarded(1)
	m.RPCError("phone.discardCall", "timeout")
	m.Gap("pts")
	m.Difference()
	m.UpdatesState(calld.UpdatesState{Pts: 1})
	m.Connected(true)
	m.Authorized(true)
	if m.StoreCommit() != nil {
		t.Fatal("StoreCommit of nil metrics is not nil")
	}
}

// TestExported: every metric of CONTRACT §5.4 is on the registry from the
// start (the vectors once they have a series), with the build info and
// the subscribers read at gather time.
func TestExported(t *testing.T) {
	subs := 3
	m := metrics.New(metrics.Options{Version: "1.2.3", Subscribers: func() int { return subs }})
	m.RPCError("phone.discardCall", "CALL_PEER_INVALID")
	m.Gap("qts")
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{metrics.NameCallsLive, map[string]string{"state": "active"}, 0},
		{metrics.NameDiscardSeconds, nil, 0},
		{metrics.NameRPCErrors, map[string]string{"method": "phone.discardCall", "type": "CALL_PEER_INVALID"}, 1},
		{metrics.NameUpdatesGaps, map[string]string{"box": "qts"}, 1},
		{metrics.NameUpdatesDifferences, nil, 0},
		{metrics.NameUpdatesState, map[string]string{"box": "seq"}, 0},
		{metrics.NameStoreCommitSeconds, nil, 0},
		{metrics.NameTelegramConnected, nil, 0},
		{metrics.NameTelegramAuthorized, nil, 0},
		{metrics.NameEventsSubscribers, nil, 3},
		{metrics.NameBuildInfo, map[string]string{"version": "1.2.3"}, 1},
		{"go_goroutines", nil, -1},
		{"process_open_fds", nil, -1},
	} {
		got, ok := gather(t, m, tc.name, tc.labels)
		if !ok || (tc.want >= 0 && got != tc.want) {
			t.Errorf("%s%v = %v (found %v), want %v", tc.name, tc.labels, got, ok, tc.want)
		}
	}
}

// TestAccountLabel: with Options.Account every series on the registry,
// the Go and process collectors' too, carries the constant label account;
// without it none has the label.
func TestAccountLabel(t *testing.T) {
	for _, account := range []string{"alice", ""} {
		m := metrics.New(metrics.Options{Version: "1.2.3", Account: account})
		m.RPCError("phone.discardCall", "CALL_PEER_INVALID")
		m.Gap("qts")
		fams, err := m.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, f := range fams {
			for _, s := range f.GetMetric() {
				got, has := "", false
				for _, l := range s.GetLabel() {
					if l.GetName() == metrics.LabelAccount {
						got, has = l.GetValue(), true
					}
				}
				if has != (account != "") || got != account {
					t.Errorf("account %q: %s%v has account %q (%v)", account, f.GetName(), s.GetLabel(), got, has)
				}
			}
			seen[f.GetName()] = true
		}
		for _, name := range []string{metrics.NameBuildInfo, metrics.NameCallsLive, metrics.NameEventsSubscribers, "go_goroutines", "process_open_fds"} {
			if !seen[name] {
				t.Errorf("account %q: %s not gathered", account, name)
			}
		}
	}
}
