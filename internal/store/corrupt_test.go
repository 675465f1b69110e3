package store

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/calld/calld"
)

// TestCorruptJournal: a malformed journal entry (a key that is not an
// 8-byte seq, an event whose seq is not its key) makes the journal's
// readers and Prune return an ErrCorrupt error naming it, never panic.
func TestCorruptJournal(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(tx *bolt.Tx) error
		want    string
		// whether Events(0) and Prune (MaxEvents 2) reach the entry
		events, prune bool
	}{
		{"short key after the events", func(tx *bolt.Tx) error {
			return tx.Bucket(bJournal).Put([]byte{1, 2, 3}, []byte(`{"seq":1}`))
		}, "journal key 010203", true, false},
		{"short key before the events", func(tx *bolt.Tx) error {
			return tx.Bucket(bJournal).Put([]byte{0}, []byte(`{"seq":1}`))
		}, "journal key 00", false, true},
		{"long key", func(tx *bolt.Tx) error {
			return tx.Bucket(bJournal).Put(append(be64(7), 0), []byte(`{"seq":7}`))
		}, "journal key 000000000000000700", true, true},
		{"event seq is not its key", func(tx *bolt.Tx) error {
			return tx.Bucket(bJournal).Put(be64(3), []byte(`{"seq":9,"event":"call.state"}`))
		}, "event 3 records seq 9", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.db")
			makeCalldDB(t, path, 10)
			rawBolt(t, path, tt.corrupt)
			db, err := Open(path, Options{Retention: Retention{MaxEvents: 2}})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer db.Close()
			check := func(what string, reached bool, err error) {
				t.Helper()
				if !reached {
					if err != nil {
						t.Errorf("%s: %v", what, err)
					}
					return
				}
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("%s: %v, want an ErrCorrupt error naming %q", what, err, tt.want)
				}
			}
			check("Events", tt.events, db.View(func(tx *Tx) error {
				return tx.Events(0, func(calld.Event) error { return nil })
			}))
			_, err = db.Prune()
			check("Prune", tt.prune, err)
			if err := db.View(func(tx *Tx) error { tx.FirstSeq(); return nil }); err != nil {
				t.Errorf("FirstSeq: %v", err)
			}
		})
	}
}

// TestEventsSinceAhead: since beyond the last seq ever assigned is an
// "invalid" error naming the last seq (a client of another state file, or
// a typo, would otherwise wait for events that come under lower seqs);
// since equal to it replays nothing.
func TestEventsSinceAhead(t *testing.T) {
	db := openT(t, filepath.Join(t.TempDir(), "c.db"), Options{})
	populate(t, db, 5)
	var last uint64
	if err := db.View(func(tx *Tx) error { last = tx.LastSeq(); return nil }); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		since uint64
		n     int
		code  string
	}{
		{0, 5, ""},
		{last - 1, 1, ""},
		{last, 0, ""},
		{last + 1, 0, calld.EINVALID},
		{math.MaxUint64, 0, calld.EINVALID},
	}
	for _, tt := range tests {
		n := 0
		err := db.View(func(tx *Tx) error {
			return tx.Events(tt.since, func(calld.Event) error { n++; return nil })
		})
		if calld.ErrorCode(err) != tt.code || n != tt.n {
			t.Errorf("since %d: %d events, %v; want %d events, code %q", tt.since, n, err, tt.n, tt.code)
		}
		if err != nil && !strings.Contains(err.Error(), fmt.Sprintf("last event's seq is %d", last)) {
			t.Errorf("since %d: %v does not name the last seq %d", tt.since, err, last)
		}
	}
}

// TestCorruptLiveIndexAndMeta: a malformed live_next or max_at, or a
// live index entry that does not name a call, is reported as ErrCorrupt by
// what reads it, not read as a zero that would reuse a position (and drop
// another live call) or leave an old event out of the time index.
func TestCorruptLiveIndexAndMeta(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(tx *bolt.Tx) error
		use    func(tx *Tx) error
	}{
		{"live_next", func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put(kLiveNext, []byte{1}) },
			func(tx *Tx) error { return tx.PutCall(2, []byte(`{}`), true) }},
		{"max_at", func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put(kMaxAt, []byte{1, 2}) },
			func(tx *Tx) error { return tx.AppendEvent(&calld.Event{CallID: 2}) }},
		{"live entry", func(tx *bolt.Tx) error { return tx.Bucket(bLive).Put(be64(9), []byte{1}) },
			func(tx *Tx) error { return tx.ForEachCall(true, func(int64, []byte) error { return nil }) }},
		{"live bucket entry", func(tx *bolt.Tx) error { _, err := tx.Bucket(bLive).CreateBucket(be64(9)); return err },
			func(tx *Tx) error { return tx.ForEachCall(true, func(int64, []byte) error { return nil }) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "calld.db")
			db := openT(t, path, Options{})
			if err := db.Update(func(tx *Tx) error { return tx.PutCall(1, []byte(`{}`), true) }); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			rawBolt(t, path, tc.damage)
			db = openT(t, path, Options{})
			if err := db.Update(tc.use); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
		})
	}
}
