package updates

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/gotd/td/tg"
)

// The property test runs the engine against a model Telegram server. The
// server owns a random history of commits; a flaky network delivers them
// regrouped into containers, duplicated, reordered and lost; getDifference
// is answered from the history (difference, slice, empty and, in one mode,
// tooLong) and sometimes fails. A fake clock jumps to each Deadline.
//
// At the end the engine must hold the server's state and have dispatched
// every event exactly once (events skipped by differenceTooLong: at most
// once). Along the way: never two requests in flight, pts/qts/seq/date never
// decrease (the model's server state only grows), and pts/qts updates
// dispatched outside differences come in increasing order.
//
// UPDATES_PROP_N sets the number of histories (default 1000),
// UPDATES_PROP_SEED the seed.

type evKind uint8

const (
	evMsg  evKind = iota // updateNewMessage, pts count 1
	evDel                // updateDeleteMessages, pts count 1..3
	evEnc                // updateNewEncryptedMessage, qts
	evCall               // updatePhoneCall, no pts: seq-gated
)

type event struct {
	id    int
	kind  evKind
	pts   int // pts after the event (pts events), qts (evEnc)
	count int
}

type commit struct {
	seq    int // 0: no seq (pts/qts events only)
	date   int // date of a seq commit; 0 otherwise
	events []event
	after  State
}

type packet struct {
	u         tg.UpdatesClass
	maxCommit int
	lost      bool
}

// stats shows what a run exercised, so the test can insist on coverage.
type stats struct {
	histories, events, requests, slices, tooLongs, empties, failures, heldPushes, gaps, lost, dups int
}

type model struct {
	st       *stats
	rng      *rand.Rand
	commits  []commit
	progress int // commits the server has emitted so far
	tooLong  bool
	slice    int
	hole     map[int]bool // event ids skipped by differenceTooLong
}

func (m *model) state() State {
	if m.progress == 0 {
		return base
	}
	return m.commits[m.progress-1].after
}

func genHistory(rng *rand.Rand, n int) []commit {
	s := base
	id := 0
	var out []commit
	ptsEvent := func() event {
		id++
		if rng.IntN(2) == 0 {
			s.Pts++
			return event{id: id, kind: evMsg, pts: s.Pts, count: 1}
		}
		c := 1 + rng.IntN(3)
		s.Pts += c
		return event{id: id, kind: evDel, pts: s.Pts, count: c}
	}
	boxEvent := func() event {
		if rng.IntN(4) == 0 {
			id++
			s.Qts++
			return event{id: id, kind: evEnc, pts: s.Qts, count: 1}
		}
		return ptsEvent()
	}
	for total := 0; total < n; {
		var c commit
		if rng.IntN(100) < 35 {
			s.Seq++
			s.Date += 1 + rng.IntN(3)
			c.seq, c.date = s.Seq, s.Date
			for range 1 + rng.IntN(2) {
				id++
				c.events = append(c.events, event{id: id, kind: evCall})
			}
			for range rng.IntN(3) {
				c.events = append(c.events, boxEvent())
			}
		} else {
			for range 1 + rng.IntN(3) {
				c.events = append(c.events, boxEvent())
			}
		}
		c.after = s
		total += len(c.events)
		out = append(out, c)
	}
	return out
}

func (e event) update() tg.UpdateClass {
	switch e.kind {
	case evMsg:
		return &tg.UpdateNewMessage{Message: message(e.id), Pts: e.pts, PtsCount: 1}
	case evDel:
		ids := []int{e.id}
		for i := 1; i < e.count; i++ {
			ids = append(ids, -i)
		}
		return &tg.UpdateDeleteMessages{Messages: ids, Pts: e.pts, PtsCount: e.count}
	case evEnc:
		return &tg.UpdateNewEncryptedMessage{Message: &tg.EncryptedMessage{RandomID: int64(e.id)}, Qts: e.pts}
	default:
		return call(int64(e.id))
	}
}

// packets regroups the commits into containers as a server would send them.
func (m *model) packets() []packet {
	var out []packet
	for i := 0; i < len(m.commits); {
		k := min(1+m.rng.IntN(3), len(m.commits)-i)
		group := m.commits[i : i+k]
		var evs []tg.UpdateClass
		seqStart, seq, date := 0, 0, 0
		for _, c := range group {
			for _, e := range c.events {
				evs = append(evs, e.update())
			}
			if c.seq != 0 {
				if seqStart == 0 {
					seqStart = c.seq
				}
				seq, date = c.seq, c.date
			}
		}
		m.rng.Shuffle(len(evs), func(a, b int) { evs[a], evs[b] = evs[b], evs[a] })
		var u tg.UpdatesClass
		switch {
		case seq == 0 && len(evs) == 1:
			if nm, ok := evs[0].(*tg.UpdateNewMessage); ok && m.rng.IntN(2) == 0 {
				msg := nm.Message.(*tg.Message)
				u = &tg.UpdateShortMessage{ID: msg.ID, UserID: peerUser, Message: msg.Message, Pts: nm.Pts, PtsCount: 1}
			} else {
				u = &tg.UpdateShort{Update: evs[0]}
			}
		case seq == 0:
			// seq 0 containers carry no date here: getDifference selects
			// seq-gated updates by date, so a date moved past a lost seq
			// container would lose it in any protocol-faithful client.
			u = &tg.Updates{Updates: evs}
		case seqStart == seq && m.rng.IntN(2) == 0:
			u = &tg.Updates{Updates: evs, Seq: seq, Date: date}
		default:
			u = &tg.UpdatesCombined{Updates: evs, SeqStart: seqStart, Seq: seq, Date: date}
		}
		out = append(out, packet{u: u, maxCommit: i + k - 1})
		i += k
	}
	// The network: loss, duplication, local reordering.
	var net []packet
	for _, p := range out {
		switch r := m.rng.IntN(100); {
		case r < 10:
			m.st.lost++
			p.lost = true
			net = append(net, p)
		case r < 20:
			m.st.dups++
			net = append(net, p)
			dup := p
			at := max(0, len(net)-m.rng.IntN(3))
			net = append(net[:at], append([]packet{dup}, net[at:]...)...)
		default:
			net = append(net, p)
		}
	}
	for i := 1; i < len(net); i++ {
		if m.rng.IntN(100) < 20 {
			net[i-1], net[i] = net[i], net[i-1]
		}
	}
	return net
}

// difference answers getDifference from the emitted history.
func (m *model) difference(req *tg.UpdatesGetDifferenceRequest) tg.UpdatesDifferenceClass {
	type sel struct {
		e      event
		commit int
	}
	var picked []sel
	ptsPicked := 0
	for ci := 0; ci < m.progress; ci++ {
		c := m.commits[ci]
		for _, e := range c.events {
			switch {
			case (e.kind == evMsg || e.kind == evDel) && e.pts > req.Pts:
				ptsPicked++
			case e.kind == evEnc && e.pts > req.Qts:
			case e.kind == evCall && c.date > req.Date:
			default:
				continue
			}
			picked = append(picked, sel{e, ci})
		}
	}
	cur := m.state()
	if len(picked) == 0 {
		m.st.empties++
		return &tg.UpdatesDifferenceEmpty{Date: cur.Date, Seq: cur.Seq}
	}
	if m.tooLong && ptsPicked > 6 && m.rng.IntN(2) == 0 {
		for _, p := range picked {
			if p.e.kind == evMsg || p.e.kind == evDel {
				m.hole[p.e.id] = true
			}
		}
		m.st.tooLongs++
		return &tg.UpdatesDifferenceTooLong{Pts: cur.Pts}
	}
	last := m.progress - 1
	if len(picked) > m.slice {
		last = picked[m.slice-1].commit
	}
	d := &tg.UpdatesDifference{}
	for _, p := range picked {
		if p.commit > last {
			break
		}
		switch p.e.kind {
		case evMsg:
			d.NewMessages = append(d.NewMessages, message(p.e.id))
		case evEnc:
			d.NewEncryptedMessages = append(d.NewEncryptedMessages, &tg.EncryptedMessage{RandomID: int64(p.e.id)})
		default:
			d.OtherUpdates = append(d.OtherUpdates, p.e.update())
		}
	}
	// A slice ends at a commit, but the client may already be further in
	// some box (qts, seq) than that commit: the state never goes below
	// what the request shows the client has.
	after := m.commits[last].after
	knownSeq := base.Seq
	for _, c := range m.commits[:m.progress] {
		if c.seq != 0 && c.date <= req.Date {
			knownSeq = c.seq
		}
	}
	s := tg.UpdatesState{Pts: max(after.Pts, req.Pts), Qts: max(after.Qts, req.Qts),
		Seq: max(after.Seq, knownSeq), Date: max(after.Date, req.Date)}
	if last < m.progress-1 {
		m.st.slices++
		return &tg.UpdatesDifferenceSlice{NewMessages: d.NewMessages, NewEncryptedMessages: d.NewEncryptedMessages,
			OtherUpdates: d.OtherUpdates, IntermediateState: s}
	}
	d.State = s
	return d
}

// eventID maps a dispatched update back to its model event.
func eventID(d Dispatch) (id, pts int, box string) {
	switch u := d.Update.(type) {
	case *tg.UpdateNewMessage:
		return u.Message.GetID(), u.Pts, BoxPts
	case *tg.UpdateDeleteMessages:
		return u.Messages[0], u.Pts, BoxPts
	case *tg.UpdateNewEncryptedMessage:
		return int(u.Message.GetRandomID()), u.Qts, BoxQts
	case *tg.UpdatePhoneCall:
		return int(u.PhoneCall.GetID()), 0, BoxSeq
	}
	return -1, 0, ""
}

func runHistory(seed uint64, tooLong bool, st *stats) error {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	st.histories++
	m := &model{st: st, rng: rng, tooLong: tooLong, slice: 3 + rng.IntN(8), hole: map[int]bool{}}
	m.commits = genHistory(rng, 20+rng.IntN(60))
	pkts := m.packets()
	for _, c := range m.commits {
		st.events += len(c.events)
	}

	now := t0
	e := New(base, now, Options{})
	seen := map[int]int{}
	var pend *tg.UpdatesGetDifferenceRequest
	deadline := now.Add(DefaultIdleTimeout)
	prev := base
	lastPts, lastQts := base.Pts, base.Qts
	diffs := 0
	var fail error
	handle := func(o Output, fromDiff bool) {
		if fail != nil {
			return
		}
		for _, d := range o.Dispatch {
			id, pts, box := eventID(d)
			if id < 0 {
				fail = fmt.Errorf("unexpected dispatch %s", describe(d))
				return
			}
			seen[id]++
			if !fromDiff && pts != 0 {
				last := &lastPts
				if box == BoxQts {
					last = &lastQts
				}
				if pts <= *last {
					fail = fmt.Errorf("%s %d dispatched after %d", box, pts, *last)
					return
				}
				*last = pts
			}
		}
		st.gaps += len(o.Gaps)
		s := o.State
		if s.Pts < prev.Pts || s.Qts < prev.Qts || s.Seq < prev.Seq || s.Date < prev.Date {
			fail = fmt.Errorf("state went back: %+v -> %+v", prev, s)
			return
		}
		prev = s
		lastPts, lastQts = max(lastPts, s.Pts), max(lastQts, s.Qts)
		if o.Request != nil {
			if pend != nil {
				fail = fmt.Errorf("second request %s while %s in flight", describeReq(o.Request), describeReq(pend))
				return
			}
			if o.Request.Pts != s.Pts || o.Request.Qts != s.Qts || o.Request.Date != s.Date {
				fail = fmt.Errorf("request %s does not match state %+v", describeReq(o.Request), s)
				return
			}
			pend = o.Request
			st.requests++
		}
		if o.Diff != nil {
			diffs++
		}
		deadline = o.Deadline
	}
	answer := func() {
		req := pend
		pend = nil
		if rng.IntN(100) < 10 {
			st.failures++
			handle(e.DifferenceFailed(errRPC, now), true)
			return
		}
		handle(e.Difference(m.difference(req), now), true)
	}
	fire := func() {
		for pend == nil && !deadline.IsZero() && !deadline.After(now) && fail == nil {
			handle(e.Tick(deadline), false)
		}
	}
	for _, p := range pkts {
		now = now.Add(time.Duration(rng.IntN(200)) * time.Millisecond)
		fire()
		if pend != nil && rng.IntN(100) < 60 {
			answer()
		}
		m.progress = max(m.progress, p.maxCommit+1)
		if !p.lost {
			if pend != nil {
				st.heldPushes++
			}
			handle(e.Push(p.u, now), false)
		}
		if fail != nil {
			return fail
		}
	}
	// Quiesce: answer, then let the clock run to each deadline until a
	// getDifference started after the last packet has finished.
	doneBefore := diffs
	for i := 0; fail == nil; i++ {
		if i > 10000 {
			return fmt.Errorf("no convergence: state %+v pend %v", e.State(), pend != nil)
		}
		if pend != nil {
			now = now.Add(50 * time.Millisecond)
			answer()
			continue
		}
		if diffs > doneBefore {
			break
		}
		now = deadline
		handle(e.Tick(now), false)
	}
	if fail != nil {
		return fail
	}
	// Nothing may stay stuck in a gap buffer: the only timer left is idle.
	if want := now.Add(DefaultIdleTimeout); !deadline.Equal(want) {
		return fmt.Errorf("after the final difference the deadline is %v, want idle %v (something stuck in a buffer)", deadline.Sub(t0), want.Sub(t0))
	}
	want := m.state()
	if got := e.State(); got != want {
		return fmt.Errorf("final state %+v, server %+v", got, want)
	}
	for _, c := range m.commits {
		for _, ev := range c.events {
			n := seen[ev.id]
			if n > 1 || (n == 0 && !m.hole[ev.id]) {
				return fmt.Errorf("event %d (kind %d pts %d) dispatched %d times", ev.id, ev.kind, ev.pts, n)
			}
		}
	}
	return nil
}

func TestPropertyModelServer(t *testing.T) {
	n := 1000
	if v := os.Getenv("UPDATES_PROP_N"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatalf("UPDATES_PROP_N: %v", err)
		}
	}
	seed := uint64(20240101)
	if v := os.Getenv("UPDATES_PROP_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("UPDATES_PROP_SEED: %v", err)
		}
	}
	for _, mode := range []struct {
		name    string
		tooLong bool
	}{{"exact", false}, {"tooLong", true}} {
		t.Run(mode.name, func(t *testing.T) {
			var st stats
			for i := range n {
				s := seed + uint64(i)
				if err := runHistory(s, mode.tooLong, &st); err != nil {
					t.Fatalf("history seed %d: %v (rerun: UPDATES_PROP_SEED=%d UPDATES_PROP_N=1)", s, err, s)
				}
			}
			t.Logf("%+v", st)
			if n >= 100 && (st.slices == 0 || st.failures == 0 || st.heldPushes == 0 || st.gaps == 0 ||
				st.empties == 0 || st.lost == 0 || st.dups == 0 || (mode.tooLong && st.tooLongs == 0)) {
				t.Errorf("the model did not exercise every path: %+v", st)
			}
		})
	}
}
