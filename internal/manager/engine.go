package manager

import (
	"context"
	"time"

	"github.com/gotd/td/tg"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/fsm"
	"github.com/calld/calld/internal/logging"
	"github.com/calld/calld/internal/updates"
)

// Updates is the sink the MTProto client hands every Updates to: pushed
// ones (own=false) and the results of our own RPCs (own=true). It only
// queues them for the loop, in arrival order, before returning, so an RPC
// result is always applied before the RPC's own completion is handled.
func (m *Manager) Updates(ctx context.Context, u tg.UpdatesClass, own bool) error {
	return m.post(func() {
		now := m.now()
		if m.engine == nil {
			// Before the state is known (fresh account, getState in
			// flight) nothing can be applied in order; the first
			// difference brings it.
			return
		}
		var out updates.Output
		if own {
			out = m.engine.Own(u, now)
		} else {
			out = m.engine.Push(u, now)
		}
		if e := m.log.Debug(); e.Enabled() {
			st := m.engine.State()
			e.Str(logging.FieldEvent, logging.EventUpdatesReceived).Str(logging.FieldConstructor, u.TypeName()).
				Bool(logging.FieldOwn, own).Int(logging.FieldDispatched, len(out.Dispatch)).Int(logging.FieldPts, st.Pts).
				Int(logging.FieldSeq, st.Seq).Bool(logging.FieldInFlight, m.engine.InFlight()).Msg("updates received")
		}
		m.engineOut(out)
	})
}

// Connected tells the loop that a (new) connection or session is up: the
// engine then fetches the difference.
// The MTProto client logs telegram.connected itself.
func (m *Manager) Connected(ctx context.Context) {
	m.connected.Store(true)
	m.cfg.Metrics.Connected(true)
	_ = m.post(func() {
		if m.engine != nil {
			m.engineOut(m.engine.Reconnected(m.now()))
		}
	})
}

// Resync tells the loop that the session is logged in again after it was
// logged out while calld ran (a 401 from every RPC): the engine fetches
// the difference, and each hanging_up call whose discard got no executed
// answer (a 401, or a time-out) sends it again now instead of at the end
// of its backoff, so that no such call counts as live (busy) any longer
// than the login takes. A discard in flight is not sent twice: the
// machine honours Resend only when no answer is pending.
func (m *Manager) Resync() {
	_ = m.post(func() {
		if m.engine != nil {
			m.engineOut(m.engine.Reconnected(m.now()))
		}
		for _, c := range m.calls {
			if c.m.Call().State == calld.StateHangingUp {
				c.discardTimeouts = 0
				m.apply(c, fsm.Local{Action: fsm.Resend})
			}
		}
	})
}

// Disconnected tells the loop the connection is gone.
// The MTProto client logs telegram.disconnected itself.
func (m *Manager) Disconnected(err error) {
	m.connected.Store(false)
	m.cfg.Metrics.Connected(false)
}

// engineOut applies one output of the sequence engine: dispatches, the
// next getDifference, the new state, log lines.
func (m *Manager) engineOut(out updates.Output) {
	for _, g := range out.Gaps {
		m.cfg.Metrics.Gap(g.Box)
		m.log.Info().Str(logging.FieldEvent, logging.EventUpdatesGap).
			Str(logging.FieldBox, g.Box).Int(logging.FieldLocal, g.Local).
			Int(logging.FieldRemote, g.Remote).Msg("updates gap")
	}
	if d := out.Diff; d != nil {
		m.cfg.Metrics.Difference()
		m.log.Info().Str(logging.FieldEvent, logging.EventUpdatesDifference).
			Int(logging.FieldFromPts, d.FromPts).Int(logging.FieldToPts, d.ToPts).
			Int(logging.FieldSeq, d.Seq).Int(logging.FieldUpdates, d.Updates).
			Msg("difference applied")
	}
	for _, d := range out.Dispatch {
		switch u := d.Update.(type) {
		case *tg.UpdatePhoneCall:
			m.onPhoneCall(u.PhoneCall, d.Users, false)
		case *tg.UpdatePhoneCallSignalingData:
			m.onSignaling(u)
		}
	}
	if out.Changed {
		m.stateDirty = true
	}
	m.engineDeadline = out.Deadline
	if out.Request != nil {
		m.getDifference(out.Request)
	}
	if m.engine != nil && !m.engine.InFlight() && len(m.heldBack) > 0 {
		held := m.heldBack
		m.heldBack = nil
		for _, f := range held {
			f()
		}
	}
	if m.engine != nil && !m.started && out.Diff != nil && !m.engine.InFlight() {
		m.started = true
		m.resumeRestored()
	}
}

// getDifference runs the engine's request on its own goroutine and posts
// the answer back. The engine allows one in flight.
func (m *Manager) getDifference(req *tg.UpdatesGetDifferenceRequest) {
	r := *req
	m.effects = append(m.effects, func() {
		m.goRPC(func() {
			ctx, cancel := context.WithTimeout(m.ctx, 30*time.Second)
			defer cancel()
			diff, err := m.cfg.Telegram.GetDifference(ctx, &r)
			_ = m.post(func() {
				now := m.now()
				if err != nil {
					// The engine retries with a backoff (up to a minute,
					// for as long as it fails): each failure is a line.
					m.log.Warn().Str(logging.FieldEvent, logging.EventUpdatesDiffFailed).Int(logging.FieldFromPts, r.Pts).
						Str(logging.FieldErr, err.Error()).Msg("getDifference failed: retrying")
					m.engineOut(m.engine.DifferenceFailed(err, now))
					return
				}
				m.engineOut(m.engine.Difference(diff, now))
			})
		})
	})
}

// updatesState is the engine's state in the store's shape.
func (m *Manager) updatesState() calld.UpdatesState {
	return calld.UpdatesState(m.engine.State())
}

// afterUpdates runs f now, or, when hold is set and the engine is holding
// inputs behind a getDifference (an RPC's own Updates among them), once
// the engine has applied them.
func (m *Manager) afterUpdates(hold bool, f func()) {
	if hold && m.engine != nil && m.engine.InFlight() {
		m.heldBack = append(m.heldBack, f)
		return
	}
	f()
}
