package store

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/calld/calld"
)

// BenchmarkBurstCommit is one commit of the manager's under a burst of
// incoming calls refused at once: N calls come in (a record, live, and
// their first two events) and N that came in earlier end (the record
// again, not live, one event), with about 2,000 calls live, under Telegram's
// random 64-bit ids, written as the manager writes them. B/op and allocs/op are what bbolt materialises and
// rewrites for the pages such a commit dirties (the time is mostly the
// fsyncs).
func BenchmarkBurstCommit(b *testing.B) {
	for _, calls := range []int{8, 1000} { // a group commit under a burst writes ~1,000 at once
		for _, sorted := range []bool{false, true} {
			b.Run(fmt.Sprintf("calls=%d/sorted=%v", calls, sorted), func(b *testing.B) { benchBurstCommit(b, calls, sorted) })
		}
	}
}

// benchBurstCommit writes the records in id order and the events with
// one AppendEvents when sorted is set (as the manager does), else the
// records in arrival order and each event with its own AppendEvent.
func benchBurstCommit(b *testing.B, calls int, sorted bool) {
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
			type put struct {
				id    int64
				state string
				live  bool
			}
			var puts []put
			var evs []calld.Event
			for i := 0; i < calls; i++ {
				id := int64(rng.Uint64() >> 1)
				puts = append(puts, put{id, "hanging_up", true})
				for _, to := range []string{"waiting", "hanging_up"} {
					evs = append(evs, calld.Event{Event: "call.state", CallID: id, To: to})
				}
				live = append(live, id)
			}
			for len(live) > 2000 {
				id := live[0]
				live = live[1:]
				puts = append(puts, put{id, "ended", false})
				evs = append(evs, calld.Event{Event: "call.state", CallID: id, To: "ended"})
			}
			if sorted {
				slices.SortFunc(puts, func(x, y put) int { return cmp.Compare(uint64(x.id), uint64(y.id)) })
			}
			for _, p := range puts {
				if err := tx.PutCall(p.id, rec(p.id, p.state), p.live); err != nil {
					return err
				}
			}
			if sorted {
				return tx.AppendEvents(evs)
			}
			for i := range evs {
				if err := tx.AppendEvent(&evs[i]); err != nil {
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
