package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gotd/td/session"

	"github.com/calld/calld"
)

func TestReopenKeepsEverything(t *testing.T) {
	path := tempDB(t)
	clock := newFakeClock()
	db := openT(t, path, Options{Clock: clock})

	var want []calld.Event
	err := db.Update(func(tx *Tx) error {
		for i, c := range []struct {
			id   int64
			live bool
		}{{101, true}, {-202, false}, {303, true}} {
			e := calld.Event{Event: "call.state", CallID: c.id, From: "waiting", To: "ringing", Reason: "x", Duration: i}
			if err := tx.AppendEvent(&e); err != nil {
				return err
			}
			want = append(want, e)
			if err := tx.PutCall(c.id, mustJSON(t, testRecord{ID: c.id, State: "ringing", Seq: e.Seq}), c.live); err != nil {
				return err
			}
			clock.Travel(time.Second)
		}
		if err := tx.SetUpdatesState(calld.UpdatesState{Pts: 10, Qts: 20, Seq: 30, Date: 40}); err != nil {
			return err
		}
		return tx.SetSession([]byte(`{"Version":1}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openT(t, path, Options{Clock: clock})
	err = db.View(func(tx *Tx) error {
		var got []calld.Event
		if err := tx.Events(0, func(e calld.Event) error { got = append(got, e); return nil }); err != nil {
			return err
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("events after reopen:\n got %+v\nwant %+v", got, want)
		}
		if got := tx.LastSeq(); got != 3 {
			t.Errorf("LastSeq = %d, want 3", got)
		}
		live, total, err := tx.CallCounts()
		if err != nil || live != 2 || total != 3 {
			t.Errorf("CallCounts = %d, %d, %v; want 2, 3", live, total, err)
		}
		rec, err := tx.Call(-202)
		if err != nil {
			return err
		}
		var r testRecord
		if err := json.Unmarshal(rec, &r); err != nil || r.ID != -202 || r.Seq != 2 {
			t.Errorf("Call(-202) = %s, %v", rec, err)
		}
		us, ok, err := tx.UpdatesState()
		if err != nil || !ok || us != (calld.UpdatesState{Pts: 10, Qts: 20, Seq: 30, Date: 40}) {
			t.Errorf("UpdatesState = %+v, %v, %v", us, ok, err)
		}
		s, err := tx.Session()
		if err != nil || string(s) != `{"Version":1}` {
			t.Errorf("Session = %q, %v", s, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Seqs continue after a reopen.
	var seq uint64
	if err := db.Update(func(tx *Tx) error {
		var err error
		seq, err = transition(tx, 101, "ended", false)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if seq != 4 {
		t.Errorf("seq after reopen = %d, want 4", seq)
	}
}

func TestCalls(t *testing.T) {
	db := openT(t, tempDB(t), Options{})
	// Each step is applied in order on the same file. Live calls are
	// listed in the order they became live, all calls in id order.
	steps := []struct {
		name      string
		id        int64
		rec       string
		live      bool
		wantErr   bool
		wantLive  []int64
		wantAll   []int64
		wantCount [2]int
	}{
		{"first live call", 7, `{"s":"ringing"}`, true, false, []int64{7}, []int64{7}, [2]int{1, 1}},
		{"second live call", 3, `{"s":"active"}`, true, false, []int64{7, 3}, []int64{3, 7}, [2]int{2, 2}},
		{"first call ends", 7, `{"s":"ended"}`, false, false, []int64{3}, []int64{3, 7}, [2]int{1, 2}},
		{"ended call stored ended", 9, `{"s":"ended"}`, false, false, []int64{3}, []int64{3, 7, 9}, [2]int{1, 3}},
		{"not JSON is refused", 11, `{"s":`, true, true, []int64{3}, []int64{3, 7, 9}, [2]int{1, 3}},
		{"empty record is refused", 12, ``, true, true, []int64{3}, []int64{3, 7, 9}, [2]int{1, 3}},
		{"ended call revived", 9, `{"s":"active"}`, true, false, []int64{3, 9}, []int64{3, 7, 9}, [2]int{2, 3}},
		{"live call stored again keeps its place", 3, `{"s":"hanging_up"}`, true, false, []int64{3, 9}, []int64{3, 7, 9}, [2]int{2, 3}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			err := db.Update(func(tx *Tx) error { return tx.PutCall(s.id, []byte(s.rec), s.live) })
			if (err != nil) != s.wantErr {
				t.Fatalf("PutCall err = %v, wantErr %v", err, s.wantErr)
			}
			err = db.View(func(tx *Tx) error {
				for _, c := range []struct {
					liveOnly bool
					want     []int64
				}{{true, s.wantLive}, {false, s.wantAll}} {
					var ids []int64
					if err := tx.ForEachCall(c.liveOnly, func(id int64, rec []byte) error {
						ids = append(ids, id)
						if !json.Valid(rec) {
							t.Errorf("call %d: record %q", id, rec)
						}
						return nil
					}); err != nil {
						return err
					}
					if !reflect.DeepEqual(ids, c.want) {
						t.Errorf("ForEachCall(liveOnly=%v) = %v, want %v", c.liveOnly, ids, c.want)
					}
				}
				live, total, err := tx.CallCounts()
				if err != nil || [2]int{live, total} != s.wantCount {
					t.Errorf("CallCounts = %d, %d, %v; want %v", live, total, err, s.wantCount)
				}
				if !s.wantErr {
					rec, err := tx.Call(s.id)
					if err != nil || string(rec) != s.rec {
						t.Errorf("Call(%d) = %q, %v; want %q", s.id, rec, err, s.rec)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}

	err := db.View(func(tx *Tx) error {
		_, err := tx.Call(424242)
		if !errors.Is(err, ErrNotFound) || calld.ErrorCode(err) != calld.ENOTFOUND {
			t.Errorf("Call(unknown) err = %v (code %q), want ErrNotFound", err, calld.ErrorCode(err))
		}
		// An error of fn stops the walk and comes back.
		stop := errors.New("stop")
		n := 0
		if err := tx.ForEachCall(false, func(int64, []byte) error { n++; return stop }); err != stop || n != 1 {
			t.Errorf("ForEachCall stop: err %v after %d calls", err, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRecordsAreCopies(t *testing.T) {
	db := openT(t, tempDB(t), Options{})
	buf := []byte(`{"a":1}`)
	if err := db.Update(func(tx *Tx) error {
		err := tx.PutCall(1, buf, true)
		copy(buf, `{"b":2}`) // the caller reuses its buffer before the commit
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var got []byte
	if err := db.View(func(tx *Tx) error {
		var err error
		got, err = tx.Call(1)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if string(got) != `{"a":1}` {
		t.Errorf("record = %s, want the value at PutCall time", got)
	}
}

func TestEvents(t *testing.T) {
	clock := newFakeClock()
	db := openT(t, tempDB(t), Options{Clock: clock})
	given := time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC)
	calls := []int64{5, 6, 5, -1, 5}
	if err := db.Update(func(tx *Tx) error {
		for i, id := range calls {
			e := calld.Event{Event: "call.state", CallID: id}
			if i == 1 {
				e.At = given
			}
			if err := tx.AppendEvent(&e); err != nil {
				return err
			}
			if e.Seq != uint64(i+1) {
				t.Errorf("event %d got seq %d", i, e.Seq)
			}
			clock.Travel(time.Minute)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		run  func(tx *Tx, fn func(calld.Event) error) error
		want []uint64
	}{
		{"all", func(tx *Tx, fn func(calld.Event) error) error { return tx.Events(0, fn) }, []uint64{1, 2, 3, 4, 5}},
		{"since 2", func(tx *Tx, fn func(calld.Event) error) error { return tx.Events(2, fn) }, []uint64{3, 4, 5}},
		{"since last", func(tx *Tx, fn func(calld.Event) error) error { return tx.Events(5, fn) }, nil},
		{"call 5", func(tx *Tx, fn func(calld.Event) error) error { return tx.CallEvents(5, fn) }, []uint64{1, 3, 5}},
		{"call 6", func(tx *Tx, fn func(calld.Event) error) error { return tx.CallEvents(6, fn) }, []uint64{2}},
		{"call -1", func(tx *Tx, fn func(calld.Event) error) error { return tx.CallEvents(-1, fn) }, []uint64{4}},
		{"unknown call", func(tx *Tx, fn func(calld.Event) error) error { return tx.CallEvents(99, fn) }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []uint64
			err := db.View(func(tx *Tx) error {
				return tc.run(tx, func(e calld.Event) error {
					got = append(got, e.Seq)
					if e.CallID != calls[e.Seq-1] {
						t.Errorf("event %d: call %d, want %d", e.Seq, e.CallID, calls[e.Seq-1])
					}
					return nil
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}

	// At: the injected clock unless given.
	err := db.View(func(tx *Tx) error {
		return tx.Events(0, func(e calld.Event) error {
			want := newFakeClock().Now().Add(time.Duration(e.Seq-1) * time.Minute)
			if e.Seq == 2 {
				want = given
			}
			if !e.At.Equal(want) {
				t.Errorf("event %d At = %v, want %v", e.Seq, e.At, want)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}

	// A failed transaction does not use up seqs.
	boom := errors.New("boom")
	if err := db.Update(func(tx *Tx) error {
		if err := tx.AppendEvent(&calld.Event{CallID: 5}); err != nil {
			return err
		}
		return boom
	}); err != boom {
		t.Fatalf("Update err = %v, want boom", err)
	}
	var e calld.Event
	if err := db.Update(func(tx *Tx) error { return tx.AppendEvent(&e) }); err != nil {
		t.Fatal(err)
	}
	if e.Seq != 6 {
		t.Errorf("seq after a rolled back append = %d, want 6", e.Seq)
	}
}

func TestUpdatesStateAndSession(t *testing.T) {
	db := openT(t, tempDB(t), Options{})
	err := db.View(func(tx *Tx) error {
		if s, ok, err := tx.UpdatesState(); ok || err != nil || s != (calld.UpdatesState{}) {
			t.Errorf("UpdatesState on a new file = %+v, %v, %v", s, ok, err)
		}
		if _, err := tx.Session(); !errors.Is(err, ErrNotFound) {
			t.Errorf("Session on a new file: err %v, want ErrNotFound", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []calld.UpdatesState{{Pts: 1, Qts: 2, Seq: 3, Date: 4}, {Pts: 100, Qts: 0, Seq: 7, Date: 1700000000}} {
		if err := db.Update(func(tx *Tx) error { return tx.SetUpdatesState(s) }); err != nil {
			t.Fatal(err)
		}
		if err := db.View(func(tx *Tx) error {
			got, ok, err := tx.UpdatesState()
			if got != s || !ok || err != nil {
				t.Errorf("UpdatesState = %+v, %v, %v; want %+v", got, ok, err, s)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSessionStorage(t *testing.T) {
	path := tempDB(t)
	ctx := context.Background()
	db := openT(t, path, Options{})
	loader := session.Loader{Storage: db.SessionStorage()}

	if _, err := db.SessionStorage().LoadSession(ctx); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("LoadSession on a new file: %v, want session.ErrNotFound", err)
	}
	if _, err := loader.Load(ctx); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Loader.Load on a new file: %v, want session.ErrNotFound", err)
	}
	want := &session.Data{
		DC:        2,
		Addr:      "127.0.0.1:4430",
		AuthKey:   bytes.Repeat([]byte{0xab}, 256),
		AuthKeyID: []byte{1, 2, 3, 4, 5, 6, 7, 8},
		Salt:      -42,
	}
	if err := loader.Save(ctx, want); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openT(t, path, Options{})
	got, err := (&session.Loader{Storage: db.SessionStorage()}).Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("session after reopen = %+v, want %+v", got, want)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := db.SessionStorage().StoreSession(cancelled, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("StoreSession with a cancelled context: %v", err)
	}
	if _, err := db.SessionStorage().LoadSession(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("LoadSession with a cancelled context: %v", err)
	}
}

func TestBackup(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, filepath.Join(dir, "calld.db"), Options{})
	populate(t, db, 500)

	// A writer keeps committing while the backup runs.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := int64(0); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := db.Update(func(tx *Tx) error { _, err := transition(tx, 1000+i%5, "active", true); return err }); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var buf bytes.Buffer
	n, err := db.Backup(&buf)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) || n == 0 {
		t.Fatalf("Backup returned %d, wrote %d bytes", n, buf.Len())
	}
	bpath := filepath.Join(dir, "backup.db")
	if err := os.WriteFile(bpath, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	bdb := openT(t, bpath, Options{})

	// The copy is a consistent snapshot: its journal is gap-free and the
	// same as the original's up to its LastSeq, every call record points
	// at the call's last event in the copy, and the calls the writer did
	// not touch are as in the original.
	events := func(db *DB) []calld.Event {
		var out []calld.Event
		if err := db.View(func(tx *Tx) error {
			return tx.Events(0, func(e calld.Event) error { out = append(out, e); return nil })
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	var last uint64
	var us calld.UpdatesState
	if err := bdb.View(func(tx *Tx) error {
		last = tx.LastSeq()
		var err error
		us, _, err = tx.UpdatesState()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if last < 500 || us.Pts != int(last) {
		t.Fatalf("backup LastSeq %d, updates pts %d; want >= 500 and equal", last, us.Pts)
	}
	got, orig := events(bdb), events(db)
	if len(got) != int(last) || !reflect.DeepEqual(got, orig[:last]) {
		t.Errorf("backup journal: %d events up to %d, not the original's prefix", len(got), last)
	}
	err = bdb.View(func(tx *Tx) error {
		return tx.ForEachCall(false, func(id int64, rec []byte) error {
			var r testRecord
			if err := json.Unmarshal(rec, &r); err != nil {
				return err
			}
			var lastOfCall uint64
			if err := tx.CallEvents(id, func(e calld.Event) error { lastOfCall = e.Seq; return nil }); err != nil {
				return err
			}
			if r.Seq != lastOfCall {
				t.Errorf("backup call %d record points at %d, its last event is %d", id, r.Seq, lastOfCall)
			}
			if id <= 50 {
				var o []byte
				if err := db.View(func(otx *Tx) error { var err error; o, err = otx.Call(id); return err }); err != nil {
					return err
				}
				if !bytes.Equal(o, rec) {
					t.Errorf("backup call %d = %s, original %s", id, rec, o)
				}
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := bdb.View(func(tx *Tx) error {
		s, err := tx.Session()
		if err != nil || len(s) != 300 {
			t.Errorf("backup session: %d bytes, %v", len(s), err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestClosed(t *testing.T) {
	db, err := Open(tempDB(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	noop := func(*Tx) error { return nil }
	for name, err := range map[string]error{
		"Update": db.Update(noop),
		"View":   db.View(noop),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	if _, err := db.Backup(&bytes.Buffer{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Backup after Close: %v, want ErrClosed", err)
	}
}

func TestRequests(t *testing.T) {
	db := openT(t, filepath.Join(t.TempDir(), "calld.db"), Options{})
	// A file without the bucket reads as empty.
	err := db.View(func(tx *Tx) error {
		return tx.ForEachRequest(func(int32, []byte) error { return errors.New("unexpected request") })
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *Tx) error {
		for _, id := range []int32{7, 1 << 30, 3} {
			if err := tx.PutRequest(id, []byte(`{"random_id":`+strconv.Itoa(int(id))+`}`)); err != nil {
				return err
			}
		}
		if err := tx.PutRequest(9, []byte("not json")); err == nil {
			return errors.New("invalid JSON stored")
		}
		return tx.DeleteRequest(7)
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []int32
	err = db.View(func(tx *Tx) error {
		return tx.ForEachRequest(func(id int32, rec []byte) error {
			if string(rec) != `{"random_id":`+strconv.Itoa(int(id))+`}` {
				return fmt.Errorf("request %d: %s", id, rec)
			}
			got = append(got, id)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != 3 || got[1] != 1<<30 {
		t.Fatalf("requests: %v", got)
	}
}

// TestCallSecrets: a live call's secrets survive a reopen, are apart from
// the record, and go with the PutCall that records the call's end.
func TestCallSecrets(t *testing.T) {
	path := tempDB(t)
	db := openT(t, path, Options{})
	get := func(db *DB, id int64) ([]byte, error) {
		var b []byte
		err := db.View(func(tx *Tx) error {
			var err error
			b, err = tx.CallSecrets(id)
			return err
		})
		return b, err
	}
	if _, err := get(db, 7); !errors.Is(err, ErrNotFound) {
		t.Fatalf("secrets before any: %v", err)
	}
	err := db.Update(func(tx *Tx) error {
		if err := tx.PutCall(7, []byte(`{"s":"active"}`), true); err != nil {
			return err
		}
		return tx.PutCallSecrets(7, []byte("key"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openT(t, path, Options{})
	if b, err := get(db, 7); err != nil || string(b) != "key" {
		t.Fatalf("secrets after reopen: %q, %v", b, err)
	}
	if err := db.Update(func(tx *Tx) error { return tx.PutCall(7, []byte(`{"s":"active"}`), true) }); err != nil {
		t.Fatal(err)
	}
	if _, err := get(db, 7); err != nil {
		t.Fatalf("a live step erased the secrets: %v", err)
	}
	if err := db.Update(func(tx *Tx) error { return tx.PutCall(7, []byte(`{"s":"ended"}`), false) }); err != nil {
		t.Fatal(err)
	}
	if _, err := get(db, 7); !errors.Is(err, ErrNotFound) {
		t.Fatalf("secrets after the call ended: %v", err)
	}
}

// TestAppendEvents: a batch gets consecutive seqs in its order (after an
// earlier event), each event is listed under its call in seq order
// (the index is written in key order, not the batch's), only the events
// stamped before an earlier one are indexed by time (within the batch
// too), and an empty batch changes nothing.
func TestAppendEvents(t *testing.T) {
	clk := newFakeClock()
	t0 := clk.Now()
	db := openT(t, tempDB(t), Options{Clock: clk})
	first := calld.Event{CallID: 5, At: t0.Add(time.Minute)}
	batch := []calld.Event{
		{CallID: 9, At: t0.Add(2 * time.Minute)},
		{CallID: 5, At: t0},                       // before the first event: late
		{CallID: 9},                               // At from the clock (t0): late
		{CallID: -3, At: t0.Add(3 * time.Minute)}, // negative ids sort last
		{CallID: 5, At: t0.Add(2 * time.Minute)},  // before the batch's latest: late
	}
	err := db.Update(func(tx *Tx) error {
		if err := tx.AppendEvent(&first); err != nil {
			return err
		}
		if err := tx.AppendEvents(nil); err != nil {
			return err
		}
		return tx.AppendEvents(batch)
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range batch {
		if e.Seq != uint64(i+2) {
			t.Errorf("batch event %d has seq %d, want %d", i, e.Seq, i+2)
		}
	}
	if !batch[2].At.Equal(t0) {
		t.Errorf("an event without At got %v, want the clock's %v", batch[2].At, t0)
	}
	err = db.View(func(tx *Tx) error {
		if got := tx.LastSeq(); got != 6 {
			t.Errorf("LastSeq %d, want 6", got)
		}
		for id, want := range map[int64][]uint64{5: {1, 3, 6}, 9: {2, 4}, -3: {5}} {
			var got []uint64
			if err := tx.CallEvents(id, func(e calld.Event) error { got = append(got, e.Seq); return nil }); err != nil {
				return err
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("events of call %d: %v, want %v", id, got, want)
			}
		}
		var late []uint64
		c := tx.tx.Bucket(bJournalAt).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			late = append(late, binary.BigEndian.Uint64(k[8:]))
		}
		slices.Sort(late)
		if want := []uint64{3, 4, 6}; !reflect.DeepEqual(late, want) {
			t.Errorf("time index holds %v, want the late %v", late, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestAppendEventsNumbered: events numbered ahead (Log's writers) are
// appended when they carry the journal's next numbers; one that does not
// fails the batch, which appends nothing.
func TestAppendEventsNumbered(t *testing.T) {
	db := openT(t, tempDB(t), Options{})
	defer db.Close()
	for _, tc := range []struct {
		seqs    []uint64
		wantErr bool
		last    uint64
	}{
		{seqs: []uint64{1, 2}, last: 2},
		{seqs: []uint64{0, 4}, last: 4}, // unnumbered first: it takes 3
		{seqs: []uint64{5, 7}, wantErr: true, last: 4},
		{seqs: []uint64{4}, wantErr: true, last: 4}, // a number used already
		{seqs: []uint64{5}, last: 5},
	} {
		evs := make([]calld.Event, len(tc.seqs))
		for i, s := range tc.seqs {
			evs[i] = calld.Event{CallID: 1, Seq: s, At: time.Unix(1, 0)}
		}
		err := db.Update(func(tx *Tx) error { return tx.AppendEvents(evs) })
		if (err != nil) != tc.wantErr {
			t.Fatalf("append %v: %v, want error %v", tc.seqs, err, tc.wantErr)
		}
		if got := seqs(t, db, 0); uint64(len(got)) != tc.last || (len(got) > 0 && got[len(got)-1] != tc.last) {
			t.Fatalf("after %v: journal %v, want 1..%d", tc.seqs, got, tc.last)
		}
	}
}

// TestAppendEncodedEventsAgain: a commit's events put in again (its
// apply run a second time) are skipped; the ones after them appended.
func TestAppendEncodedEventsAgain(t *testing.T) {
	db := openT(t, tempDB(t), Options{})
	defer db.Close()
	encoded := func(seqs ...uint64) ([]calld.Event, [][]byte) {
		evs := make([]calld.Event, len(seqs))
		data := make([][]byte, len(seqs))
		for i, s := range seqs {
			evs[i] = calld.Event{CallID: 1, Seq: s, At: time.Unix(int64(s), 0).UTC(), Event: "call.state"}
			data[i] = evs[i].AppendJSON(nil)
		}
		return evs, data
	}
	for _, tc := range []struct {
		seqs    []uint64
		wantErr bool
		last    uint64
	}{
		{seqs: []uint64{1, 2}, last: 2},
		{seqs: []uint64{1, 2}, last: 2}, // the same commit again
		{seqs: []uint64{2, 3}, last: 3}, // partly in
		{seqs: []uint64{5}, wantErr: true, last: 3},
	} {
		evs, data := encoded(tc.seqs...)
		err := db.Update(func(tx *Tx) error { return tx.AppendEncodedEvents(evs, data) })
		if (err != nil) != tc.wantErr {
			t.Fatalf("append %v: %v, want error %v", tc.seqs, err, tc.wantErr)
		}
		if got := seqs(t, db, 0); uint64(len(got)) != tc.last || got[len(got)-1] != tc.last {
			t.Fatalf("after %v: journal %v, want 1..%d", tc.seqs, got, tc.last)
		}
	}
}
