package manager_test

import (
	"testing"
	"time"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/gotdrace"
)

// TestDiscardTimedOutIsResent: a phone.discardCall that gets no answer
// within the RPC timeout records no answer. The API answers 504 timeout
// with the call still hanging_up; the same discard is sent again after a
// backoff until it is answered, and the call ends with our reason,
// ended_by local. Whether the server executed the first send late (its
// answer lost) or never, it executes exactly one discard.
func TestDiscardTimedOutIsResent(t *testing.T) {
	gotdrace.CutsConnections(t)
	for _, tc := range []struct {
		name     string
		executed bool // the held first send is executed late, else dropped with its connection
	}{
		{"executed_late", true},
		{"never_executed", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{})
			id := h.placeActive()
			x0, d0 := h.srv.Executed("phone.discardCall"), h.srv.Dropped("phone.discardCall")
			res, release := h.heldDiscard(id)
			defer release()
			h.clock.Travel(91 * time.Second)
			r := answered(t, res, "Discard did not answer once its RPC ran out of time")
			if calld.ErrorCode(r.err) != calld.ETIMEOUT {
				t.Fatalf("Discard answered %v, want %s", r.err, calld.ETIMEOUT)
			}
			if r.c.State != calld.StateHangingUp || r.c.Reason != calld.ReasonHangup || r.c.EndedBy != "" || r.c.Error != "" {
				t.Fatalf("answered call %+v, want hanging_up with no answer recorded", r.c)
			}
			if c := h.callState(id); c.State != calld.StateHangingUp || c.Error != "" {
				t.Fatalf("stored call %+v, want hanging_up", c)
			}
			if !tc.executed {
				h.srv.Cut()
			}
			release()
			h.travelUntil(func() bool { return h.reached(id, calld.StateEnded) })
			c := h.callState(id)
			if c.Reason != calld.ReasonHangup || c.EndedBy != calld.EndedByLocal || c.Error != "" {
				t.Fatalf("ended: %+v", c)
			}
			info, ok := h.srv.Call(id)
			if !ok || info.State != "discarded" || info.Reason != "hangup" || info.DiscardedBy == "" {
				t.Fatalf("sim's view of the call: %+v", info)
			}
			if !tc.executed {
				if d := h.srv.Dropped("phone.discardCall") - d0; d != 1 {
					t.Fatalf("%d dropped discards, want the held one", d)
				}
				if x := h.srv.Executed("phone.discardCall") - x0; x != 1 {
					t.Fatalf("%d discards executed, want 1 (the re-send)", x)
				}
			}
			for _, d := range discards(h.srv, id) {
				if d.Reason.TypeName() != "phoneCallDiscardReasonHangup" || d.Duration != int(r.c.Duration) || d.ConnectionID != r.c.ConnectionID {
					t.Fatalf("a send differs from the decided discard: %+v vs %+v", d, r.c)
				}
			}
		})
	}
}
