package fsm

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/gotd/td/tg"

	"github.com/calld/calld"
)

// rank orders the states along the lifecycle: no transition goes down.
func rank(s calld.State) int { return slices.Index(States, s) }

// fuzzInput decodes one input from an opcode and an argument byte.
func fuzzInput(dir calld.Direction, op, arg byte) (Input, bool) {
	admin, participant := parties(dir)
	id, ah := callID, hash
	if arg&0x40 != 0 {
		id = otherID
	}
	if arg&0x80 != 0 {
		ah = hash + 1
	}
	reasons := []tg.PhoneCallDiscardReasonClass{nil, &tg.PhoneCallDiscardReasonMissed{},
		&tg.PhoneCallDiscardReasonBusy{}, &tg.PhoneCallDiscardReasonHangup{}, &tg.PhoneCallDiscardReasonDisconnect{}}
	errs := []error{nil, rpcErr(400, "CALL_ALREADY_DECLINED"), rpcErr(400, "CALL_ALREADY_ACCEPTED"),
		rpcErr(400, "CALL_PEER_INVALID"), errPlain}
	switch op % 10 {
	case 0:
		w := &tg.PhoneCallWaiting{ID: id, AccessHash: ah, AdminID: admin, ParticipantID: participant, Video: arg&2 != 0}
		if arg&1 != 0 {
			w.SetReceiveDate(1)
		}
		return Remote{Call: w, FromRPC: arg&4 != 0}, false
	case 1:
		return remote(&tg.PhoneCallAccepted{ID: id, AccessHash: ah, AdminID: admin, ParticipantID: participant}), false
	case 2:
		pc := phoneCallPC(dir)
		pc.ID, pc.AccessHash = id, ah
		return remote(pc), false
	case 3:
		d := &tg.PhoneCallDiscarded{ID: id, Reason: reasons[int(arg)%len(reasons)], Duration: int(arg & 0x3f),
			NeedRating: arg&8 != 0, Video: arg&2 != 0}
		return remote(d), false
	case 4:
		return remote(&tg.PhoneCallEmpty{ID: id}), false
	case 5:
		r := requested(arg&1 != 0)
		r.ID = id
		return remote(r), false
	case 6:
		actions := []LocalAction{Acknowledge, Accept, Confirm, Discard, Decline, Fail, SetConnection, SetVideo, Resend}
		rs := []calld.Reason{calld.ReasonNone, calld.ReasonAuto, calld.ReasonMissed, calld.ReasonBusy, calld.ReasonHangup, calld.ReasonDisconnect, "bogus"}
		conns := []int64{relayA, relayB, 0, 1}
		a := actions[int(arg)%len(actions)]
		return Local{Action: a, Reason: rs[int(arg>>2)%len(rs)], ConnectionID: conns[int(arg>>4)%len(conns)],
			Video: arg&0x20 != 0}, a == Resend
	case 7:
		kinds := []TimerKind{TimerReceive, TimerRing, TimerMaxDuration, TimerHangup}
		return Timer{Kind: kinds[int(arg)%len(kinds)]}, false
	case 8:
		methods := []Method{MethodReceived, MethodRequest, MethodAccept, MethodConfirm, MethodDiscard}
		return RPCResult{Method: methods[int(arg)%len(methods)], Err: errs[int(arg>>3)%len(errs)]}, false
	}
	return nil, false // 9: restore, handled by the caller
}

// FuzzMachine feeds random input sequences (with clock jumps both ways and
// restores from JSON in between) and checks the invariants: no panic,
// nothing leaves ended, no transition goes backwards, at most one
// SendDiscard per call (Resend excepted), durations never negative,
// ignored or refused inputs change nothing, deadlines are kept.
func FuzzMachine(f *testing.F) {
	f.Add([]byte{0, 0, 0, 2, 0, 1, 2, 1, 2, 2, 0, 2, 6, 3, 200})
	f.Add([]byte{1, 6, 0, 1, 6, 1, 1, 8, 2, 1, 2, 0, 5, 6, 3, 2, 3, 3, 2})
	f.Add([]byte{0, 6, 3, 1, 0, 0, 1, 9, 0, 0, 8, 4, 1})
	f.Add([]byte{1, 7, 1, 127, 7, 1, 127, 9, 0, 0, 8, 4, 0})
	f.Add([]byte{0, 1, 0, 1, 6, 2, 1, 2, 0, 1, 6, 6, 1, 6, 3, 100, 6, 8, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		dir := calld.DirectionOutgoing
		if data[0]&1 == 1 {
			dir = calld.DirectionIncoming
		}
		to := Timeouts{MaxDuration: time.Duration(data[0]>>1) * time.Second}
		clk := newClock()
		m := create(dir, clk, to)
		sent := 0
		for i := 1; i+1 < len(data); i += 3 {
			op, arg := data[i], data[i+1]
			delta := time.Duration(0)
			if i+2 < len(data) {
				delta = time.Duration(int8(data[i+2])) * 500 * time.Millisecond
			}
			now := clk.Advance(delta)
			before := m.Call()
			in, resend := fuzzInput(dir, op, arg)
			if in == nil {
				b, err := json.Marshal(before)
				if err != nil {
					t.Fatal(err)
				}
				var c calld.Call
				if err := json.Unmarshal(b, &c); err != nil {
					t.Fatal(err)
				}
				r, err := Restore(c, to)
				if err != nil {
					t.Fatalf("restore of %+v: %v", c, err)
				}
				m = r
				continue
			}
			st := m.Handle(in, now)
			after := m.Call()
			if st.Ignored != "" || st.Err != nil {
				if st.Changed || len(st.Actions) > 0 || len(st.Transitions) > 0 || !reflect.DeepEqual(before, after) {
					t.Fatalf("%#v ignored/refused (%q, %v) yet changed something: %+v", in, st.Ignored, st.Err, st)
				}
			}
			if st.Changed == reflect.DeepEqual(before, after) {
				t.Fatalf("%#v: Changed=%v disagrees with the record", in, st.Changed)
			}
			if before.State == calld.StateEnded && !reflect.DeepEqual(before, after) {
				t.Fatalf("%#v changed an ended call", in)
			}
			prev := before.State
			for _, tr := range st.Transitions {
				if tr.From != prev || rank(tr.To) <= rank(tr.From) {
					t.Fatalf("bad transition %+v after %s", tr, prev)
				}
				prev = tr.To
			}
			if prev != after.State {
				t.Fatalf("transitions end in %s, state %s", prev, after.State)
			}
			for _, d := range discards(st) {
				if d.Duration < 0 {
					t.Fatalf("negative duration %+v", d)
				}
				if !resend {
					sent++
				}
			}
			if sent > 1 {
				t.Fatalf("%d SendDiscard for one call", sent)
			}
			if after.Duration < 0 {
				t.Fatalf("negative duration %d", after.Duration)
			}
			switch after.State {
			case calld.StateEnded:
				if after.EndedAt == nil || after.Deadline != nil || after.EndedBy == calld.EndedByNone {
					t.Fatalf("ended without ended_at/ended_by or with a deadline: %+v", after)
				}
			case calld.StateHangingUp:
				if after.Deadline != nil || after.PendingEndedBy == calld.EndedByNone {
					t.Fatalf("hanging_up: %+v", after)
				}
			case calld.StateActive:
				if (after.Deadline != nil) != (to.MaxDuration > 0) {
					t.Fatalf("active deadline %v with max_duration %s", after.Deadline, to.MaxDuration)
				}
			default:
				if after.Deadline == nil {
					t.Fatalf("%s without a deadline", after.State)
				}
			}
		}
	})
}
