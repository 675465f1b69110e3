package store

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// bRequests holds the outgoing calls' phone.requestCall requests that have
// no call id yet (CONTRACT §5.1), by random_id: random_id(4) -> request
// (opaque JSON). A request carries the secret half of the call's key
// exchange, so this bucket is as private as the session's auth key: it is
// in the same file, and never reaches the control API or a log. The bucket
// is created by the first PutRequest, so that files written before it
// existed open unchanged (same schema version).
var bRequests = []byte("requests")

// PutRequest stores the pending request of random_id.
func (t *Tx) PutRequest(randomID int32, rec []byte) error {
	if len(rec) == 0 || !json.Valid(rec) {
		return fmt.Errorf("store: put request %d: the record is not valid JSON", randomID)
	}
	b, err := t.tx.CreateBucketIfNotExists(bRequests)
	if err != nil {
		return fmt.Errorf("store: requests bucket: %w", err)
	}
	if err := b.Put(be32(uint32(randomID)), bytes.Clone(rec)); err != nil {
		return fmt.Errorf("store: put request %d: %w", randomID, err)
	}
	return nil
}

// DeleteRequest removes the pending request of random_id, if any.
func (t *Tx) DeleteRequest(randomID int32) error {
	b := t.tx.Bucket(bRequests)
	if b == nil {
		return nil
	}
	if err := b.Delete(be32(uint32(randomID))); err != nil {
		return fmt.Errorf("store: delete request %d: %w", randomID, err)
	}
	return nil
}

// ForEachRequest calls fn with every pending request, in random_id order.
func (t *Tx) ForEachRequest(fn func(randomID int32, rec []byte) error) error {
	b := t.tx.Bucket(bRequests)
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		if len(k) != 4 {
			return fmt.Errorf("store: requests: %w: key of %d bytes", ErrCorrupt, len(k))
		}
		return fn(int32(u32(k)), bytes.Clone(v))
	})
}
