package fsm

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync"
	"time"

	"github.com/gotd/td/tg"
	lfsm "github.com/looplab/fsm"

	"github.com/calld/calld"
)

// Machine is one call's state machine: the call's record, run through a
// looplab FSM of the table when an input fires an event (runner). Not
// safe for concurrent use.
type Machine struct {
	c calld.Call
	t Timeouts

	// resendable: restored from a record in hanging_up (a discard decided
	// and persisted, no answer recorded), or its discard got no answer
	// (RPCResult TimedOut: a time-out, or a 401), and not yet re-sent. Only such a machine
	// honours Resend, once per restore or time-out: the discard is never
	// re-decided, only the same one sent again while no answer is
	// recorded.
	resendable bool

	callbacks int    // how many callbacks ever ran (tests: Restore runs none)
	last      string // the last event fired (tests)
}

func newMachine(c calld.Call, t Timeouts) *Machine {
	return &Machine{c: c, t: t.WithDefaults()}
}

// runner is a looplab FSM of the table with its enter_state callback,
// built once and lent to one fire at a time (runners): a live call does
// not keep a machine of its own (looplab's maps of the whole table, most
// of a live call's heap), and an input does not build one.
type runner struct {
	f     *lfsm.FSM
	trans []Transition // filled by the enter_state callback during one event
}

var runners = sync.Pool{New: func() any {
	r := &runner{}
	r.f = newLFSM(calld.StateWaiting, lfsm.Callbacks{
		// enter_state runs after the state changed and never calls back
		// into the FSM (daemon.md §5).
		"enter_state": func(_ context.Context, e *lfsm.Event) {
			r.trans = append(r.trans, Transition{From: calld.State(e.Src), To: calld.State(e.Dst), Event: e.Event})
		},
	})
	return r
}}

// run fires event from state on a lent runner and returns the state it
// ends in and the transitions its callback saw.
func run(state calld.State, event string) (calld.State, []Transition, error) {
	r := runners.Get().(*runner)
	defer runners.Put(r)
	r.f.SetState(string(state))
	r.trans = r.trans[:0]
	err := r.f.Event(context.Background(), event)
	var trans []Transition
	if len(r.trans) > 0 {
		trans = append(trans, r.trans...)
	}
	return calld.State(r.f.Current()), trans, err
}

// NewIncoming makes the machine of a new incoming call, in state Waiting
// until phone.receivedCall succeeds (Local Acknowledge). The ring timer
// runs from now. The caller checks Stale before and sends SendReceived (or
// declines) after. username is the caller's, when known ("" if not).
func NewIncoming(req *tg.PhoneCallRequested, username string, now time.Time, t Timeouts) *Machine {
	if req == nil {
		req = &tg.PhoneCallRequested{}
	}
	c := calld.Call{
		ID:            req.ID,
		AccessHash:    req.AccessHash,
		Direction:     calld.DirectionIncoming,
		PeerID:        req.AdminID,
		PeerUsername:  username,
		State:         calld.StateWaiting,
		Video:         videoOf(req),
		CreatedAt:     at(now),
		Date:          req.Date,
		AdminID:       req.AdminID,
		ParticipantID: req.ParticipantID,
		Connections:   []calld.Connection{},
	}
	m := newMachine(c, t)
	m.setDeadline(&m.c, TimerRing, now)
	return m
}

// NewOutgoing makes the machine of a call we place, in state Requesting
// (no server id yet) with the receive timer running. The caller sends
// phone.requestCall. username is the peer's, when known ("" if not).
func NewOutgoing(peerID int64, username string, randomID int32, video bool, now time.Time, t Timeouts) *Machine {
	c := calld.Call{
		Direction:     calld.DirectionOutgoing,
		PeerID:        peerID,
		PeerUsername:  username,
		ParticipantID: peerID,
		State:         calld.StateRequesting,
		Video:         video,
		CreatedAt:     at(now),
		RandomID:      randomID,
		Connections:   []calld.Connection{},
	}
	m := newMachine(c, t)
	m.setDeadline(&m.c, TimerReceive, now)
	return m
}

// Restore rebuilds a machine from a persisted record. No callback runs
// and nothing is re-decided; the record's Deadline still holds.
func Restore(c calld.Call, t Timeouts) (*Machine, error) {
	known := false
	for _, s := range States {
		known = known || c.State == s
	}
	if !known {
		return nil, calld.Errorf(calld.EINVALID, "restore call %d: unknown state %q", c.ID, c.State)
	}
	if c.Direction != calld.DirectionIncoming && c.Direction != calld.DirectionOutgoing {
		return nil, calld.Errorf(calld.EINVALID, "restore call %d: unknown direction %q", c.ID, c.Direction)
	}
	if !stateOf(c.Direction, c.State) {
		return nil, calld.Errorf(calld.EINVALID, "restore call %d: an %s call cannot be %s", c.ID, c.Direction, c.State)
	}
	m := newMachine(c.Clone(), t)
	m.resendable = c.State == calld.StateHangingUp
	return m, nil
}

// Call returns a copy of the record.
func (m *Machine) Call() calld.Call { return m.c.Clone() }

// Due reports the call's timer if its deadline is at or before now.
func (m *Machine) Due(now time.Time) (TimerKind, bool) {
	if !m.c.State.Live() || m.c.Deadline == nil || now.Before(*m.c.Deadline) {
		return "", false
	}
	return TimerKind(m.c.DeadlineKind), true
}

// Handle applies one input. It never panics, never moves backwards and
// nothing leaves Ended.
func (m *Machine) Handle(in Input, now time.Time) Step {
	switch in := in.(type) {
	case Remote:
		return m.remote(in, now)
	case Local:
		return m.local(in, now)
	case Timer:
		return m.timer(in, now)
	case RPCResult:
		return m.rpcResult(in, now)
	}
	return ignored("unknown input %T", in)
}

func ignored(format string, args ...any) Step {
	return Step{Ignored: fmt.Sprintf(format, args...)}
}

func refused(code, format string, args ...any) Step {
	return Step{Err: calld.Errorf(code, format, args...)}
}

// errNotAllowed is fire's answer when the table has no such transition
// from the current state (or not for this direction).
var errNotAllowed = errors.New("not allowed")

// fire runs event through the looplab FSM. On success the record is
// updated: entering a new state sets its timestamps and deadline, then
// mutate (if any) adjusts the record, seeing the record before the event.
func (m *Machine) fire(event string, now time.Time, mutate func(prev calld.Call, c *calld.Call)) (Step, error) {
	if d := eventDir[event]; d != "" && d != m.c.Direction {
		return Step{}, errNotAllowed
	}
	current, trans, err := run(m.c.State, event)
	m.callbacks += len(trans)
	var noTrans lfsm.NoTransitionError
	var invalid lfsm.InvalidEventError
	switch {
	case err == nil:
	case errors.As(err, &noTrans) && noTrans.Err == nil:
		// A self-transition (Src == Dst) succeeded.
	case errors.As(err, &invalid):
		return Step{}, errNotAllowed
	default:
		return Step{}, fmt.Errorf("looplab fsm event %s: %w", event, err)
	}
	m.last = event
	prev := m.c
	next := m.c.Clone()
	next.State = current
	if next.State != prev.State {
		m.enter(&next, now)
	}
	if mutate != nil {
		mutate(prev, &next)
	}
	m.c = next
	st := Step{Changed: !reflect.DeepEqual(prev, next)}
	for i := range trans {
		if t := &trans[i]; t.To == calld.StateHangingUp || t.To == calld.StateEnded {
			t.Reason, t.Duration = next.Reason, next.Duration
		}
	}
	st.Transitions = trans
	return st, nil
}

// step fires event and turns "not allowed" into an ignored input.
func (m *Machine) step(what, event string, now time.Time, mutate func(prev calld.Call, c *calld.Call), actions ...Action) Step {
	from := m.c.State
	st, err := m.fire(event, now, mutate)
	if errors.Is(err, errNotAllowed) {
		return ignored("%s does not apply to an %s call in state %s", what, m.c.Direction, from)
	}
	if err != nil {
		return Step{Err: calld.Errorf(calld.EINTERNAL, "%v", err)}
	}
	st.Actions = append(st.Actions, actions...)
	return st
}

// enter sets what entering c.State implies: timestamps and deadline.
func (m *Machine) enter(c *calld.Call, now time.Time) {
	switch c.State {
	case calld.StateRinging:
		c.RingingAt = at(now)
		m.setDeadline(c, TimerRing, now)
	case calld.StateWaiting, calld.StateAccepting, calld.StateExchangingKeys:
		m.setDeadline(c, TimerReceive, now)
	case calld.StateActive:
		c.ActiveAt = at(now)
		m.setDeadline(c, TimerMaxDuration, now)
	case calld.StateHangingUp:
		m.setDeadline(c, "", now)
		c.HangupPending = false
	case calld.StateEnded:
		c.EndedAt = at(now)
		m.setDeadline(c, "", now)
		c.HangupPending = false
		c.PendingEndedBy = calld.EndedByNone
	}
}

// setDeadline starts timer k from now, or clears the deadline.
func (m *Machine) setDeadline(c *calld.Call, k TimerKind, now time.Time) {
	var d time.Duration
	switch k {
	case TimerReceive:
		d = m.t.Receive
	case TimerRing:
		d = m.t.Ring
	case TimerMaxDuration:
		d = m.t.MaxDuration
	case TimerHangup:
		d = m.t.Hangup
	}
	if d <= 0 {
		c.Deadline, c.DeadlineKind = nil, ""
		return
	}
	c.Deadline, c.DeadlineKind = at(now.Add(d)), string(k)
}

func at(t time.Time) *time.Time { return &t }

// party is what the constructors that name both parties have in common.
// Optional fields and flags are read from the struct fields, not the
// Flags-based getters, so constructors built in Go without SetFlags (a
// simulator, tests) read the same as decoded ones.
type party interface {
	tg.PhoneCallClass
	GetAccessHash() int64
	GetDate() int
	GetAdminID() int64
	GetParticipantID() int64
}

// nilCall reports whether pc is nil or a typed nil pointer.
func nilCall(pc tg.PhoneCallClass) bool {
	switch p := pc.(type) {
	case nil:
		return true
	case *tg.PhoneCallEmpty:
		return p == nil
	case *tg.PhoneCallWaiting:
		return p == nil
	case *tg.PhoneCallRequested:
		return p == nil
	case *tg.PhoneCallAccepted:
		return p == nil
	case *tg.PhoneCall:
		return p == nil
	case *tg.PhoneCallDiscarded:
		return p == nil
	}
	return false
}

// mismatch names the first identity field of p that contradicts c.
func mismatch(c calld.Call, p party) string {
	switch {
	case c.AccessHash != 0 && p.GetAccessHash() != c.AccessHash:
		return fmt.Sprintf("access_hash %d, want %d", p.GetAccessHash(), c.AccessHash)
	case c.AdminID != 0 && p.GetAdminID() != c.AdminID:
		return fmt.Sprintf("admin_id %d, want %d", p.GetAdminID(), c.AdminID)
	case c.ParticipantID != 0 && p.GetParticipantID() != c.ParticipantID:
		return fmt.Sprintf("participant_id %d, want %d", p.GetParticipantID(), c.ParticipantID)
	}
	return ""
}

// learn copies what a constructor tells about the call.
func learn(c *calld.Call, p party) {
	if c.ID == 0 {
		c.ID = p.GetID()
	}
	if c.AccessHash == 0 {
		c.AccessHash = p.GetAccessHash()
	}
	if c.AdminID == 0 {
		c.AdminID = p.GetAdminID()
	}
	if c.ParticipantID == 0 {
		c.ParticipantID = p.GetParticipantID()
	}
	if c.Date == 0 {
		c.Date = p.GetDate()
	}
	c.Video = Video(*c, videoOf(p))
}

// videoOf is the server's video flag of a constructor.
func videoOf(pc tg.PhoneCallClass) bool {
	switch p := pc.(type) {
	case *tg.PhoneCallWaiting:
		return p.Video || p.Flags.Has(6)
	case *tg.PhoneCallRequested:
		return p.Video || p.Flags.Has(6)
	case *tg.PhoneCallAccepted:
		return p.Video || p.Flags.Has(6)
	case *tg.PhoneCall:
		return p.Video || p.Flags.Has(6)
	case *tg.PhoneCallDiscarded:
		return p.Video || p.Flags.Has(6)
	}
	return false
}

func (m *Machine) remote(in Remote, now time.Time) Step {
	pc := in.Call
	if nilCall(pc) {
		return ignored("remote input without a PhoneCall constructor")
	}
	name := pc.TypeName()
	c := m.c
	if c.State == calld.StateEnded {
		return ignored("%s for a call that has ended", name)
	}
	if c.ID != 0 && pc.GetID() != c.ID {
		return ignored("%s is for call %d, not %d", name, pc.GetID(), c.ID)
	}
	switch p := pc.(type) {
	case *tg.PhoneCallEmpty:
		return m.remoteEnd(name, p.ID, nil, now)
	case *tg.PhoneCallDiscarded:
		return m.remoteEnd(name, p.ID, p, now)
	case *tg.PhoneCallRequested:
		return ignored("%s for a known call (duplicate)", name)
	}
	p, ok := pc.(party)
	if !ok {
		return ignored("unknown constructor %s", name)
	}
	if bad := mismatch(c, p); bad != "" {
		if c.ID == 0 || c.State == calld.StateHangingUp {
			// Not provably our call yet, or our discard is already out.
			return ignored("%s with %s", name, bad)
		}
		return m.hangup(CauseFail, calld.ReasonNone, calld.EndedByError, fmt.Sprintf("%s with %s", name, bad), now)
	}
	event, actions, mutate, ok := remoteEvent(c, p)
	if !ok {
		return ignored("unknown constructor %s", name)
	}
	if event == EvDeferredDiscard {
		return m.deferredDiscard(name, p, now)
	}
	return m.step(name, event, now, mutate, actions...)
}

// remoteEvent is the fsm event a phoneCallWaiting, phoneCallAccepted or
// phoneCall of call c makes, with its actions and what it teaches the
// record; false for another constructor.
func remoteEvent(c calld.Call, p party) (event string, actions []Action, mutate func(calld.Call, *calld.Call), ok bool) {
	mutate = func(_ calld.Call, c *calld.Call) { learn(c, p) }
	switch p := p.(type) {
	case *tg.PhoneCallWaiting:
		received := p.ReceiveDate != 0 || p.Flags.Has(0)
		switch {
		case c.Direction == calld.DirectionIncoming:
			event = EvAcceptDone
		case c.HangupPending:
			event = EvDeferredDiscard
		case received:
			event = EvDelivered
		default:
			event = EvRequestSent
		}
	case *tg.PhoneCallAccepted:
		switch {
		case c.Direction == calld.DirectionIncoming:
			event = EvAcceptDone
		case c.HangupPending:
			event = EvDeferredDiscard
		default:
			event = EvPeerAccepted
			actions = append(actions, SendConfirm{})
		}
	case *tg.PhoneCall:
		event = EvConnected
		mutate = func(_ calld.Call, c *calld.Call) {
			learn(c, p)
			c.Connections = connections(p.Connections)
		}
	default:
		return "", nil, nil, false
	}
	return event, actions, mutate, true
}

// deferredDiscard: the server named the call a hang-up was requested for
// while it was being requested; the discard goes out now, with the
// reason and ender recorded then.
func (m *Machine) deferredDiscard(name string, p party, now time.Time) Step {
	var d SendDiscard
	st := m.step(name, EvDeferredDiscard, now, func(prev calld.Call, c *calld.Call) {
		learn(c, p)
		d = discardFields(c, prev.Reason, prev.PendingEndedBy, "", now)
	})
	if len(st.Transitions) > 0 {
		st.Actions = append(st.Actions, d)
	}
	return st
}

// connections copies the relays of a phoneCall (secrets left out).
func connections(in []tg.PhoneConnectionClass) []calld.Connection {
	out := make([]calld.Connection, 0, len(in))
	for _, pc := range in {
		switch k := pc.(type) {
		case *tg.PhoneConnection:
			if k != nil {
				out = append(out, calld.Connection{ID: k.ID, IP: k.IP, IPv6: k.Ipv6, Port: k.Port})
			}
		case *tg.PhoneConnectionWebrtc:
			if k != nil {
				out = append(out, calld.Connection{ID: k.ID, IP: k.IP, IPv6: k.Ipv6, Port: k.Port})
			}
		}
	}
	return out
}

// wireReason maps a received discard reason.
func wireReason(r tg.PhoneCallDiscardReasonClass) calld.Reason {
	switch r.(type) {
	case *tg.PhoneCallDiscardReasonMissed:
		return calld.ReasonMissed
	case *tg.PhoneCallDiscardReasonDisconnect:
		return calld.ReasonDisconnect
	case *tg.PhoneCallDiscardReasonHangup:
		return calld.ReasonHangup
	case *tg.PhoneCallDiscardReasonBusy:
		return calld.ReasonBusy
	}
	return calld.ReasonNone
}

// remoteEnd ends the call on phoneCallDiscarded (d) or phoneCallEmpty.
func (m *Machine) remoteEnd(name string, id int64, d *tg.PhoneCallDiscarded, now time.Time) Step {
	discarded := d != nil
	return m.step(name, EvDiscarded, now, func(prev calld.Call, c *calld.Call) {
		if c.ID == 0 {
			c.ID = id
		}
		var reason calld.Reason
		hint := 0
		if d != nil {
			reason = wireReason(d.Reason)
			hint = d.Duration
			c.NeedRating = c.NeedRating || d.NeedRating || d.Flags.Has(2)
			c.NeedDebug = c.NeedDebug || d.NeedDebug || d.Flags.Has(3)
			c.Video = Video(*c, videoOf(d))
		}
		switch {
		case prev.State == calld.StateHangingUp:
			c.EndedBy = orLocal(prev.PendingEndedBy)
		case discarded && reason == calld.ReasonNone && prev.Direction == calld.DirectionIncoming &&
			(prev.State == calld.StateWaiting || prev.State == calld.StateRinging || prev.State == calld.StateAccepting):
			c.EndedBy = calld.EndedByOtherDevice
		default:
			c.EndedBy = calld.EndedByRemote
		}
		if reason != calld.ReasonNone {
			c.Reason = reason
		}
		switch {
		case prev.State == calld.StateHangingUp:
			// Keep the duration we sent.
		case prev.ActiveAt != nil:
			c.Duration = int(Duration(prev.ActiveAt, now))
		case hint > 0:
			c.Duration = min(hint, math.MaxInt32)
		default:
			c.Duration = 0
		}
	})
}

func orLocal(by calld.EndedBy) calld.EndedBy {
	if by == calld.EndedByNone {
		return calld.EndedByLocal
	}
	return by
}

// discardFields decides and records what our discard carries.
func discardFields(c *calld.Call, reason calld.Reason, by calld.EndedBy, msg string, now time.Time) SendDiscard {
	c.Reason = reason
	c.Duration = int(Duration(c.ActiveAt, now))
	c.ConnectionID = ConnectionID(*c)
	c.Video = Video(*c, false)
	c.PendingEndedBy = orLocal(by)
	if msg != "" {
		c.Error = msg
	}
	return SendDiscard{Reason: c.Reason, Duration: int32(c.Duration), ConnectionID: c.ConnectionID, Video: c.Video}
}

// hangup starts our discard: HangingUp with SendDiscard, or, while
// requesting, a pending hang-up until the id arrives.
func (m *Machine) hangup(cause Cause, requested calld.Reason, by calld.EndedBy, msg string, now time.Time) Step {
	reason := DiscardReason(m.c, requested, cause)
	what := "hang-up (" + string(cause) + ")"
	if m.c.State == calld.StateRequesting {
		return m.step(what, EvDeferHangup, now, func(_ calld.Call, c *calld.Call) {
			c.HangupPending = true
			c.Reason = reason
			c.PendingEndedBy = orLocal(by)
			if msg != "" {
				c.Error = msg
			}
			m.setDeadline(c, TimerHangup, now)
		})
	}
	var d SendDiscard
	st := m.step(what, EvDiscard, now, func(_ calld.Call, c *calld.Call) {
		d = discardFields(c, reason, by, msg, now)
	})
	if len(st.Transitions) > 0 {
		st.Actions = append(st.Actions, d)
	}
	return st
}

// end finishes the call without any RPC (event aborted or
// hangup_expired).
func (m *Machine) end(what, event string, by calld.EndedBy, reason calld.Reason, msg string, now time.Time) Step {
	return m.step(what, event, now, func(_ calld.Call, c *calld.Call) {
		c.EndedBy = by
		c.Reason = reason
		if msg != "" {
			c.Error = msg
		}
		c.Duration = int(Duration(c.ActiveAt, now))
	})
}

func (m *Machine) local(in Local, now time.Time) Step {
	c := m.c
	switch in.Action {
	case Acknowledge:
		return m.acknowledge(now)
	case Confirm:
		return m.step("confirm", EvConfirmSent, now, func(_ calld.Call, c *calld.Call) {
			m.setDeadline(c, TimerReceive, now)
		})
	case Accept:
		switch {
		case c.Direction != calld.DirectionIncoming:
			return refused(calld.EINVALID, "call %d is outgoing: only incoming calls can be accepted", c.ID)
		case !c.State.Live() || c.State == calld.StateHangingUp:
			return refused(calld.ECONFLICT, "call %d is %s", c.ID, c.State)
		case c.State != calld.StateRinging:
			return refused(calld.ECONFLICT, "call %d is %s, not ringing", c.ID, c.State)
		}
		return m.step("accept", EvAccept, now, nil, SendAccept{})
	case Discard, Decline, Fail:
		return m.localHangup(in, now)
	case SetConnection:
		switch {
		case c.State != calld.StateActive:
			return refused(calld.ECONFLICT, "call %d is %s, not active", c.ID, c.State)
		case in.ConnectionID == 0 || !hasConnection(c.Connections, in.ConnectionID):
			return refused(calld.EINVALID, "connection %d is not one of call %d's connections", in.ConnectionID, c.ID)
		}
		return m.step("set_connection", EvSetConnection, now, func(_ calld.Call, c *calld.Call) {
			c.ConnectionID = in.ConnectionID
		})
	case SetVideo:
		if !c.State.Live() || c.State == calld.StateHangingUp {
			return refused(calld.ECONFLICT, "call %d is %s", c.ID, c.State)
		}
		if !in.Video || (c.LocalVideo && c.Video) {
			return Step{} // video is sticky: nothing to change
		}
		m.c.LocalVideo, m.c.Video = true, true
		return Step{Changed: true}
	case Resend:
		if c.State == calld.StateHangingUp && !m.resendable {
			return ignored("resend: this discard was already sent since the record was loaded")
		}
		var d SendDiscard
		st := m.step("resend", EvResend, now, func(_ calld.Call, c *calld.Call) {
			d = SendDiscard{Reason: c.Reason, Duration: int32(c.Duration), ConnectionID: c.ConnectionID, Video: c.Video}
		})
		if st.Ignored == "" && st.Err == nil {
			st.Actions = append(st.Actions, d)
			st.Changed = false
			m.resendable = false
		}
		return st
	}
	return refused(calld.EINVALID, "unknown local action %q", in.Action)
}

func (m *Machine) localHangup(in Local, now time.Time) Step {
	c := m.c
	internal := in.Action == Fail // an internal report: no error to a requester
	if in.Reason != calld.ReasonNone && in.Reason != calld.ReasonAuto && !ValidReason(in.Reason) {
		return refused(calld.EINVALID, "unknown discard reason %q", in.Reason)
	}
	if in.Action == Decline && c.Direction != calld.DirectionIncoming {
		return refused(calld.EINVALID, "call %d is outgoing: only incoming calls can be declined", c.ID)
	}
	var conflict string
	switch {
	case c.State == calld.StateEnded:
		conflict = "has already ended"
	case c.State == calld.StateHangingUp:
		conflict = "is already hanging up"
	case c.HangupPending:
		conflict = "already has a hang-up pending"
	case in.Action == Decline && accepted(c):
		conflict = "was already accepted: discard it instead"
	}
	if conflict != "" {
		if internal {
			return ignored("failure report: call %s", conflict)
		}
		return refused(calld.ECONFLICT, "call %d %s", c.ID, conflict)
	}
	switch in.Action {
	case Decline:
		return m.hangup(CauseDecline, in.Reason, calld.EndedByLocal, "", now)
	case Fail:
		msg := in.Message
		if msg == "" {
			msg = "local failure"
		}
		return m.hangup(CauseFail, in.Reason, calld.EndedByError, msg, now)
	}
	return m.hangup(CauseDiscard, in.Reason, calld.EndedByLocal, "", now)
}

func (m *Machine) acknowledge(now time.Time) Step {
	return m.step("acknowledge", EvAcknowledge, now, nil)
}

func (m *Machine) timer(in Timer, now time.Time) Step {
	c := m.c
	switch {
	case !c.State.Live():
		return ignored("%s timer: the call has ended", in.Kind)
	case c.Deadline == nil || TimerKind(c.DeadlineKind) != in.Kind:
		return ignored("%s timer: not running (running: %q)", in.Kind, c.DeadlineKind)
	case now.Before(*c.Deadline):
		return ignored("%s timer: not due until %s", in.Kind, c.Deadline.Format(time.RFC3339Nano))
	}
	switch in.Kind {
	case TimerHangup:
		return m.end("hangup timer", EvHangupExpired, orLocal(c.PendingEndedBy), c.Reason, "", now)
	case TimerMaxDuration:
		return m.hangup(CauseMaxDuration, calld.ReasonNone, calld.EndedByTimeout, "", now)
	}
	return m.hangup(CauseTimeout, calld.ReasonNone, calld.EndedByTimeout, "", now)
}

func errText(method Method, err error) string {
	return fmt.Sprintf("%s: %v", method, err)
}

func (m *Machine) rpcResult(in RPCResult, now time.Time) Step {
	what := string(in.Method) + " result"
	if !m.c.State.Live() {
		return ignored("%s after the call ended: the record stays", what)
	}
	switch in.Method {
	case MethodReceived:
		return m.receivedResult(in, what, now)
	case MethodRequest:
		return m.requestResult(in, what, now)
	case MethodAccept, MethodConfirm:
		return m.acceptResult(in, what, now)
	case MethodDiscard:
		return m.discardResult(in, what, now)
	}
	return ignored("result of unknown method %q", in.Method)
}

// receivedResult: the answer to phone.receivedCall.
func (m *Machine) receivedResult(in RPCResult, what string, now time.Time) Step {
	c := m.c
	if c.Direction != calld.DirectionIncoming || c.State != calld.StateWaiting {
		return ignored("%s in state %s", what, c.State)
	}
	switch {
	case in.Err == nil:
		return m.acknowledge(now)
	case tg.IsCallAlreadyDeclined(in.Err):
		return m.end(what, EvAborted, calld.EndedByRemote, calld.ReasonMissed, "", now)
	case tg.IsCallAlreadyAccepted(in.Err):
		return m.end(what, EvAborted, calld.EndedByOtherDevice, calld.ReasonNone, "", now)
	}
	return m.end(what, EvAborted, calld.EndedByError, calld.ReasonNone, errText(in.Method, in.Err), now)
}

// requestResult: the answer to phone.requestCall.
func (m *Machine) requestResult(in RPCResult, what string, now time.Time) Step {
	c := m.c
	if c.State != calld.StateRequesting {
		return ignored("%s in state %s", what, c.State)
	}
	if in.Err == nil {
		return ignored("%s: its phoneCallWaiting comes as a Remote input", what)
	}
	return m.end(what, EvAborted, calld.EndedByError, c.Reason, errText(in.Method, in.Err), now)
}

// acceptResult: the answer to phone.acceptCall or phone.confirmCall.
func (m *Machine) acceptResult(in RPCResult, what string, now time.Time) Step {
	c := m.c
	want, dir := calld.StateAccepting, calld.DirectionIncoming
	if in.Method == MethodConfirm {
		want, dir = calld.StateExchangingKeys, calld.DirectionOutgoing
	}
	if c.State != want || c.Direction != dir {
		return ignored("%s in state %s", what, c.State)
	}
	switch {
	case in.Err == nil && in.Method == MethodAccept:
		return m.step(what, EvAcceptDone, now, nil)
	case in.Err == nil:
		return Step{} // the phoneCall comes as a Remote input
	case tg.IsCallAlreadyDeclined(in.Err):
		return m.end(what, EvAborted, calld.EndedByRemote, calld.ReasonNone, "", now)
	case tg.IsCallAlreadyAccepted(in.Err) && in.Method == MethodAccept:
		return m.end(what, EvAborted, calld.EndedByOtherDevice, calld.ReasonNone, "", now)
	}
	return m.hangup(CauseFail, calld.ReasonNone, calld.EndedByError, errText(in.Method, in.Err), now)
}

// discardResult: the answer to phone.discardCall.
func (m *Machine) discardResult(in RPCResult, what string, now time.Time) Step {
	c := m.c
	if c.State != calld.StateHangingUp {
		return ignored("%s in state %s", what, c.State)
	}
	if in.TimedOut {
		// No answer recorded: the server may never have executed
		// it. The call stays hanging_up with its reason; the same
		// discard may be sent again (Resend), once.
		m.resendable = true
		return Step{}
	}
	by, msg := orLocal(c.PendingEndedBy), ""
	switch {
	case in.Err == nil:
	case tg.IsCallAlreadyAccepted(in.Err):
		by = calld.EndedByOtherDevice
	case tg.IsCallAlreadyDeclined(in.Err):
		// The server already executed this discard (its answer
		// was lost and the request re-sent, or a restart re-sent
		// it): that is its success (CONTRACT §5.1).
	default:
		by, msg = calld.EndedByError, errText(in.Method, in.Err)
	}
	return m.step(what, EvDiscardDone, now, func(_ calld.Call, c *calld.Call) {
		c.EndedBy = by
		if msg != "" {
			c.Error = msg
		}
	})
}
