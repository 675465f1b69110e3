package fsm

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/calld/calld"
)

// roundTrip persists and reloads a record the way the store does (JSON).
func roundTrip(t testing.TB, c calld.Call) calld.Call {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var out calld.Call
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

type start struct {
	name    string
	dir     calld.Direction
	state   calld.State
	pending bool
}

func starts() []start {
	var out []start
	for _, dir := range []calld.Direction{calld.DirectionOutgoing, calld.DirectionIncoming} {
		for _, s := range States {
			if stateOf(dir, s) {
				out = append(out, start{string(dir) + "/" + string(s), dir, s, false})
			}
		}
	}
	return append(out, start{"outgoing/requesting+pending", calld.DirectionOutgoing, calld.StateRequesting, true})
}

func (s start) build(t testing.TB, clk *clock, to Timeouts) *Machine {
	if s.pending {
		return pending(t, clk, to)
	}
	return reach(t, s.dir, s.state, clk, to)
}

// TestRestoreBehavesIdentically restores every reachable state from its
// JSON record and feeds every input kind to both the original and the
// restored machine: same steps, same records. Restoring runs no callback.
func TestRestoreBehavesIdentically(t *testing.T) {
	to := Timeouts{MaxDuration: time.Hour}
	for _, s := range starts() {
		t.Run(s.name, func(t *testing.T) {
			for i, in := range catalog(s.dir) {
				for _, after := range []time.Duration{time.Second, 2 * time.Hour} {
					clk := newClock()
					orig := s.build(t, clk, to)
					restored, err := Restore(roundTrip(t, orig.Call()), to)
					if err != nil {
						t.Fatal(err)
					}
					if restored.callbacks != 0 {
						t.Fatalf("Restore ran %d callbacks", restored.callbacks)
					}
					if !reflect.DeepEqual(restored.Call(), orig.Call()) {
						t.Fatalf("restored record differs:\n%+v\n%+v", restored.Call(), orig.Call())
					}
					now := clk.Advance(after)
					a, b := orig.Handle(in, now), restored.Handle(in, now)
					if l, ok := in.(Local); ok && l.Action == Resend && s.state == calld.StateHangingUp {
						// The one intended difference: only the machine
						// loaded from the record in hanging_up re-sends
						// the recorded discard, once.
						rec := orig.Call()
						want := []SendDiscard{{Reason: rec.Reason, Duration: int32(rec.Duration), ConnectionID: rec.ConnectionID, Video: rec.Video}}
						if a.Ignored == "" || len(a.Actions) > 0 || !reflect.DeepEqual(discards(b), want) || b.Changed ||
							!reflect.DeepEqual(orig.Call(), restored.Call()) {
							t.Fatalf("resend after %s:\norig     %+v\nrestored %+v", after, a, b)
						}
						if again := restored.Handle(in, now); again.Ignored == "" || len(again.Actions) > 0 {
							t.Fatalf("second resend: %+v", again)
						}
						continue
					}
					if !reflect.DeepEqual(a, b) || !reflect.DeepEqual(orig.Call(), restored.Call()) {
						t.Fatalf("input #%d %#v after %s:\norig     %+v %+v\nrestored %+v %+v",
							i, in, after, a, orig.Call(), b, restored.Call())
					}
					if restored.callbacks != len(b.Transitions) {
						t.Fatalf("callbacks %d for %d transitions", restored.callbacks, len(b.Transitions))
					}
				}
			}
		})
	}
}

func TestRestoreRejects(t *testing.T) {
	cases := []struct {
		name string
		c    calld.Call
	}{
		{"unknown state", calld.Call{ID: 1, Direction: calld.DirectionIncoming, State: "dialing"}},
		{"empty state", calld.Call{ID: 1, Direction: calld.DirectionIncoming}},
		{"unknown direction", calld.Call{ID: 1, Direction: "sideways", State: calld.StateRinging}},
		{"incoming requesting", calld.Call{ID: 1, Direction: calld.DirectionIncoming, State: calld.StateRequesting}},
		{"outgoing accepting", calld.Call{ID: 1, Direction: calld.DirectionOutgoing, State: calld.StateAccepting}},
	}
	for _, tc := range cases {
		m, err := Restore(tc.c, Timeouts{})
		if m != nil || calld.ErrorCode(err) != calld.EINVALID {
			t.Errorf("%s: Restore = %v, %v; want invalid", tc.name, m, err)
		}
	}
}

// TestRestoreHonoursDeadline: a timer running at shutdown fires after the
// restart as if nothing happened.
func TestRestoreHonoursDeadline(t *testing.T) {
	clk := newClock()
	m := reach(t, calld.DirectionOutgoing, calld.StateRinging, clk, Timeouts{Ring: time.Minute})
	r, err := Restore(roundTrip(t, m.Call()), Timeouts{Ring: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, due := r.Due(clk.Advance(59 * time.Second)); due {
		t.Fatal("due early")
	}
	k, due := r.Due(clk.Advance(time.Second))
	if !due || k != TimerRing {
		t.Fatalf("Due = %s %v; the persisted deadline, not the new timeouts, rules", k, due)
	}
}

func TestCallIsACopy(t *testing.T) {
	clk := newClock()
	m := reach(t, calld.DirectionIncoming, calld.StateActive, clk, Timeouts{})
	c := m.Call()
	c.Connections[0].ID = 1
	*c.ActiveAt = time.Time{}
	if d := m.Call(); d.Connections[0].ID == 1 || d.ActiveAt.IsZero() {
		t.Fatal("Call() shares memory with the machine")
	}
}

func TestNewMachines(t *testing.T) {
	clk := newClock()
	in := NewIncoming(requested(true), "", clk.Now(), Timeouts{})
	c := in.Call()
	if c.State != calld.StateWaiting || c.Direction != calld.DirectionIncoming || c.PeerID != peerID || c.ID != callID ||
		c.AccessHash != hash || !c.Video || c.DeadlineKind != string(TimerRing) || !c.Deadline.Equal(t0.Add(DefaultRing)) {
		t.Fatalf("NewIncoming: %+v", c)
	}
	out := NewOutgoing(peerID, "", randID, true, clk.Now(), Timeouts{Receive: time.Second})
	c = out.Call()
	if c.State != calld.StateRequesting || c.Direction != calld.DirectionOutgoing || c.PeerID != peerID || c.RandomID != randID ||
		!c.Video || c.DeadlineKind != string(TimerReceive) || !c.Deadline.Equal(t0.Add(time.Second)) {
		t.Fatalf("NewOutgoing: %+v", c)
	}
	if m := NewIncoming(nil, "", clk.Now(), Timeouts{}); m.Call().State != calld.StateWaiting {
		t.Fatal("NewIncoming(nil)")
	}
	if in.callbacks != 0 || out.callbacks != 0 {
		t.Fatal("creation ran callbacks")
	}
}
