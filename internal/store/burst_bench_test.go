package store

import (
	"encoding/json"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/calld/calld"
)

// BenchmarkBurstCommit is one commit of the manager's under a burst of
// incoming calls refused at once: 8 calls come in (a record, live, and
// their first two events) and 8 that came in earlier end (the record
// again, not live, one event), with about 2,000 calls live, under Telegram's
// random 64-bit ids. B/op and allocs/op are what bbolt materialises and
// rewrites for the pages such a commit dirties (the time is mostly the
// fsyncs).
func BenchmarkBurstCommit(b *testing.B) {
	db, err := Open(filepath.Join(b.TempDir(), "calld.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	rec := func(id int64, state string) []byte {
		raw, err := json.Marshal(calld.Call{ID: id, State: calld.State(state), Direction: calld.DirectionIncoming, PeerID: 4242})
		if err != nil {
			b.Fatal(err)
		}
		return raw
	}
	var live []int64
	step := func() {
		err := db.Update(func(tx *Tx) error {
			for i := 0; i < 8; i++ {
				id := int64(rng.Uint64() >> 1)
				if err := tx.PutCall(id, rec(id, "hanging_up"), true); err != nil {
					return err
				}
				for _, to := range []string{"waiting", "hanging_up"} {
					if err := tx.AppendEvent(&calld.Event{Event: "call.state", CallID: id, To: to}); err != nil {
						return err
					}
				}
				live = append(live, id)
			}
			for len(live) > 2000 {
				id := live[0]
				live = live[1:]
				if err := tx.PutCall(id, rec(id, "ended"), false); err != nil {
					return err
				}
				if err := tx.AppendEvent(&calld.Event{Event: "call.state", CallID: id, To: "ended"}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	for len(live) < 2000 {
		step()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		step()
	}
}
