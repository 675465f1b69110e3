package store

import (
	"reflect"
	"testing"
	"time"

	"github.com/calld/calld"
)

func TestPrune(t *testing.T) {
	tests := []struct {
		name        string
		retention   Retention
		lateOld     bool // append an 11th event stamped at the start
		chunk       int
		wantRemoved int
		wantSeqs    []uint64
	}{
		{"no retention", Retention{}, false, 0, 0, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"by age", Retention{MaxAge: 5 * time.Minute}, false, 0, 5, []uint64{6, 7, 8, 9, 10}},
		{"by age, none old enough", Retention{MaxAge: time.Hour}, false, 0, 0, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"by age, an old event appended late", Retention{MaxAge: 5 * time.Minute}, true, 0, 6, []uint64{6, 7, 8, 9, 10}},
		{"by count", Retention{MaxEvents: 3}, false, 0, 7, []uint64{8, 9, 10}},
		{"by count, an old event appended late", Retention{MaxEvents: 3}, true, 0, 8, []uint64{9, 10, 11}},
		{"by count, under the limit", Retention{MaxEvents: 100}, false, 0, 0, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"by age and count", Retention{MaxAge: 5 * time.Minute, MaxEvents: 3}, false, 0, 7, []uint64{8, 9, 10}},
		{"by age and count, age stricter", Retention{MaxAge: 2 * time.Minute, MaxEvents: 8}, false, 0, 8, []uint64{9, 10}},
		{"small chunks", Retention{MaxAge: 5 * time.Minute, MaxEvents: 2}, true, 3, 9, []uint64{9, 10}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.chunk > 0 {
				old := pruneChunk
				pruneChunk = tc.chunk
				t.Cleanup(func() { pruneChunk = old })
			}
			clock := newFakeClock()
			start := clock.Now()
			db := openT(t, tempDB(t), Options{Clock: clock, Retention: tc.retention})
			// Events 1..10, one a minute, over calls 1 and 2.
			for i := 0; i < 10; i++ {
				if err := db.Update(func(tx *Tx) error {
					_, err := transition(tx, int64(i%2+1), "active", true)
					return err
				}); err != nil {
					t.Fatal(err)
				}
				clock.Travel(time.Minute)
			}
			if tc.lateOld {
				if err := db.Update(func(tx *Tx) error { return tx.AppendEvent(&calld.Event{CallID: 3, At: start}) }); err != nil {
					t.Fatal(err)
				}
			}
			lastBefore := uint64(10)
			if tc.lateOld {
				lastBefore = 11
			}
			// Now is start+10m: MaxAge 5m removes events stamped before
			// start+5m, that is seqs 1..5.
			removed, err := db.Prune()
			if err != nil {
				t.Fatal(err)
			}
			if removed != tc.wantRemoved {
				t.Errorf("Prune removed %d, want %d", removed, tc.wantRemoved)
			}
			if got := seqs(t, db, 0); !reflect.DeepEqual(got, tc.wantSeqs) {
				t.Errorf("journal after Prune: %v, want %v", got, tc.wantSeqs)
			}
			// A second Prune finds nothing more.
			if n, err := db.Prune(); n != 0 || err != nil {
				t.Errorf("second Prune: %d, %v", n, err)
			}

			// The indexes hold exactly the remaining events.
			err = db.View(func(tx *Tx) error {
				var perCall []uint64
				for _, id := range []int64{1, 2, 3} {
					if err := tx.CallEvents(id, func(e calld.Event) error {
						perCall = append(perCall, e.Seq)
						if e.CallID != id {
							t.Errorf("event %d of call %d listed under %d", e.Seq, e.CallID, id)
						}
						return nil
					}); err != nil {
						return err
					}
				}
				if len(perCall) != len(tc.wantSeqs) {
					t.Errorf("per-call index lists %v, want the %d remaining", perCall, len(tc.wantSeqs))
				}
				// It indexes by time only the late event (11), if kept.
				wantAt := 0
				if tc.lateOld && tc.wantSeqs[len(tc.wantSeqs)-1] == 11 {
					wantAt = 1
				}
				if n := tx.tx.Bucket(bJournalAt).Stats().KeyN; n != wantAt {
					t.Errorf("time index has %d keys, want %d", n, wantAt)
				}
				if n := indexEntries(tx); n != len(tc.wantSeqs) {
					t.Errorf("call index has %d keys, want %d", n, len(tc.wantSeqs))
				}
				if got := tx.LastSeq(); got != lastBefore {
					t.Errorf("LastSeq after Prune = %d, want %d", got, lastBefore)
				}
				if got, want := tx.FirstSeq(), tc.wantSeqs[0]; got != want {
					t.Errorf("FirstSeq = %d, want %d", got, want)
				}
				// Call records are kept.
				if _, total, err := tx.CallCounts(); err != nil || total != 2 {
					t.Errorf("CallCounts total = %d, %v; want 2", total, err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}

			// Seqs are never reused.
			var e calld.Event
			if err := db.Update(func(tx *Tx) error { return tx.AppendEvent(&e) }); err != nil {
				t.Fatal(err)
			}
			if e.Seq != lastBefore+1 {
				t.Errorf("next seq after Prune = %d, want %d", e.Seq, lastBefore+1)
			}
		})
	}
}

// TestPruneAllThenReopen empties the journal and checks that the seq
// survives a reopen.
func TestPruneAllThenReopen(t *testing.T) {
	clock := newFakeClock()
	path := tempDB(t)
	db := openT(t, path, Options{Clock: clock, Retention: Retention{MaxAge: time.Second}})
	populate(t, db, 20)
	clock.Travel(time.Minute)
	if n, err := db.Prune(); n != 20 || err != nil {
		t.Fatalf("Prune = %d, %v; want 20", n, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openT(t, path, Options{Clock: clock})
	var e calld.Event
	if err := db.Update(func(tx *Tx) error {
		if tx.FirstSeq() != 0 {
			t.Errorf("FirstSeq of an empty journal = %d", tx.FirstSeq())
		}
		return tx.AppendEvent(&e)
	}); err != nil {
		t.Fatal(err)
	}
	if e.Seq != 21 {
		t.Errorf("seq after pruning everything and reopening = %d, want 21", e.Seq)
	}
}

// indexEntries counts the per-call journal index entries (callID|seq keys
// of the calls bucket).
func indexEntries(tx *Tx) int {
	n := 0
	c := tx.tx.Bucket(bCalls).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) == 16 {
			n++
		}
	}
	return n
}
