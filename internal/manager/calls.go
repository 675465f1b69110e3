package manager

import (
	"github.com/gotd/td/tg"
	"github.com/rs/zerolog"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/fsm"
	"github.com/calld/calld/internal/logging"
	"github.com/calld/calld/internal/mtproto/callkey"
	"github.com/calld/calld/internal/store"
)

// onPhoneCall routes a PhoneCall constructor, pushed or from an RPC
// result, to its call; users are those of the Updates that carried it.
func (m *Manager) onPhoneCall(pc tg.PhoneCallClass, users []tg.UserClass, fromRPC bool) {
	id := pc.GetID()
	if c := m.calls[id]; c != nil {
		m.remote(c, pc, fromRPC)
		return
	}
	req, ok := pc.(*tg.PhoneCallRequested)
	if !ok {
		if len(m.requested) > 0 {
			// Possibly ours, ahead of the requestCall result:
			// replayed once the id is known.
			m.early[id] = append(m.early[id], pc)
			return
		}
		if r := m.abandonedFor(pc); r != nil && m.adopt(r, pc) {
			// A call the server created after calld gave up waiting.
			m.dropRequest(r.RandomID)
			return
		}
		m.log.Debug().Str(logging.FieldEvent, logging.EventCallIgnored).Str(logging.FieldCallID, itoa(id)).
			Str(logging.FieldConstructor, pc.TypeName()).Msg("update for an unknown call ignored")
		return
	}
	m.incoming(req, usernameOf(users, req.AdminID))
}

// usernameOf is user id's username among users (the users of the Updates
// that carried a call), "" when they do not name it.
func usernameOf(users []tg.UserClass, id int64) string {
	for _, u := range users {
		if u, ok := u.(*tg.User); ok && u.ID == id {
			return u.Username
		}
	}
	return ""
}

// remote feeds a constructor to a known call, first completing the key
// exchange when the constructor carries the peer's key material.
func (m *Manager) remote(c *call, pc tg.PhoneCallClass, fromRPC bool) {
	if c.secrets != nil {
		switch p := pc.(type) {
		case *tg.PhoneCallAccepted:
			if c.secrets.accepted == nil {
				c.secrets.accepted = p
				m.secretsChanged(c)
			}
		case *tg.PhoneCall:
			if c.m.Call().State == calld.StateAccepting && c.secrets.incoming == nil {
				// The peer's key arrived ahead of our acceptCall's
				// result: hold it until we have our half.
				c.secrets.early = append(c.secrets.early, pc)
				return
			}
			if c.secrets.incoming != nil && c.secrets.key == nil {
				key, fp, err := callkey.CompleteIncoming(c.secrets.incoming, p)
				if err != nil {
					m.log.Warn().Str(logging.FieldEvent, logging.EventCallIgnored).Str(logging.FieldCallID, itoa(p.ID)).
						Str(logging.FieldErr, err.Error()).Msg("key exchange failed")
					m.apply(c, fsm.Local{Action: fsm.Fail, Message: err.Error()})
					return
				}
				c.secrets.setKey(Key{Bytes: key, Fingerprint: fp}, p)
				m.secretsChanged(c)
			}
		}
	}
	m.apply(c, fsm.Remote{Call: pc, FromRPC: fromRPC})
}

// incoming handles a new phoneCallRequested from the caller named
// username (when the Updates carried it): policies first, then ring.
func (m *Manager) incoming(req *tg.PhoneCallRequested, username string) {
	now := m.now()
	if m.known(req.ID) {
		// An ended call, repeated by a getDifference (updatePhoneCall
		// is selected by date) or after a restart.
		m.log.Debug().Str(logging.FieldEvent, logging.EventCallIgnored).Str(logging.FieldCallID, itoa(req.ID)).
			Str(logging.FieldConstructor, req.TypeName()).Msg("request for a call already ended")
		return
	}
	c := &call{m: fsm.NewIncoming(req, username, now, m.timeouts), secrets: &secrets{gAHash: req.GAHash}}
	m.calls[req.ID] = c
	m.secretsChanged(c)
	m.created(c)
	if fsm.Stale(req.Date, m.timeouts.Ring, m.serverNow()) {
		// Older than the ring timeout on the server's clock (a late
		// delivery): not rung, but recorded and refused, so that the
		// caller is not left ringing.
		m.log.Info().Str(logging.FieldEvent, logging.EventLog).Str(logging.FieldCallID, itoa(req.ID)).
			Int(logging.FieldDate, req.Date).Msg("stale incoming call (older than the ring timeout on the server's clock): refused (missed), not rung")
		m.apply(c, fsm.Local{Action: fsm.Decline, Reason: calld.ReasonMissed})
		return
	}
	switch {
	case m.cfg.Policy.Reject:
		m.apply(c, fsm.Local{Action: fsm.Decline, Reason: calld.ReasonBusy})
	case m.cfg.Policy.RejectWhenBusy && m.busyExcept(req.ID):
		m.apply(c, fsm.Local{Action: fsm.Decline, Reason: calld.ReasonBusy})
	default:
		m.rpc(c, fsm.SendReceived{})
	}
}

// busyExcept reports whether a live call other than id exists.
func (m *Manager) busyExcept(id int64) bool {
	for cid, c := range m.calls {
		if cid != id && c.m.Call().State.Live() {
			return true
		}
	}
	for _, c := range m.requested {
		if c.m.Call().State.Live() {
			return true
		}
	}
	return false
}

// created journals a new call's first state.
func (m *Manager) created(c *call) {
	rec := c.m.Call()
	m.journal(rec, "", rec.State)
	m.dirty[c] = true
	m.schedule(c)
}

// apply feeds one input to a call's machine and queues what follows:
// the journal entries, the persisted record, the actions.
func (m *Manager) apply(c *call, in fsm.Input) fsm.Step {
	now := m.now()
	step := c.m.Handle(in, now)
	if step.Ignored != "" {
		rec := c.m.Call()
		m.log.Debug().Str(logging.FieldEvent, logging.EventCallIgnored).Str(logging.FieldCallID, itoa(rec.ID)).
			Str(logging.FieldState, string(rec.State)).Msg("input ignored: " + step.Ignored)
	}
	if step.Err != nil || step.Ignored != "" {
		return step
	}
	rec := c.m.Call()
	endedNow := false
	for _, t := range step.Transitions {
		if rec.ID != 0 {
			// A requesting call is journaled once the server names it.
			m.journal(rec, t.From, t.To)
		}
		endedNow = endedNow || t.To == calld.StateEnded
	}
	if step.Changed || len(step.Transitions) > 0 {
		m.dirty[c] = true
		m.schedule(c)
	}
	for _, a := range step.Actions {
		m.rpc(c, a)
	}
	if endedNow {
		c.over.Store(true)
		m.ended(c)
	}
	return step
}

// journal queues a call.state event and its log line.
func (m *Manager) journal(rec calld.Call, from, to calld.State) {
	ev := calld.Event{
		At:     m.now().UTC(),
		Event:  logging.EventCallState,
		CallID: rec.ID,
		From:   string(from),
		To:     string(to),
	}
	if to == calld.StateEnded {
		ev.Reason = string(rec.Reason)
		ev.Duration = rec.Duration
	}
	m.events = append(m.events, ev)
	m.effects = append(m.effects, func() {
		m.log.Info().Str(logging.FieldEvent, logging.EventCallState).
			Str(logging.FieldCallID, itoa(rec.ID)).Str(logging.FieldFrom, string(from)).
			Str(logging.FieldTo, string(to)).Str(logging.FieldDirection, string(rec.Direction)).
			Str(logging.FieldPeerID, itoa(rec.PeerID)).Msg("call state")
		if to == calld.StateEnded {
			m.log.Info().Str(logging.FieldEvent, logging.EventCallEnded).
				Str(logging.FieldCallID, itoa(rec.ID)).Str(logging.FieldReason, string(rec.Reason)).
				Str(logging.FieldEndedBy, string(rec.EndedBy)).Int(logging.FieldDuration, rec.Duration).
				Msg("call ended")
		}
	})
}

// ended releases what a finished call held and answers its waiters once
// the end is committed.
func (m *Manager) ended(c *call) {
	rec := c.m.Call()
	delete(m.restored, rec.ID)
	if rec.ID == 0 {
		m.requestEnded(c)
	}
	if c.secrets != nil {
		c.secrets.wipe()
	}
	ws := c.waiters
	c.waiters = nil
	if acc := c.onAccept; acc != nil {
		// The call ended before acceptCall's result was applied (its
		// RPC may never have been sent): the accept is answered too.
		c.onAccept = nil
		ws = append(ws, waiter{done: func(r calld.Call, _ error) {
			acc(r, calld.Errorf(calld.ECONFLICT, "call %d ended (%s) before it was accepted", r.ID, orNone(r.Reason)))
		}})
	}
	m.effects = append(m.effects, func() {
		// The end is durable: the store keeps the record, memory lets
		// it go. Late inputs for the call find it ended in the store
		// (requests) or are ignored as unknown; RPCs still in flight
		// hold c and find its machine ended.
		if m.calls[rec.ID] == c {
			delete(m.calls, rec.ID)
		}
		m.media.sig.end(rec.ID)
		for _, w := range ws {
			w.done(rec, nil)
		}
	})
}

// logCall returns a log event with the call's id set.
func (m *Manager) logCall(level zerolog.Level, id int64) *zerolog.Event {
	return m.log.WithLevel(level).Str(logging.FieldEvent, logging.EventCallIgnored).Str(logging.FieldCallID, itoa(id))
}

// known reports whether the store holds a record of call id: only live
// calls are in memory, ended ones are looked up: among the records the
// loop committed that a checkpoint has not put into the bbolt file yet
// (logged), else in the file, without waiting for a checkpoint (ViewFile:
// this runs for every new call).
func (m *Manager) known(id int64) bool {
	if _, ok := m.logged[id]; ok {
		return true
	}
	err := m.cfg.DB.ViewFile(func(tx *store.Tx) error {
		_, err := tx.Call(id)
		return err
	})
	return err == nil
}

// remember notes the records of committed batch b as logged, and forgets
// those a checkpoint has put into the bbolt file since, once there are
// many (sweeping them only when a checkpoint came since the last sweep).
func (m *Manager) remember(b *batch) {
	for _, r := range b.records {
		m.logged[r.id] = b.seq
	}
	in := m.cfg.DB.Checkpointed()
	if len(m.logged) < rememberMax || in == m.forgotTo {
		return // few, or nothing checkpointed since the last sweep
	}
	m.forgotTo = in
	for id, seq := range m.logged {
		if seq <= in {
			delete(m.logged, id)
		}
	}
}

// rememberMax is the size of logged past which remember looks for what it
// may forget.
const rememberMax = 4096
