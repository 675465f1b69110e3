package store

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gotd/neo"

	"github.com/calld/calld"
)

// newFakeClock is the injected clock of these tests: gotd's neo fake
// clock, moved by Travel.
func newFakeClock() *neo.Time {
	return neo.NewTime(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
}

// testRecord is the shape of a call record in these tests (the store
// treats records as opaque JSON).
type testRecord struct {
	ID    int64  `json:"id,string"`
	State string `json:"state"`
	Seq   uint64 `json:"seq"`
}

func mustRecord(t testing.TB, rec []byte) testRecord {
	t.Helper()
	var r testRecord
	if err := json.Unmarshal(rec, &r); err != nil {
		t.Fatalf("record %q: %v", rec, err)
	}
	return r
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func openT(t testing.TB, path string, opts Options) *DB {
	t.Helper()
	db, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// transition persists one call transition: the event, the record that
// points at it and the updates state, in tx.
func transition(tx *Tx, callID int64, state string, live bool) (uint64, error) {
	e := calld.Event{Event: "call.state", CallID: callID, From: "ringing", To: state}
	if err := tx.AppendEvent(&e); err != nil {
		return 0, err
	}
	rec, err := json.Marshal(testRecord{ID: callID, State: state, Seq: e.Seq})
	if err != nil {
		return 0, err
	}
	if err := tx.PutCall(callID, rec, live); err != nil {
		return 0, err
	}
	if err := tx.SetUpdatesState(calld.UpdatesState{Pts: int(e.Seq), Qts: 1, Seq: 2, Date: 3}); err != nil {
		return 0, err
	}
	return e.Seq, nil
}

// populate writes n transitions over a few calls, with a session.
func populate(t testing.TB, db *DB, n int) {
	t.Helper()
	err := db.Update(func(tx *Tx) error {
		for i := 0; i < n; i++ {
			id := int64(i%50 + 1)
			if _, err := transition(tx, id, "active", i%3 != 0); err != nil {
				return err
			}
		}
		return tx.SetSession(bytes.Repeat([]byte("s"), 300))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// snapshot is a file's content and modification time.
type snapshot struct {
	data  []byte
	mtime time.Time
	mode  os.FileMode
}

func snap(t testing.TB, path string) snapshot {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return snapshot{data: data, mtime: st.ModTime(), mode: st.Mode()}
}

func (s snapshot) same(o snapshot) bool {
	return bytes.Equal(s.data, o.data) && s.mtime.Equal(o.mtime) && s.mode == o.mode
}

// seqs lists the seqs of the journal after since.
func seqs(t testing.TB, db *DB, since uint64) []uint64 {
	t.Helper()
	var out []uint64
	err := db.View(func(tx *Tx) error {
		return tx.Events(since, func(e calld.Event) error {
			out = append(out, e.Seq)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func tempDB(t testing.TB) string {
	return filepath.Join(t.TempDir(), "calld.db")
}
