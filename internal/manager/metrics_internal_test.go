package manager

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/fsm"
	"github.com/calld/calld/internal/metrics"
	"github.com/calld/calld/internal/store"
)

// benchCall is a restored call in state s, counted in state counted.
func benchCall(b testing.TB, id int64, s calld.State) *call {
	b.Helper()
	rec := calld.Call{ID: id, State: s, Direction: calld.DirectionIncoming, PeerID: 7, AccessHash: 9}
	if s == calld.StateEnded {
		rec.Reason, rec.EndedBy = calld.ReasonHangup, calld.EndedByLocal
	}
	mach, err := fsm.Restore(rec, fsm.Timeouts{})
	if err != nil {
		b.Fatal(err)
	}
	return &call{m: mach}
}

// tempDB is a new state file in tb's temporary directory, closed at its
// end.
func tempDB(tb testing.TB) *store.DB {
	tb.Helper()
	db, err := store.Open(filepath.Join(tb.TempDir(), "calld.db"), store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

// metricsOffOn are a benchmark's two runs: without metrics and with.
func metricsOffOn() []struct {
	name string
	m    *metrics.Metrics
} {
	return []struct {
		name string
		m    *metrics.Metrics
	}{{"off", nil}, {"on", metrics.New(metrics.Options{})}}
}

// BenchmarkFlushMetrics is the loop's commit of one step that moves a
// live call (ringing → active) and ends another, on a real state file:
// the manager's cost per commit without metrics and with them (their
// difference is what recording costs; docs/performance.md).
func BenchmarkFlushMetrics(b *testing.B) {
	for _, bc := range metricsOffOn() {
		b.Run(bc.name, func(b *testing.B) {
			db := tempDB(b)
			m := New(Config{DB: db, Metrics: bc.m})
			live, over := benchCall(b, 1, calld.StateActive), benchCall(b, 2, calld.StateEnded)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				live.counted, over.counted = calld.StateRinging, calld.StateActive
				m.dirty[live], m.dirty[over] = true, true
				if err := m.settle(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCountCall is the recording alone, per committed call: a
// state change (two gauges) and an end (a counter by labels).
func BenchmarkCountCall(b *testing.B) {
	for _, bc := range metricsOffOn() {
		b.Run(bc.name, func(b *testing.B) {
			m := New(Config{Metrics: bc.m})
			live, over := benchCall(b, 1, calld.StateActive), benchCall(b, 2, calld.StateEnded)
			b.ReportAllocs()
			for b.Loop() {
				live.counted, over.counted = calld.StateRinging, calld.StateActive
				m.countCall(live)
				m.countCall(over)
			}
		})
	}
}
