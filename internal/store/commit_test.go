package store

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

type observations []float64

func (o *observations) Observe(v float64) { *o = append(*o, v) }

// TestCommitSeconds: every write transaction, committed or rolled back,
// is observed once with its duration on the store's clock; reads are not.
func TestCommitSeconds(t *testing.T) {
	clk := newFakeClock()
	var obs observations
	db := openT(t, filepath.Join(t.TempDir(), "calld.db"), Options{Clock: clk, CommitSeconds: &obs})
	defer db.Close()
	for _, tc := range []struct {
		name string
		took time.Duration
		err  error
	}{
		{"commit", 3 * time.Millisecond, nil},
		{"rollback", 250 * time.Millisecond, errors.New("refused")},
	} {
		obs = nil
		err := db.Update(func(*Tx) error { clk.Travel(tc.took); return tc.err })
		if !errors.Is(err, tc.err) {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(obs) != 1 || obs[0] != tc.took.Seconds() {
			t.Fatalf("%s: observed %v, want [%v]", tc.name, obs, tc.took.Seconds())
		}
	}
	obs = nil
	if err := db.View(func(*Tx) error { return nil }); err != nil || len(obs) != 0 {
		t.Fatalf("a read: %v, observed %v", err, obs)
	}
}
