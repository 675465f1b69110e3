package store

import (
	"encoding/binary"
	"errors"
	"os"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/calld/calld"
)

// toSchema1 rewrites a schema 2 file in schema 1's layout: calls_live keyed
// by call id, every event in journal_at, no live positions, live_next or
// max_at.
func toSchema1(t *testing.T, path string) {
	t.Helper()
	rawBolt(t, path, func(tx *bolt.Tx) error {
		var live [][]byte
		c := tx.Bucket(bLive).Cursor()
		for _, id := c.First(); id != nil; _, id = c.Next() {
			live = append(live, append([]byte(nil), id...))
		}
		if err := tx.DeleteBucket(bLive); err != nil {
			return err
		}
		idx, err := tx.CreateBucket(bLive)
		if err != nil {
			return err
		}
		calls := tx.Bucket(bCalls)
		for _, id := range live {
			if err := idx.Put(id, []byte{}); err != nil {
				return err
			}
			if err := calls.Delete(append(id, 'L')); err != nil {
				return err
			}
		}
		if err := tx.DeleteBucket(bJournalAt); err != nil {
			return err
		}
		byAt, err := tx.CreateBucket(bJournalAt)
		if err != nil {
			return err
		}
		jc := tx.Bucket(bJournal).Cursor()
		for k, v := jc.First(); k != nil; k, v = jc.Next() {
			e, err := decodeEvent(k, v)
			if err != nil {
				return err
			}
			if err := byAt.Put(cat(be64(atKey(e.At)), k), []byte{}); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bMeta)
		for _, k := range [][]byte{kLiveNext, kMaxAt} {
			if err := meta.Delete(k); err != nil {
				return err
			}
		}
		return meta.Put(kSchema, be32(1))
	})
}

// TestOpenMigratesSchema1: a schema 1 file opens as schema 2 with the same
// calls, live calls (in id order, the only order schema 1 kept), journal
// and counts; its time index keeps only the late events; after that live
// calls come and go in their order and retention by age finds both kinds
// of old events. A schema 1 file that cannot be migrated (a live call
// without a record) is refused as corrupt and left as it was.
func TestOpenMigratesSchema1(t *testing.T) {
	path := tempDB(t)
	clk := newFakeClock()
	start := clk.Now()
	db := openT(t, path, Options{Clock: clk, Retention: Retention{MaxAge: 5 * time.Minute}})
	// Calls 9, 4 and 6 become live in that order (events 1..3, a minute
	// apart), 4 ends (event 4); event 5 is stamped at start: late.
	for _, step := range []struct {
		id   int64
		live bool
	}{{9, true}, {4, true}, {6, true}, {4, false}} {
		if err := db.Update(func(tx *Tx) error {
			_, err := transition(tx, step.id, "x", step.live)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		clk.Travel(time.Minute)
	}
	if err := db.Update(func(tx *Tx) error { return tx.AppendEvent(&calld.Event{CallID: 6, At: start}) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	toSchema1(t, path)

	// One that cannot be migrated: refused, unchanged.
	bad := tempDB(t)
	data := snap(t, path).data
	if err := os.WriteFile(bad, data, 0o600); err != nil {
		t.Fatal(err)
	}
	rawBolt(t, bad, func(tx *bolt.Tx) error { return tx.Bucket(bLive).Put(be64(77), []byte{}) })
	before := snap(t, bad)
	if db, err := Open(bad, Options{}); !errors.Is(err, ErrCorrupt) {
		if err == nil {
			db.Close()
		}
		t.Fatalf("Open of a schema 1 file with a live call without record: %v, want ErrCorrupt", err)
	}
	if !before.same(snap(t, bad)) {
		t.Fatal("a failed migration modified the file")
	}

	db = openT(t, path, Options{Clock: clk, Retention: Retention{MaxAge: 5 * time.Minute}})
	live := func() []int64 {
		var ids []int64
		if err := db.View(func(tx *Tx) error {
			return tx.ForEachCall(true, func(id int64, _ []byte) error { ids = append(ids, id); return nil })
		}); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	err := db.View(func(tx *Tx) error {
		if v := schemaOf(tx.tx); v != SchemaVersion {
			t.Errorf("schema %d after Open, want %d", v, SchemaVersion)
		}
		if n, total, err := tx.CallCounts(); err != nil || n != 2 || total != 3 {
			t.Errorf("CallCounts = %d, %d, %v; want 2, 3", n, total, err)
		}
		var at [][]byte
		c := tx.tx.Bucket(bJournalAt).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			at = append(at, k)
		}
		if len(at) != 1 || binary.BigEndian.Uint64(at[0][8:]) != 5 {
			t.Errorf("time index after the migration: %x, want event 5 alone", at)
		}
		if got, err := meta64(tx.tx.Bucket(bMeta), kMaxAt); err != nil || got != atKey(start.Add(3*time.Minute)) {
			t.Errorf("max_at %d, %v; want %d (event 4's)", got, err, atKey(start.Add(3*time.Minute)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := live(), []int64{6, 9}; !reflect.DeepEqual(got, want) {
		t.Fatalf("live calls after the migration %v, want %v (id order)", got, want)
	}
	if got, want := seqs(t, db, 0), []uint64{1, 2, 3, 4, 5}; !reflect.DeepEqual(got, want) {
		t.Fatalf("journal after the migration %v, want %v", got, want)
	}
	// Calls come and go in the migrated index.
	for _, step := range []struct {
		id   int64
		live bool
	}{{6, false}, {4, true}, {2, true}} {
		if err := db.Update(func(tx *Tx) error { _, err := transition(tx, step.id, "x", step.live); return err }); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := live(), []int64{9, 4, 2}; !reflect.DeepEqual(got, want) {
		t.Fatalf("live calls %v, want %v", got, want)
	}
	// Now is start+4m: events 1..5 at 0, 1, 2, 3 min and 0; 6..8 at 4.
	// 2 minutes of retention removes those before start+2m.
	db.opts.Retention.MaxAge = 2 * time.Minute
	if n, err := db.Prune(); err != nil || n != 3 {
		t.Fatalf("Prune = %d, %v; want 3 (events 1, 2 and the late 5)", n, err)
	}
	if got, want := seqs(t, db, 0), []uint64{3, 4, 6, 7, 8}; !reflect.DeepEqual(got, want) {
		t.Fatalf("journal after Prune %v, want %v", got, want)
	}
}
