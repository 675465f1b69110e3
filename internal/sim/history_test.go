package sim

import (
	"testing"

	"github.com/gotd/td/tg"
)

// TestDifferenceKeepsABurst: a client that fell behind at the start of a
// burst of 6,000 calls requested then discarded (12,000 non-pts updates)
// gets every phoneCallRequested from updates.getDifference: the history of
// non-pts updates is not cut silently under the bursts bench/ab pushes.
func TestDifferenceKeepsABurst(t *testing.T) {
	srv, err := New(Options{Authorized: true})
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, date := srv.State()
	const n = 6000
	for i := range int64(n) {
		srv.Push(&tg.UpdatePhoneCall{PhoneCall: &tg.PhoneCallRequested{ID: i + 1, GAHash: []byte{1}}})
		srv.Push(&tg.UpdatePhoneCall{PhoneCall: &tg.PhoneCallDiscarded{ID: i + 1}})
	}
	pts, _, _, _ := srv.State()
	acct := srv.Account() // takes srv.mu itself
	srv.mu.Lock()
	d := acct.differenceLocked(&tg.UpdatesGetDifferenceRequest{Pts: pts, Date: date})
	srv.mu.Unlock()
	diff, ok := d.(*tg.UpdatesDifference)
	if !ok {
		t.Fatalf("difference: %T", d)
	}
	seen := map[int64]bool{}
	for _, u := range diff.OtherUpdates {
		if pc, ok := u.(*tg.UpdatePhoneCall); ok {
			if r, ok := pc.PhoneCall.(*tg.PhoneCallRequested); ok {
				seen[r.ID] = true
			}
		}
	}
	if len(seen) != n {
		t.Fatalf("difference holds %d of the %d phoneCallRequested", len(seen), n)
	}
}
