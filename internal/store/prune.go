package store

import (
	"encoding/binary"
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"
)

// pruneChunk bounds the events one Prune transaction removes, so that a
// large backlog does not hold the writer for long. A variable for tests.
var pruneChunk = 10000

// Prune applies Options.Retention to the journal: it removes the events
// older than Options.Clock.Now()-MaxAge (by their At: the journal's oldest
// up to the first recent one, and through the time index those appended
// with an older time than an earlier event), then
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
	p := pruning{chosen: map[uint64]bool{}, limit: limit}
	var err error
	if p.journal, err = t.bucket(bJournal); err != nil {
		return 0, err
	}
	if p.byCall, err = t.bucket(bCalls); err != nil {
		return 0, err
	}
	if p.byAt, err = t.bucket(bJournalAt); err != nil {
		return 0, err
	}
	if cutoff > 0 {
		if err := p.older(cutoff); err != nil {
			return 0, err
		}
	}
	if maxEvents > 0 {
		if err := p.beyond(maxEvents); err != nil {
			return 0, err
		}
	}
	return len(p.victims), p.remove()
}

// pruning is one prune transaction's choice of events to remove.
type pruning struct {
	journal, byCall, byAt *bolt.Bucket
	victims               []victim
	chosen                map[uint64]bool // the victims' seqs
	limit                 int             // most victims
}

// victim is an event to remove: its journal key and, when the time index
// named it, that index's key.
type victim struct{ seq, atKey []byte }

func (p *pruning) full() bool { return len(p.victims) >= p.limit }

// older chooses the events stamped before cutoff (unix nanoseconds).
func (p *pruning) older(cutoff uint64) error {
	// The events stamped before an earlier one, by the time index.
	c := p.byAt.Cursor()
	for k, _ := c.First(); k != nil && !p.full(); k, _ = c.Next() {
		if len(k) != 16 {
			return fmt.Errorf("time index key %x: %w", k, ErrCorrupt)
		}
		if binary.BigEndian.Uint64(k[:8]) >= cutoff {
			break
		}
		p.victims = append(p.victims, victim{seq: clone(k[8:]), atKey: clone(k)})
		p.chosen[binary.BigEndian.Uint64(k[8:])] = true
	}
	// The others are in time order in the journal: its oldest, up to the
	// first of them at or after cutoff.
	jc := p.journal.Cursor()
	for k, v := jc.First(); k != nil && !p.full(); k, v = jc.Next() {
		e, err := decodeEvent(k, v)
		if err != nil {
			return err
		}
		if p.chosen[e.Seq] {
			continue
		}
		at := atKey(e.At)
		if at < cutoff {
			p.victims = append(p.victims, victim{seq: clone(k)})
			p.chosen[e.Seq] = true
			continue
		}
		if p.byAt.Get(cat(be64(at), k)) != nil {
			continue // stamped before an earlier event, and recent: the walk goes on
		}
		break
	}
	return nil
}

// beyond chooses the oldest events beyond the newest maxEvents.
func (p *pruning) beyond(maxEvents int) error {
	excess := p.journal.Stats().KeyN - len(p.victims) - maxEvents
	c := p.journal.Cursor()
	for k, _ := c.First(); k != nil && excess > 0 && !p.full(); k, _ = c.Next() {
		seq, err := journalSeq(k)
		if err != nil {
			return err
		}
		if p.chosen[seq] {
			continue
		}
		p.victims = append(p.victims, victim{seq: clone(k)})
		excess--
	}
	return nil
}

// remove deletes the victims from the journal and both indexes.
func (p *pruning) remove() error {
	for _, v := range p.victims {
		if v.atKey != nil {
			if err := p.byAt.Delete(v.atKey); err != nil {
				return err
			}
		}
		data := p.journal.Get(v.seq)
		if data == nil {
			continue // a dangling time index entry, now gone
		}
		e, err := decodeEvent(v.seq, data)
		if err != nil {
			return err
		}
		if err := p.byCall.Delete(cat(be64(uint64(e.CallID)), v.seq)); err != nil {
			return err
		}
		if err := p.byAt.Delete(cat(be64(atKey(e.At)), v.seq)); err != nil {
			return err
		}
		if err := p.journal.Delete(v.seq); err != nil {
			return err
		}
	}
	return nil
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// Backup writes a consistent copy of the whole file to w while the
// daemon keeps running (bbolt's Tx.WriteTo inside a read transaction) and
// returns the number of bytes written. The copy opens with Open. It holds
// every commit logged before Backup was called: it fails when the
// checkpoint that puts them into the file fails (the copy is of the file
// alone, without its commit log).
func (db *DB) Backup(w io.Writer) (n int64, err error) {
	if db.isClosed() {
		return 0, ErrClosed
	}
	db.wal.mu.Lock()
	err = db.checkpointLocked()
	db.wal.mu.Unlock()
	if err != nil {
		return 0, fmt.Errorf("store: backup %s: %w", db.path, err)
	}
	err = db.ViewFile(func(tx *Tx) error {
		var err error
		n, err = tx.tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("store: backup %s: %w", db.path, err)
	}
	return n, nil
}
