package manager

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/store"
)

// sampleCommit is a commit with every part: records (a negative id too),
// secrets, a request put and one deleted, events, the updates state.
func sampleCommit() *commit {
	at := time.Date(2026, 11, 30, 12, 0, 0, 123456789, time.UTC)
	return &commit{
		records: []callRecord{
			{id: 5, live: true, raw: []byte(`{"id":"5","state":"ringing"}`)},
			{id: -7, live: false, raw: []byte(`{"id":"-7","state":"ended"}`)},
		},
		secs:     map[int64][]byte{5: []byte("secret")},
		reqs:     map[int32][]byte{-3: []byte(`{"random_id":-3}`), 9: nil},
		setState: true,
		st:       calld.UpdatesState{Pts: 12, Qts: 0, Seq: -1, Date: 1796066999},
		events: []calld.Event{
			{Seq: 41, At: at, Event: "call.state", CallID: 5, From: "requested", To: "ringing"},
			{Seq: 42, At: at, Event: "call.state", CallID: -7, From: "hanging_up", To: "ended", Reason: "busy", Duration: 3},
		},
	}
}

// TestCommitRoundTrip: what appendBinary writes decodes to the same
// commit, with or without each part.
func TestCommitRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    *commit
	}{
		{"all parts", sampleCommit()},
		{"empty", &commit{}},
		{"state only", &commit{setState: true, st: calld.UpdatesState{Pts: 1, Qts: 2, Seq: 3, Date: 4}}},
		{"events only", &commit{events: sampleCommit().events}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeCommit(tc.c.appendBinary(nil))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.c) {
				t.Fatalf("decoded %+v\nwant    %+v", got, tc.c)
			}
		})
	}
}

// TestCommitMalformed: a cut or changed binary form is an error, never a
// panic or a different commit taken for the right one.
func TestCommitMalformed(t *testing.T) {
	b := sampleCommit().appendBinary(nil)
	for n := range len(b) {
		if _, err := decodeCommit(b[:n]); !errors.Is(err, errCommit) {
			t.Fatalf("cut to %d of %d bytes: %v, want errCommit", n, len(b), err)
		}
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"version", append([]byte{2}, b[1:]...)},
		{"flags", append([]byte{1, 2}, b[2:]...)},
		{"trailing", append(append([]byte(nil), b...), 0)},
	} {
		if _, err := decodeCommit(tc.b); !errors.Is(err, errCommit) {
			t.Errorf("%s: %v, want errCommit", tc.name, err)
		}
	}
}

// TestReplayWritesTheCommit: Replay puts into the store what write does.
func TestReplayWritesTheCommit(t *testing.T) {
	dir := t.TempDir()
	read := func(db *store.DB) (recs map[int64]string, evs []calld.Event, st calld.UpdatesState) {
		recs = map[int64]string{}
		err := db.View(func(tx *store.Tx) error {
			if err := tx.ForEachCall(false, func(id int64, b []byte) error { recs[id] = string(b); return nil }); err != nil {
				return err
			}
			if err := tx.Events(0, func(e calld.Event) error { evs = append(evs, e); return nil }); err != nil {
				return err
			}
			var err error
			st, _, err = tx.UpdatesState()
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return recs, evs, st
	}
	var want, got [3]any
	for i, put := range []func(tx *store.Tx, c *commit) error{
		func(tx *store.Tx, c *commit) error { return c.write(tx) },
		func(tx *store.Tx, c *commit) error { return Replay(tx, c.appendBinary(nil)) },
	} {
		db, err := store.Open(filepath.Join(dir, []string{"a.db", "b.db"}[i]), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		c := sampleCommit()
		// Written as the loop's commits are (their records trusted),
		// replayed as read back from the log (checked).
		c.encoded = i == 0
		for j := range c.events { // the journal's first numbers
			c.events[j].Seq = uint64(j + 1)
		}
		if err := db.Update(func(tx *store.Tx) error { return put(tx, c) }); err != nil {
			t.Fatal(err)
		}
		recs, evs, st := read(db)
		out := &got
		if i == 0 {
			out = &want
		}
		*out = [3]any{recs, evs, st}
		db.Close()
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("replayed: %+v\nwritten:  %+v", got, want)
	}
	if recs := want[0].(map[int64]string); len(recs) != 2 {
		t.Fatalf("the commit wrote %d records", len(recs))
	}
}

// TestReplayChecksRecords: a commit read back from the log is checked as
// it is put into the store, the loop's own is not (its records are
// calld.Call's encoding, stored as they are): the same record that is
// not JSON fails the replay and is stored by the loop's write.
func TestReplayChecksRecords(t *testing.T) {
	db := tempDB(t)
	raw := []byte(`{"id":"5",`)
	c := &commit{records: []callRecord{{id: 5, live: true, raw: raw}}}
	err := db.Update(func(tx *store.Tx) error { return Replay(tx, c.appendBinary(nil)) })
	if err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Fatalf("replayed a record that is not JSON: %v, want the store's refusal", err)
	}
	c.encoded = true
	if err := db.Update(c.write); err != nil {
		t.Fatalf("the loop's commit: %v", err)
	}
	err = db.View(func(tx *store.Tx) error {
		got, err := tx.Call(5)
		if err == nil && string(got) != string(raw) {
			err = fmt.Errorf("stored %q, want %q", got, raw)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// FuzzDecodeCommit: any bytes decode without a panic, and what decodes
// encodes to bytes that decode to the same commit.
func FuzzDecodeCommit(f *testing.F) {
	f.Add(sampleCommit().appendBinary(nil))
	f.Add((&commit{}).appendBinary(nil))
	f.Add([]byte{1, 1, 2, 4, 6, 8, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeCommit(b)
		if err != nil {
			return
		}
		// Compared as commits: the events' JSON is not canonical
		// (spacing, field order), what it decodes to is.
		again, err := decodeCommit(c.appendBinary(nil))
		if err != nil {
			t.Fatalf("re-encoded commit does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, c) {
			t.Fatalf("re-encoded commit decodes to %+v, want %+v", again, c)
		}
	})
}
