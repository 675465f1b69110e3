package store

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// migrate brings a file of schema 1 to SchemaVersion in tx (Open's one
// write to a valid file, and only to an older one; a failure leaves the
// file as it was). Schema 1 keyed calls_live by call id (callID -> empty)
// and indexed every event in journal_at; schema 2 keys calls_live by
// position (the order calls became live; schema 1's live calls get
// positions in id order) with each live call's position beside its record,
// and indexes by time only the events stamped before the latest time
// appended before them (max_at). Reading every event once, it costs what
// an unclean start's full walk costs, once.
func migrate(path string, tx *bolt.Tx) error {
	fail := func(what string, err error) error {
		return fmt.Errorf("store: open %s: migrate schema 1 to %d: %s: %w (the file was not modified)", path, SchemaVersion, what, err)
	}
	meta, calls := tx.Bucket(bMeta), tx.Bucket(bCalls)

	// The live index.
	var live []uint64
	c := tx.Bucket(bLive).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) != 8 {
			return fail("live index", fmt.Errorf("key %x: %w", k, ErrCorrupt))
		}
		live = append(live, binary.BigEndian.Uint64(k))
	}
	if err := tx.DeleteBucket(bLive); err != nil {
		return fail("live index", err)
	}
	idx, err := tx.CreateBucket(bLive)
	if err != nil {
		return fail("live index", err)
	}
	idx.FillPercent = appendFill
	for i, id := range live {
		pos := be64(uint64(i + 1))
		if calls.Get(be64(id)) == nil {
			return fail("live index", fmt.Errorf("live call %d has no record: %w", int64(id), ErrCorrupt))
		}
		if err := idx.Put(pos, be64(id)); err != nil {
			return fail("live index", err)
		}
		if err := calls.Put(liveKey(int64(id)), pos); err != nil {
			return fail("live index", err)
		}
	}
	if err := meta.Put(kLiveNext, be64(uint64(len(live)))); err != nil {
		return fail("live index", err)
	}

	// The time index: only the events stamped before an earlier one.
	if err := tx.DeleteBucket(bJournalAt); err != nil {
		return fail("time index", err)
	}
	byAt, err := tx.CreateBucket(bJournalAt)
	if err != nil {
		return fail("time index", err)
	}
	var maxAt uint64
	jc := tx.Bucket(bJournal).Cursor()
	for k, v := jc.First(); k != nil; k, v = jc.Next() {
		e, err := decodeEvent(k, v)
		if err != nil {
			return fail("time index", err)
		}
		if at := atKey(e.At); at < maxAt {
			if err := byAt.Put(cat(be64(at), k), []byte{}); err != nil {
				return fail("time index", err)
			}
		} else {
			maxAt = at
		}
	}
	if err := meta.Put(kMaxAt, be64(maxAt)); err != nil {
		return fail("time index", err)
	}
	if err := meta.Put(kSchema, be32(SchemaVersion)); err != nil {
		return fail("schema", err)
	}
	return nil
}
