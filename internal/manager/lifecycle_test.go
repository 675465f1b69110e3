package manager_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/manager"
	"github.com/calld/calld/internal/store"
)

// TestBeforeRun: before Run (no account logged in, Telegram not reached)
// nothing blocks on the loop that does not run: reloads (SetPolicy)
// coalesce, connection events and API calls that need the loop return at
// once, the watchdog's check passes, and Status shows the persisted
// updates state.
func TestBeforeRun(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "calld.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	want := calld.UpdatesState{Pts: 41, Qts: 2, Seq: 7, Date: 1714557600}
	if err := db.Update(func(tx *store.Tx) error { return tx.SetUpdatesState(want) }); err != nil {
		t.Fatal(err)
	}
	m := manager.New(manager.Config{DB: db, Log: zerolog.Nop()})
	if err := m.LoadStatus(); err != nil {
		t.Fatal(err)
	}
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		for i := 0; i < 10000; i++ {
			m.SetPolicy(manager.Policy{Reject: i%2 == 0}, time.Hour)
			m.Connected(context.Background())
		}
	}()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("10,000 SetPolicy/Connected before Run blocked")
	}
	if err := m.Alive(time.Second); err != nil {
		t.Fatalf("Alive before Run: %v", err)
	}
	var ce *calld.Error
	if _, err := m.Discard(context.Background(), 1, calld.ReasonHangup); !errors.As(err, &ce) || ce.Code != calld.EUNAVAILABLE {
		t.Fatalf("Discard before Run: %v, want %s", err, calld.EUNAVAILABLE)
	}
	st, err := m.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Updates != want {
		t.Fatalf("Status before Run: updates %+v, want the persisted %+v", st.Updates, want)
	}
}
