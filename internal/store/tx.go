package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/calld/calld"
)

// Buckets and keys (see the package comment).
var (
	bMeta      = []byte("meta")
	bCalls     = []byte("calls")
	bLive      = []byte("calls_live")
	bJournal   = []byte("journal")
	bJournalAt = []byte("journal_at")
	bUpdates   = []byte("updates")
	bSession   = []byte("session")
	// bSecrets is created by the first PutCallSecrets: files written
	// before it existed open unchanged.
	bSecrets = []byte("call_secrets")

	allBuckets = [][]byte{bMeta, bCalls, bLive, bJournal, bJournalAt, bUpdates, bSession}

	kMagic      = []byte("magic")
	kSchema     = []byte("schema")
	kLastSeq    = []byte("last_seq")
	kCallsTotal = []byte("calls_total")
	kLiveNext   = []byte("live_next")
	kMaxAt      = []byte("max_at")
	kState      = []byte("state")
	kSession    = []byte("mtproto")
	kAccount    = []byte("account")
)

// Tx is a transaction of Update or View. It is valid only inside
// the function it was passed to. The byte slices it returns are copies,
// safe to keep after the transaction.
type Tx struct {
	tx *bolt.Tx
	db *DB
}

func (t *Tx) bucket(name []byte) (*bolt.Bucket, error) {
	b := t.tx.Bucket(name)
	if b == nil {
		return nil, fmt.Errorf("store: bucket %q is missing: %w", name, ErrCorrupt)
	}
	return b, nil
}

// PutCall stores the record of call id (opaque JSON, a calld.Call) and
// keeps the live-calls index: live adds id to it, !live removes it. A
// record that is not valid JSON is refused, and nothing is written.
func (t *Tx) PutCall(id int64, rec []byte, live bool) error {
	if len(rec) == 0 || !json.Valid(rec) {
		return fmt.Errorf("store: put call %d: the record is not valid JSON", id)
	}
	// bbolt keeps the value slice until the commit: store a copy.
	return t.putCall(id, bytes.Clone(rec), live)
}

// PutEncodedCall is PutCall of a record the caller encoded itself with
// calld.Call's MarshalJSON (the records a commit log's apply writes,
// AppendEncodedEvents's twin): rec is stored as it is, neither checked nor
// copied, and the caller must not change it until the transaction has
// ended. Checking it was ~60 % of PutCall's time in a burst.
func (t *Tx) PutEncodedCall(id int64, rec []byte, live bool) error {
	if len(rec) == 0 {
		return fmt.Errorf("store: put call %d: the record is empty", id)
	}
	return t.putCall(id, rec, live)
}

// putCall is PutCall of a record bbolt may keep until the commit.
func (t *Tx) putCall(id int64, rec []byte, live bool) error {
	calls, err := t.bucket(bCalls)
	if err != nil {
		return err
	}
	k := be64(uint64(id))
	if calls.Get(k) == nil {
		meta, err := t.bucket(bMeta)
		if err != nil {
			return err
		}
		if err := meta.Put(kCallsTotal, be64(callsTotal(meta)+1)); err != nil {
			return fmt.Errorf("store: put call %d: count: %w", id, err)
		}
	}
	if err := calls.Put(k, rec); err != nil {
		return fmt.Errorf("store: put call %d: %w", id, err)
	}
	if err := t.setLive(calls, id, live); err != nil {
		return fmt.Errorf("store: live index of call %d: %w", id, err)
	}
	if !live {
		// An ended call's secrets go with its end, in the same
		// transaction.
		if sec := t.tx.Bucket(bSecrets); sec != nil && sec.Get(k) != nil {
			if err := sec.Delete(k); err != nil {
				return fmt.Errorf("store: erase the secrets of call %d: %w", id, err)
			}
		}
	}
	return nil
}

// setLive adds call id to the live index or removes it, when its liveness
// changes (a Put of the same key would still dirty, and rewrite, its
// page). The index is keyed by the order calls became live, so that a
// commit's new calls land on its last page and the ends of calls that
// came in together on a few pages, whatever their random ids; the call's
// place in it is kept beside its record (liveKey), on the page the
// record's Put dirties anyway.
func (t *Tx) setLive(calls *bolt.Bucket, id int64, live bool) error {
	idx, err := t.bucket(bLive)
	if err != nil {
		return err
	}
	lk := liveKey(id)
	pos := calls.Get(lk)
	switch {
	case live && pos == nil:
		meta, err := t.bucket(bMeta)
		if err != nil {
			return err
		}
		last, err := meta64(meta, kLiveNext)
		if err != nil {
			return err
		}
		n := last + 1
		idx.FillPercent = appendFill
		if err := idx.Put(be64(n), be64(uint64(id))); err != nil {
			return err
		}
		if err := calls.Put(lk, be64(n)); err != nil {
			return err
		}
		return meta.Put(kLiveNext, be64(n))
	case !live && pos != nil:
		if len(pos) != 8 {
			return fmt.Errorf("live index position %x: %w", pos, ErrCorrupt)
		}
		if err := idx.Delete(bytes.Clone(pos)); err != nil {
			return err
		}
		return calls.Delete(lk)
	}
	return nil
}

// liveKey is the key, in the calls bucket, of call id's place in the live
// index: callID(8)|'L'.
func liveKey(id int64) []byte { return append(be64(uint64(id)), 'L') }

// meta64 is the big-endian uint64 meta holds under key: 0 if there is
// none (a file that never had it), ErrCorrupt if it is not 8 bytes.
func meta64(meta *bolt.Bucket, key []byte) (uint64, error) {
	v := meta.Get(key)
	switch len(v) {
	case 0:
		return 0, nil
	case 8:
		return binary.BigEndian.Uint64(v), nil
	}
	return 0, fmt.Errorf("store: meta %s is malformed: %w", key, ErrCorrupt)
}

// PutCallSecrets stores what live call id needs to go on after a restart
// (its key-exchange material and media key, opaque bytes). They are kept
// apart from the record, which the control API returns, and erased by the
// PutCall that records the call's end.
func (t *Tx) PutCallSecrets(id int64, data []byte) error {
	sec, err := t.tx.CreateBucketIfNotExists(bSecrets)
	if err != nil {
		return fmt.Errorf("store: secrets of call %d: %w", id, err)
	}
	if err := sec.Put(be64(uint64(id)), bytes.Clone(data)); err != nil {
		return fmt.Errorf("store: secrets of call %d: %w", id, err)
	}
	return nil
}

// CallSecrets returns what PutCallSecrets stored for call id, or an error
// wrapping ErrNotFound.
func (t *Tx) CallSecrets(id int64) ([]byte, error) {
	if sec := t.tx.Bucket(bSecrets); sec != nil {
		if v := sec.Get(be64(uint64(id))); v != nil {
			return bytes.Clone(v), nil
		}
	}
	return nil, fmt.Errorf("store: secrets of call %d: %w", id, ErrNotFound)
}

// Call returns the record of call id, or an error wrapping ErrNotFound.
func (t *Tx) Call(id int64) ([]byte, error) {
	calls, err := t.bucket(bCalls)
	if err != nil {
		return nil, err
	}
	v := calls.Get(be64(uint64(id)))
	if v == nil {
		return nil, fmt.Errorf("store: call %d: %w", id, ErrNotFound)
	}
	return bytes.Clone(v), nil
}

// ForEachCall calls fn with every call record (liveOnly: only the calls in
// the live index), each record a copy: all of them in id order, the live
// ones in the order they became live. An error of fn stops
// the walk and is returned.
func (t *Tx) ForEachCall(liveOnly bool, fn func(id int64, rec []byte) error) error {
	calls, err := t.bucket(bCalls)
	if err != nil {
		return err
	}
	if !liveOnly {
		c := calls.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(k) != 8 {
				continue // the call's journal index: callID|seq
			}
			if err := fn(int64(binary.BigEndian.Uint64(k)), bytes.Clone(v)); err != nil {
				return err
			}
		}
		return nil
	}
	idx, err := t.bucket(bLive)
	if err != nil {
		return err
	}
	c := idx.Cursor()
	for pos, k := c.First(); pos != nil; pos, k = c.Next() {
		if len(k) != 8 {
			return fmt.Errorf("store: live index entry %x -> %x: %w", pos, k, ErrCorrupt)
		}
		id := int64(binary.BigEndian.Uint64(k))
		v := calls.Get(k)
		if v == nil {
			return fmt.Errorf("store: live call %d has no record: %w", id, ErrCorrupt)
		}
		if err := fn(id, bytes.Clone(v)); err != nil {
			return err
		}
	}
	return nil
}

// CallCounts returns the number of live calls and of all calls.
func (t *Tx) CallCounts() (live, total int, err error) {
	meta, err := t.bucket(bMeta)
	if err != nil {
		return 0, 0, err
	}
	idx, err := t.bucket(bLive)
	if err != nil {
		return 0, 0, err
	}
	c := idx.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		live++
	}
	return live, int(callsTotal(meta)), nil
}

// AppendEvent adds e to the journal, as AppendEvents does.
func (t *Tx) AppendEvent(e *calld.Event) error {
	if e == nil {
		return errors.New("store: append event: nil event")
	}
	evs := []calld.Event{*e}
	if err := t.AppendEvents(evs); err != nil {
		return err
	}
	*e = evs[0]
	return nil
}

// AppendEvents adds evs to the journal, in order. It sets each one's Seq
// to the next sequence number (one more than LastSeq; numbers are never
// reused, even after Prune removed the events that had them) and, if its
// At is zero, At to Options.Clock.Now(). An event whose Seq is already set
// (numbered by a writer that logs its commits ahead of the file, Log)
// must carry that number, or nothing is appended. Each event is indexed under its
// CallID and, if its time is before the latest one appended before it,
// under its time. The values set in evs are valid only if the transaction
// commits.
func (t *Tx) AppendEvents(evs []calld.Event) error { return t.appendEvents(evs, nil) }

// AppendEncodedEvents is AppendEvents of events numbered and stamped
// already (Seq and At set), whose JSON the caller has: data[i] is what
// evs[i].MarshalJSON() writes, stored as it is. The events the journal
// holds already (those first in evs numbered at most LastSeq: the same
// commit put in again) are skipped, so that a commit's apply can run
// twice.
func (t *Tx) AppendEncodedEvents(evs []calld.Event, data [][]byte) error {
	if len(data) != len(evs) {
		return fmt.Errorf("store: append events: %d encoded for %d events", len(data), len(evs))
	}
	last := t.LastSeq()
	skip := 0
	for skip < len(evs) && evs[skip].Seq != 0 && evs[skip].Seq <= last {
		skip++
	}
	return t.appendEvents(evs[skip:], data[skip:])
}

// appendEvents appends evs, encoding each unless data has it.
func (t *Tx) appendEvents(evs []calld.Event, data [][]byte) error {
	if len(evs) == 0 {
		return nil
	}
	meta, err := t.bucket(bMeta)
	if err != nil {
		return err
	}
	journal, err := t.bucket(bJournal)
	if err != nil {
		return err
	}
	byCall, err := t.bucket(bCalls)
	if err != nil {
		return err
	}
	byAt, err := t.bucket(bJournalAt)
	if err != nil {
		return err
	}
	last, err := lastSeq(meta)
	if err != nil {
		return err
	}
	if uint64(len(evs)) > math.MaxUint64-last {
		return errors.New("store: append event: sequence numbers exhausted")
	}
	// The journal and the time index grow at their end: fill pages
	// instead of splitting them in half.
	journal.FillPercent, byAt.FillPercent = appendFill, appendFill
	maxAt, err := meta64(meta, kMaxAt)
	if err != nil {
		return err
	}
	index := make([][]byte, len(evs))
	for i := range evs {
		e := &evs[i]
		if e.At.IsZero() {
			e.At = t.db.opts.Clock.Now()
		}
		if err := number(e, last+uint64(i)+1); err != nil {
			return err
		}
		raw, err := encodedEvent(e, data, i)
		if err != nil {
			return fmt.Errorf("store: append event: %w", err)
		}
		seq := be64(e.Seq)
		if err := journal.Put(seq, raw); err != nil {
			return fmt.Errorf("store: append event %d: %w", e.Seq, err)
		}
		index[i] = cat(be64(uint64(e.CallID)), seq)
		// The journal is in time order up to the latest time appended
		// (max_at); only an event stamped before it is indexed by time.
		if at := atKey(e.At); at < maxAt {
			if err := byAt.Put(cat(be64(at), seq), []byte{}); err != nil {
				return fmt.Errorf("store: append event %d: time index: %w", e.Seq, err)
			}
		} else {
			maxAt = at
		}
	}
	// The per-call index in key order: bbolt inserts into a node by
	// shifting what follows, and a node grows with every insert until the
	// commit splits it, so a large batch in random order costs the square
	// of its size.
	slices.SortFunc(index, bytes.Compare)
	for _, k := range index {
		if err := byCall.Put(k, []byte{}); err != nil {
			return fmt.Errorf("store: append event %d: call index: %w", binary.BigEndian.Uint64(k[8:]), err)
		}
	}
	if err := meta.Put(kMaxAt, be64(maxAt)); err != nil {
		return fmt.Errorf("store: append events: latest time: %w", err)
	}
	if err := meta.Put(kLastSeq, be64(evs[len(evs)-1].Seq)); err != nil {
		return fmt.Errorf("store: append events: last seq: %w", err)
	}
	return nil
}

// encodedEvent is e's JSON: data[i], or encoded now (what json.Marshal(e)
// writes, without compacting it again).
func encodedEvent(e *calld.Event, data [][]byte, i int) ([]byte, error) {
	if data != nil {
		return data[i], nil
	}
	return e.MarshalJSON()
}

// number gives e the journal's next number, or checks the one it has.
func number(e *calld.Event, next uint64) error {
	switch e.Seq {
	case 0:
		e.Seq = next
	case next:
	default:
		return fmt.Errorf("store: append event: it is numbered %d, the journal's next is %d", e.Seq, next)
	}
	return nil
}

// appendFill is the page fill of the append-mostly buckets.
const appendFill = 0.9

// atKey is the time index key of t: unix nanoseconds, 0 before 1970.
func atKey(t time.Time) uint64 {
	n := t.UnixNano()
	if n < 0 {
		return 0
	}
	return uint64(n)
}

func lastSeq(meta *bolt.Bucket) (uint64, error) {
	v := meta.Get(kLastSeq)
	if len(v) != 8 {
		return 0, fmt.Errorf("store: last seq is malformed: %w", ErrCorrupt)
	}
	return binary.BigEndian.Uint64(v), nil
}

// LastSeq returns the seq of the last event ever appended (0 if none),
// whether or not Prune has removed it since.
func (t *Tx) LastSeq() uint64 {
	meta := t.tx.Bucket(bMeta)
	if meta == nil {
		return 0
	}
	n, _ := lastSeq(meta)
	return n
}

// FirstSeq returns the seq of the oldest event still in the journal, or 0
// if it is empty. Events before it were removed by Prune.
func (t *Tx) FirstSeq() uint64 {
	journal := t.tx.Bucket(bJournal)
	if journal == nil {
		return 0
	}
	// The first well-formed key: a malformed one is reported by Events.
	c := journal.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if seq, err := journalSeq(k); err == nil {
			return seq
		}
	}
	return 0
}

// journalSeq decodes a journal key: an 8-byte big-endian seq.
func journalSeq(k []byte) (uint64, error) {
	if len(k) != 8 {
		return 0, fmt.Errorf("store: journal key %x is not an 8-byte sequence number: %w", k, ErrCorrupt)
	}
	return binary.BigEndian.Uint64(k), nil
}

// decodeEvent decodes the journal entry k -> v, checking that the event
// carries its key's seq.
func decodeEvent(k []byte, v []byte) (calld.Event, error) {
	var e calld.Event
	seq, err := journalSeq(k)
	if err != nil {
		return e, err
	}
	if err := json.Unmarshal(v, &e); err != nil {
		return e, fmt.Errorf("store: event %d: %w: %v", seq, ErrCorrupt, err)
	}
	if e.Seq != seq {
		return e, fmt.Errorf("store: event %d records seq %d: %w", seq, e.Seq, ErrCorrupt)
	}
	return e, nil
}

// Events calls fn with every event whose seq is greater than since, in
// ascending seq order. An error of fn stops the walk and is returned.
// since beyond the last seq ever assigned (LastSeq) is an "invalid"
// error naming it: seqs are never reused, so no event would ever come.
func (t *Tx) Events(since uint64, fn func(calld.Event) error) error {
	meta, err := t.bucket(bMeta)
	if err != nil {
		return err
	}
	last, err := lastSeq(meta)
	if err != nil {
		return err
	}
	if since > last {
		return calld.Errorf(calld.EINVALID, "since %d is beyond the journal: the last event's seq is %d (seq numbers are never reused; ask with since=%d or less)", since, last, last)
	}
	if since == math.MaxUint64 {
		return nil
	}
	journal, err := t.bucket(bJournal)
	if err != nil {
		return err
	}
	c := journal.Cursor()
	for k, v := c.Seek(be64(since + 1)); k != nil; k, v = c.Next() {
		e, err := decodeEvent(k, v)
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// CallEvents calls fn with the events of call callID still in the
// journal, in ascending seq order.
func (t *Tx) CallEvents(callID int64, fn func(calld.Event) error) error {
	journal, err := t.bucket(bJournal)
	if err != nil {
		return err
	}
	byCall, err := t.bucket(bCalls)
	if err != nil {
		return err
	}
	prefix := be64(uint64(callID))
	c := byCall.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) == 8 || len(k) == 9 {
			continue // the call's record, its place in the live index
		}
		if len(k) != 16 {
			return fmt.Errorf("store: call index key %x: %w", k, ErrCorrupt)
		}
		v := journal.Get(k[8:])
		if v == nil {
			return fmt.Errorf("store: call %d: indexed event %d is missing: %w", callID, binary.BigEndian.Uint64(k[8:]), ErrCorrupt)
		}
		e, err := decodeEvent(k[8:], v)
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// UpdatesState returns the persisted updates state; ok is false if none
// was ever saved.
func (t *Tx) UpdatesState() (s calld.UpdatesState, ok bool, err error) {
	b, err := t.bucket(bUpdates)
	if err != nil {
		return s, false, err
	}
	v := b.Get(kState)
	if v == nil {
		return s, false, nil
	}
	if err := json.Unmarshal(v, &s); err != nil {
		return calld.UpdatesState{}, false, fmt.Errorf("store: updates state: %w: %v", ErrCorrupt, err)
	}
	return s, true, nil
}

// SetUpdatesState saves the updates state.
func (t *Tx) SetUpdatesState(s calld.UpdatesState) error {
	b, err := t.bucket(bUpdates)
	if err != nil {
		return err
	}
	data, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("store: updates state: %w", err)
	}
	if err := b.Put(kState, data); err != nil {
		return fmt.Errorf("store: updates state: %w", err)
	}
	return nil
}

// Session returns the stored MTProto session, or an error wrapping
// ErrNotFound.
func (t *Tx) Session() ([]byte, error) {
	b, err := t.bucket(bSession)
	if err != nil {
		return nil, err
	}
	v := b.Get(kSession)
	if len(v) == 0 {
		return nil, fmt.Errorf("store: session: %w", ErrNotFound)
	}
	return bytes.Clone(v), nil
}

// Account returns the Telegram user id whose calls and updates state the
// file holds (SetAccount), or 0 if none was recorded yet: a new file, or
// one written before calld recorded it.
func (t *Tx) Account() (int64, error) {
	meta, err := t.bucket(bMeta)
	if err != nil {
		return 0, err
	}
	id, err := meta64(meta, kAccount)
	if err != nil {
		return 0, err
	}
	if id > math.MaxInt64 {
		return 0, fmt.Errorf("store: meta account %d: %w", id, ErrCorrupt)
	}
	return int64(id), nil
}

// SetAccount records id (> 0) as the file's account. It fails, and
// changes nothing, if the file already holds another account's.
func (t *Tx) SetAccount(id int64) error {
	if id <= 0 {
		return fmt.Errorf("store: set account: user id %d is not positive", id)
	}
	cur, err := t.Account()
	switch {
	case err != nil:
		return err
	case cur == id:
		return nil
	case cur != 0:
		return fmt.Errorf("store: set account %d: the file holds account %d's", id, cur)
	}
	meta, err := t.bucket(bMeta)
	if err != nil {
		return err
	}
	return meta.Put(kAccount, be64(uint64(id)))
}

// SetSession stores the MTProto session; an empty one deletes it.
func (t *Tx) SetSession(data []byte) error {
	b, err := t.bucket(bSession)
	if err != nil {
		return err
	}
	if len(data) == 0 {
		err = b.Delete(kSession)
	} else {
		err = b.Put(kSession, bytes.Clone(data))
	}
	if err != nil {
		return fmt.Errorf("store: session: %w", err)
	}
	return nil
}

func be64(n uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, n)
	return b
}

func be32(n uint32) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, n)
	return b
}

func u32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }

func cat(a, b []byte) []byte {
	out := make([]byte, 0, len(a)+len(b))
	return append(append(out, a...), b...)
}

// callsTotal is the number of call records (meta "calls_total").
func callsTotal(meta *bolt.Bucket) uint64 {
	if v := meta.Get(kCallsTotal); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}
