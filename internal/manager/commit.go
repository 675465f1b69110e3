package manager

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/store"
)

// commit is what one commit of the loop writes: the changed call records
// (not the requesting ones: their records live in their requests), the
// secrets of live calls, the changed requests, the journal entries
// (numbered), and the updates state when it moved. The store logs it in
// its binary form (appendBinary) and puts it into the bbolt file at a
// checkpoint (write), or, after a crash, from the log (Replay).
type commit struct {
	records  []callRecord     // by id as stored (uint64), the order bbolt inserts best
	secs     map[int64][]byte // call id -> secrets
	reqs     map[int32][]byte // random_id -> request; nil value: delete the request
	setState bool
	st       calld.UpdatesState
	events   []calld.Event
	// eventJSON is each event's JSON once encoded (appendBinary):
	// stored as it is.
	eventJSON [][]byte
	// encoded: the records' JSON is calld.Call's MarshalJSON, written by
	// collectBatch, and stored unchecked (store.Tx.PutEncodedCall); a
	// commit read back from the log (Replay) is checked.
	encoded bool
}

// callRecord is a call's record as JSON, and whether the call is live.
type callRecord struct {
	id   int64
	live bool
	raw  []byte
}

// write puts c into tx.
func (c *commit) write(tx *store.Tx) error {
	put := tx.PutCall
	if c.encoded {
		put = tx.PutEncodedCall
	}
	for _, r := range c.records {
		if err := put(r.id, r.raw, r.live); err != nil {
			return err
		}
		if sec, ok := c.secs[r.id]; ok {
			if err := tx.PutCallSecrets(r.id, sec); err != nil {
				return err
			}
		}
	}
	if err := putRequests(tx, c.reqs); err != nil {
		return err
	}
	if len(c.eventJSON) == len(c.events) {
		if err := tx.AppendEncodedEvents(c.events, c.eventJSON); err != nil {
			return err
		}
	} else if err := tx.AppendEvents(c.events); err != nil {
		return err
	}
	if c.setState {
		return tx.SetUpdatesState(c.st)
	}
	return nil
}

// Replay puts a commit the store logged (store.Options.Replay) into tx.
func Replay(tx *store.Tx, rec []byte) error {
	c, err := decodeCommit(rec)
	if err != nil {
		return err
	}
	return c.write(tx)
}

// commitVersion is the first byte of a commit's binary form.
const commitVersion = 1

// appendBinary appends c's binary form to b (and keeps the events' JSON
// it encodes, for write): the version, a flags byte
// (1: the updates state follows), the state (pts, qts, seq, date as
// varints), then the records (id varint, live byte, JSON), the secrets
// (id varint, bytes) and the requests (random_id varint, a presence byte,
// JSON) in key order, and the events (JSON), each list preceded by its
// length and each byte string by its length (uvarints).
func (c *commit) appendBinary(b []byte) []byte {
	b = append(b, commitVersion)
	if c.setState {
		b = append(b, 1)
		for _, v := range []int{c.st.Pts, c.st.Qts, c.st.Seq, c.st.Date} {
			b = binary.AppendVarint(b, int64(v))
		}
	} else {
		b = append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(c.records)))
	for _, r := range c.records {
		b = binary.AppendVarint(b, r.id)
		b = append(b, boolByte(r.live))
		b = appendBytes(b, r.raw)
	}
	b = binary.AppendUvarint(b, uint64(len(c.secs)))
	for _, id := range sortedKeys(c.secs) {
		b = binary.AppendVarint(b, id)
		b = appendBytes(b, c.secs[id])
	}
	b = binary.AppendUvarint(b, uint64(len(c.reqs)))
	for _, rid := range sortedKeys(c.reqs) {
		b = binary.AppendVarint(b, int64(rid))
		req := c.reqs[rid]
		b = append(b, boolByte(req != nil))
		if req != nil {
			b = appendBytes(b, req)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(c.events)))
	c.eventJSON = nil
	for i := range c.events {
		if i == 0 {
			c.eventJSON = make([][]byte, len(c.events))
		}
		c.eventJSON[i] = c.events[i].AppendJSON(nil)
		b = appendBytes(b, c.eventJSON[i])
	}
	return b
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

func appendBytes(b, s []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// errCommit is a commit's binary form that does not decode.
var errCommit = errors.New("malformed commit")

// decoder reads a commit's binary form; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", errCommit, what)
	}
}

func (d *decoder) byte(what string) byte {
	if d.err != nil || len(d.b) == 0 {
		d.fail(what)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) flag(what string) bool {
	switch d.byte(what) {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail(what)
	return false
}

func (d *decoder) varint(what string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a list's length, which cannot exceed what is left.
func (d *decoder) count(what string) int {
	n := d.uvarint(what)
	if n > uint64(len(d.b)) {
		d.fail(what)
		return 0
	}
	return int(n)
}

func (d *decoder) bytes(what string) []byte {
	n := d.count(what)
	if d.err != nil {
		return nil
	}
	s := d.b[:n:n]
	d.b = d.b[n:]
	return s
}

// decodeCommit decodes what appendBinary wrote.
func decodeCommit(rec []byte) (*commit, error) {
	d := &decoder{b: rec}
	if v := d.byte("version"); d.err == nil && v != commitVersion {
		return nil, fmt.Errorf("%w: version %d", errCommit, v)
	}
	c := &commit{}
	if c.setState = d.flag("flags"); c.setState {
		c.st = calld.UpdatesState{Pts: int(d.varint("pts")), Qts: int(d.varint("qts")), Seq: int(d.varint("seq")), Date: int(d.varint("date"))}
	}
	for range d.count("records") {
		c.records = append(c.records, callRecord{id: d.varint("record id"), live: d.flag("live"), raw: d.bytes("record")})
	}
	if n := d.count("secrets"); n > 0 {
		c.secs = make(map[int64][]byte, n)
		for range n {
			id := d.varint("secrets id")
			c.secs[id] = d.bytes("secrets")
		}
	}
	if n := d.count("requests"); n > 0 {
		c.reqs = make(map[int32][]byte, n)
		for range n {
			rid := d.varint("request id")
			if rid != int64(int32(rid)) {
				d.fail("request id")
			}
			var req []byte
			if d.flag("request present") {
				req = d.bytes("request")
			}
			c.reqs[int32(rid)] = req
		}
	}
	for range d.count("events") {
		raw := d.bytes("event")
		if d.err != nil {
			break
		}
		var e calld.Event
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, fmt.Errorf("%w: event: %w", errCommit, err)
		}
		c.events = append(c.events, e)
		c.eventJSON = append(c.eventJSON, raw)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return nil, d.err
	}
	return c, nil
}
