package store

import (
	"encoding/binary"
	"fmt"
	"io"
)

// pruneChunk bounds the events one Prune transaction removes, so that a
// large backlog does not hold the writer for long. A variable for tests.
var pruneChunk = 10000

// Prune applies Options.Retention to the journal: it removes the events
// older than Options.Clock.Now()-MaxAge (by their At, through the time index, so an
// event appended with an older time than its predecessors goes too), then
// the oldest events beyond MaxEvents. Sequence numbers are not reused:
// LastSeq is unchanged and the next event continues after it. Call
// records are kept. It returns the number of events removed and works in
// transactions of at most 10000 removals.
func (db *DB) Prune() (removed int, err error) {
	r := db.opts.Retention
	if r.MaxAge <= 0 && r.MaxEvents <= 0 {
		return 0, nil
	}
	var cutoff uint64
	if r.MaxAge > 0 {
		cutoff = atKey(db.opts.Clock.Now().Add(-r.MaxAge))
	}
	for {
		n := 0
		err := db.Update(func(tx *Tx) error {
			var err error
			n, err = tx.prune(cutoff, r.MaxEvents, pruneChunk)
			return err
		})
		if err != nil {
			return removed, fmt.Errorf("store: prune: %w", err)
		}
		removed += n
		if n < pruneChunk {
			return removed, nil
		}
	}
}

// prune removes up to limit events: those indexed before cutoff (unix
// nanoseconds; 0: none), then the oldest beyond maxEvents (0: no limit).
func (t *Tx) prune(cutoff uint64, maxEvents, limit int) (int, error) {
	journal, err := t.bucket(bJournal)
	if err != nil {
		return 0, err
	}
	byCall, err := t.bucket(bCalls)
	if err != nil {
		return 0, err
	}
	byAt, err := t.bucket(bJournalAt)
	if err != nil {
		return 0, err
	}

	type victim struct{ seq, atKey []byte }
	var victims []victim
	chosen := map[uint64]bool{}
	if cutoff > 0 {
		c := byAt.Cursor()
		for k, _ := c.First(); k != nil && len(victims) < limit; k, _ = c.Next() {
			if len(k) != 16 {
				return 0, fmt.Errorf("time index key %x: %w", k, ErrCorrupt)
			}
			if binary.BigEndian.Uint64(k[:8]) >= cutoff {
				break
			}
			victims = append(victims, victim{seq: clone(k[8:]), atKey: clone(k)})
			chosen[binary.BigEndian.Uint64(k[8:])] = true
		}
	}
	if maxEvents > 0 && len(victims) < limit {
		excess := journal.Stats().KeyN - len(victims) - maxEvents
		c := journal.Cursor()
		for k, _ := c.First(); k != nil && excess > 0 && len(victims) < limit; k, _ = c.Next() {
			seq, err := journalSeq(k)
			if err != nil {
				return 0, err
			}
			if chosen[seq] {
				continue
			}
			victims = append(victims, victim{seq: clone(k)})
			excess--
		}
	}

	for _, v := range victims {
		if v.atKey != nil {
			if err := byAt.Delete(v.atKey); err != nil {
				return 0, err
			}
		}
		data := journal.Get(v.seq)
		if data == nil {
			continue // a dangling time index entry, now gone
		}
		e, err := decodeEvent(v.seq, data)
		if err != nil {
			return 0, err
		}
		if err := byCall.Delete(cat(be64(uint64(e.CallID)), v.seq)); err != nil {
			return 0, err
		}
		if err := byAt.Delete(cat(be64(atKey(e.At)), v.seq)); err != nil {
			return 0, err
		}
		if err := journal.Delete(v.seq); err != nil {
			return 0, err
		}
	}
	return len(victims), nil
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// Backup writes a consistent copy of the whole file to w while the
// daemon keeps running (bbolt's Tx.WriteTo inside a read transaction) and
// returns the number of bytes written. The copy opens with Open.
func (db *DB) Backup(w io.Writer) (n int64, err error) {
	err = db.View(func(tx *Tx) error {
		var err error
		n, err = tx.tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("store: backup %s: %w", db.path, err)
	}
	return n, nil
}
