package store

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/calld/calld"
)

// TestPutEncodedCall: PutEncodedCall keeps a call's record, the live
// index and the count of calls exactly as PutCall does, and refuses an
// empty record.
func TestPutEncodedCall(t *testing.T) {
	for _, tc := range []struct {
		name string
		put  func(tx *Tx, id int64, rec []byte, live bool) error
	}{
		{"PutCall", (*Tx).PutCall},
		{"PutEncodedCall", (*Tx).PutEncodedCall},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openT(t, filepath.Join(t.TempDir(), "calld.db"), Options{})
			steps := []struct {
				rec             string
				live            bool
				wantLive, total int
			}{
				{`{"id":"7","state":"waiting"}`, true, 1, 1},
				{`{"id":"7","state":"ended"}`, false, 0, 1},
				{`{"id":"8","state":"waiting"}`, true, 1, 2},
			}
			for _, s := range steps {
				id := mustRecord(t, []byte(s.rec)).ID
				if err := db.Update(func(tx *Tx) error { return tc.put(tx, id, []byte(s.rec), s.live) }); err != nil {
					t.Fatal(err)
				}
				err := db.View(func(tx *Tx) error {
					got, err := tx.Call(id)
					if err != nil {
						return err
					}
					if !bytes.Equal(got, []byte(s.rec)) {
						return fmt.Errorf("record %s, want %s", got, s.rec)
					}
					live, total, err := tx.CallCounts()
					if err != nil {
						return err
					}
					if live != s.wantLive || total != s.total {
						return fmt.Errorf("counts live %d total %d, want %d %d", live, total, s.wantLive, s.total)
					}
					return nil
				})
				if err != nil {
					t.Fatalf("after %s: %v", s.rec, err)
				}
			}
			if err := db.Update(func(tx *Tx) error { return tc.put(tx, 9, nil, true) }); err == nil {
				t.Fatal("an empty record was stored")
			}
		})
	}
}

// BenchmarkPutCall is the records' part of a checkpoint under a burst:
// 1,000 calls' records put into one transaction (rolled back, so no
// fsync), checked and copied (PutCall) or as encoded (PutEncodedCall).
func BenchmarkPutCall(b *testing.B) {
	db, err := Open(filepath.Join(b.TempDir(), "calld.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const calls = 1000
	recs := make([][]byte, calls)
	for i := range recs {
		recs[i] = mustJSON(b, calld.Call{ID: int64(i + 1), AccessHash: 1 << 40, State: calld.StateHangingUp,
			Direction: calld.DirectionIncoming, PeerID: 4242, Reason: calld.ReasonBusy})
	}
	for _, encoded := range []bool{false, true} {
		b.Run(fmt.Sprintf("encoded=%v", encoded), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				btx, err := db.bolt.Begin(true)
				if err != nil {
					b.Fatal(err)
				}
				tx := &Tx{tx: btx, db: db}
				put := tx.PutCall
				if encoded {
					put = tx.PutEncodedCall
				}
				for i, rec := range recs {
					if err := put(int64(i+1), rec, true); err != nil {
						b.Fatal(err)
					}
				}
				if err := btx.Rollback(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
