package updates

import (
	"fmt"
	"testing"
	"time"

	"github.com/gotd/td/tg"
)

// FuzzEngine decodes the fuzz bytes into a sequence of engine calls (pushes
// of every Updates constructor with pts/qts/seq near the local state or
// invalid, own results, affected, differences of every type, failures,
// ticks, reconnects) and checks after every call:
//
//   - no panic; Output.State == State();
//   - date never decreases;
//   - pts, qts and seq never decrease, except in the Output of a
//     Difference call, whose server state (difference.state,
//     differenceSlice.intermediate_state, differenceTooLong.pts,
//     differenceEmpty.seq) is authoritative;
//   - between two such backward moves of pts, a pts value of a common-box
//     update with pts_count > 0 is dispatched at most once, and never
//     beyond Output.State.Pts (same for qts);
//   - at most one request in flight, and it asks from the current state;
//   - while the caller is busy (Busy .. Idle) the input clock stands
//     still: a Tick fires no timer that was not already due when the busy
//     spell began (a backlog is never a gap).
//
// Run: go test -run '^$' -fuzz FuzzEngine -fuzztime 60s ./updates
func FuzzEngine(f *testing.F) {
	f.Add([]byte{0, 1, 1, 0, 3, 1, 9, 200, 7, 1, 5})
	f.Add([]byte{2, 2, 1, 4, 8, 9, 255, 7, 0, 3, 3, 3})
	f.Add([]byte{4, 0, 0, 7, 2, 10, 0, 9, 9, 7, 3, 5, 5})
	f.Add([]byte{3, 5, 2, 1, 1, 1, 6, 2, 1, 11, 7, 1, 2, 0, 0, 9, 80})
	// A seq gap opens, the caller turns busy, 0.7 s pass, Tick.
	f.Add([]byte{0, 2, 2, 1, 0, 0, 3, 1, 0, 13, 7, 9, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := fuzzRun(data); err != nil {
			t.Fatal(err)
		}
	})
}

type fuzzReader struct {
	data []byte
	i    int
}

func (r *fuzzReader) more() bool { return r.i < len(r.data) }

func (r *fuzzReader) byte() int {
	if r.i >= len(r.data) {
		return 0
	}
	b := r.data[r.i]
	r.i++
	return int(b)
}

// rel returns a small signed offset in [-k, k], or a wild value now and then.
func (r *fuzzReader) rel(k int) int {
	b := r.byte()
	switch b {
	case 255:
		return -1000
	case 254:
		return 1000
	}
	return int(int8(b)) % (k + 1)
}

func fuzzUpdate(r *fuzzReader, s State) tg.UpdateClass {
	switch r.byte() % 7 {
	case 0:
		return newMsg(max(s.Pts+r.rel(6), 0), r.byte()%4)
	case 1:
		p := s.Pts + r.rel(6)
		c := r.byte() % 4
		if p < c {
			p = c
		}
		return del(p, c)
	case 2:
		return enc(s.Qts + r.rel(4))
	case 3:
		return call(int64(r.byte()))
	case 4:
		return chanMsg(int64(r.byte()%3+1), 200+r.rel(5), 1)
	case 5:
		if r.byte()%4 == 0 {
			return &tg.UpdatePtsChanged{}
		}
		return &tg.UpdateUserTyping{UserID: 1, Action: &tg.SendMessageTypingAction{}}
	default:
		return &tg.UpdateChannelParticipant{ChannelID: 5, Qts: max(0, s.Qts+r.rel(3))}
	}
}

func fuzzUpdates(r *fuzzReader, s State) []tg.UpdateClass {
	n := 1 + r.byte()%3
	out := make([]tg.UpdateClass, 0, n)
	for range n {
		out = append(out, fuzzUpdate(r, s))
	}
	return out
}

func fuzzDifference(r *fuzzReader, s State) tg.UpdatesDifferenceClass {
	state := tg.UpdatesState{Pts: s.Pts + r.rel(5), Qts: s.Qts + r.rel(3), Seq: s.Seq + r.rel(3), Date: s.Date + r.rel(20)}
	var other []tg.UpdateClass
	var ms []tg.MessageClass
	for range r.byte() % 4 {
		other = append(other, fuzzUpdate(r, s))
	}
	for range r.byte() % 3 {
		ms = append(ms, message(r.byte()))
	}
	switch r.byte() % 5 {
	case 0:
		return &tg.UpdatesDifferenceEmpty{Date: state.Date, Seq: state.Seq}
	case 1:
		return &tg.UpdatesDifference{NewMessages: ms, OtherUpdates: other, State: state}
	case 2:
		return &tg.UpdatesDifferenceSlice{NewMessages: ms, OtherUpdates: other, IntermediateState: state}
	case 3:
		return &tg.UpdatesDifferenceTooLong{Pts: state.Pts}
	default:
		return nil
	}
}

// adopted returns the pts and qts a valid difference makes the engine adopt.
func adopted(d tg.UpdatesDifferenceClass, s State) (pts, qts int) {
	ok := func(st tg.UpdatesState) bool { return st.Pts >= 0 && st.Qts >= 0 && st.Seq >= 0 && st.Date >= 0 }
	switch d := d.(type) {
	case *tg.UpdatesDifference:
		if ok(d.State) {
			return d.State.Pts, d.State.Qts
		}
	case *tg.UpdatesDifferenceSlice:
		if ok(d.IntermediateState) {
			return d.IntermediateState.Pts, d.IntermediateState.Qts
		}
	case *tg.UpdatesDifferenceTooLong:
		if d.Pts >= 0 {
			return d.Pts, s.Qts
		}
	}
	return s.Pts, s.Qts
}

func fuzzRun(data []byte) error {
	r := &fuzzReader{data: data}
	now := t0
	e := New(base, now, Options{})
	prev := e.State()
	seenPts, seenQts := map[int]bool{}, map[int]bool{}
	inFlight := false
	deadline := now.Add(DefaultIdleTimeout)
	busy, dueAtBusy := false, false
	for step := 0; r.more() && step < 500; step++ {
		now = now.Add(time.Duration(r.byte()%8) * 100 * time.Millisecond)
		s := e.State()
		var o Output
		isDiff, answers := false, false
		adoptPts, adoptQts := s.Pts, s.Qts
		op := r.byte() % 15
		switch op {
		case 0:
			o = e.Push(short(fuzzUpdate(r, s)), now)
		case 1:
			o = e.Push(shortMsg(max(0, s.Pts+r.rel(4))), now)
		case 2:
			o = e.Push(ups(max(0, s.Seq+r.rel(3))*(r.byte()%2), s.Date+r.rel(10), fuzzUpdates(r, s)...), now)
		case 3:
			start := s.Seq + r.rel(3)
			o = e.Push(combined(start, start+r.rel(2), s.Date+r.rel(10), fuzzUpdates(r, s)...), now)
		case 4:
			o = e.Push(&tg.UpdatesTooLong{}, now)
		case 5:
			o = e.Own(&tg.UpdateShortSentMessage{ID: 1, Pts: max(0, s.Pts+r.rel(3)), PtsCount: r.byte() % 3}, now)
		case 6:
			o = e.Affected(s.Pts+r.rel(3), r.byte()%3, now)
		case 7:
			isDiff, answers = true, true
			d := fuzzDifference(r, s)
			if e.InFlight() {
				adoptPts, adoptQts = adopted(d, s)
			}
			o = e.Difference(d, now)
		case 8:
			answers = true
			o = e.DifferenceFailed(errRPC, now)
		case 9:
			if !deadline.IsZero() && r.byte()%2 == 0 && deadline.After(now) {
				now = deadline
			}
			o = e.Tick(now)
		case 10:
			o = e.Reconnected(now)
		case 11:
			o = e.Start(now)
		case 13:
			if !busy {
				busy, dueAtBusy = true, !deadline.IsZero() && !now.Before(deadline)
			}
			e.Busy(now)
			o = e.Tick(now)
		case 14:
			busy = false
			o = e.Idle(now)
		default:
			o = e.Own(ups(0, s.Date+r.rel(5), fuzzUpdates(r, s)...), now)
		}
		desc := fmt.Sprintf("step %d", step)
		if busy && !dueAtBusy && op == 9 && o.Request != nil {
			return fmt.Errorf("%s: Tick while busy fired a timer: %s", desc, describeReq(o.Request))
		}
		if o.State != e.State() {
			return fmt.Errorf("%s: Output.State %+v != State() %+v", desc, o.State, e.State())
		}
		if o.State.Date < prev.Date {
			return fmt.Errorf("%s: date went back %d -> %d", desc, prev.Date, o.State.Date)
		}
		back := o.State.Pts < prev.Pts || o.State.Qts < prev.Qts || o.State.Seq < prev.Seq
		if back && !isDiff {
			return fmt.Errorf("%s: state went back outside a difference: %+v -> %+v", desc, prev, o.State)
		}
		// A difference may move pts/qts back and held inputs may then move
		// them forward again within the same Output: what counts is the
		// state the difference adopted.
		if adoptPts < prev.Pts {
			seenPts = map[int]bool{}
		}
		if adoptQts < prev.Qts {
			seenQts = map[int]bool{}
		}
		for _, d := range o.Dispatch {
			if pts, count, ok := tg.IsPtsUpdate(d.Update); ok && pts > 0 && count > 0 {
				if seenPts[pts] {
					return fmt.Errorf("%s: pts %d dispatched twice", desc, pts)
				}
				if pts > o.State.Pts {
					return fmt.Errorf("%s: pts %d dispatched beyond state %d", desc, pts, o.State.Pts)
				}
				seenPts[pts] = true
			}
			if qts, ok := tg.IsQtsUpdate(d.Update); ok && qts > 0 {
				if seenQts[qts] {
					return fmt.Errorf("%s: qts %d dispatched twice", desc, qts)
				}
				if qts > o.State.Qts {
					return fmt.Errorf("%s: qts %d dispatched beyond state %d", desc, qts, o.State.Qts)
				}
				seenQts[qts] = true
			}
		}
		if answers && inFlight {
			inFlight = false
		}
		if o.Request != nil {
			if inFlight {
				return fmt.Errorf("%s: second request %s while one is in flight", desc, describeReq(o.Request))
			}
			if o.Request.Pts != o.State.Pts || o.Request.Qts != o.State.Qts || o.Request.Date != o.State.Date {
				// The request is built before held inputs are replayed
				// only when those inputs are held again, so it must
				// match the state the engine ended with.
				return fmt.Errorf("%s: request %s does not match state %+v", desc, describeReq(o.Request), o.State)
			}
			inFlight = true
		}
		if inFlight != e.InFlight() {
			return fmt.Errorf("%s: harness in flight %v, engine %v", desc, inFlight, e.InFlight())
		}
		prev = o.State
		deadline = o.Deadline
	}
	return nil
}
