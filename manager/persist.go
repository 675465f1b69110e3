package manager

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/calld/calld/fsm"
	"github.com/calld/calld/logging"
	"github.com/calld/calld/store"
	"github.com/calld/calld/updates"
)

// restore loads the persisted updates state and every live call. Live
// calls are discarded once the first difference is applied (reconcile):
// after a restart nobody is on the other end of them any more. Calls
// still requesting are restored from their persisted requests, which are
// sent again (request.go).
func (m *Manager) restore(ctx context.Context) error {
	m.timeouts = m.cfg.Timeouts
	// help.getConfig: the call timeouts the config leaves to the server,
	// and the server's clock (stale calls are judged on it).
	cc, err := m.cfg.Telegram.CallConfig(ctx)
	if err != nil {
		m.log.Warn().Str(logging.FieldEvent, logging.EventLog).Str(logging.FieldErr, err.Error()).Msg("help.getConfig failed: using default call timeouts")
	} else {
		if m.timeouts.Receive == 0 {
			m.timeouts.Receive = cc.Receive
		}
		if m.timeouts.Ring == 0 {
			m.timeouts.Ring = cc.Ring
		}
		m.configDate = cc.Date
	}
	var (
		st    store.UpdatesState
		found bool
		recs  []fsm.Call
		reqs  []*request
	)
	err = m.cfg.DB.View(func(tx *store.Tx) error {
		var err error
		if st, found, err = tx.UpdatesState(); err != nil {
			return err
		}
		err = tx.ForEachCall(true, func(id int64, b []byte) error {
			var c fsm.Call
			if err := json.Unmarshal(b, &c); err != nil {
				return fmt.Errorf("call %d: %w", id, err)
			}
			recs = append(recs, c)
			return nil
		})
		if err != nil {
			return err
		}
		return tx.ForEachRequest(func(rid int32, b []byte) error {
			var r request
			if err := json.Unmarshal(b, &r); err != nil {
				return fmt.Errorf("request %d: %w", rid, err)
			}
			reqs = append(reqs, &r)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	for _, rec := range recs {
		mach, err := fsm.Restore(rec, m.timeouts)
		if err != nil {
			return fmt.Errorf("restore call %d: %w", rec.ID, err)
		}
		// The DH secrets were never persisted: a restored call can be
		// discarded, not accepted or confirmed.
		c := &call{m: mach, secrets: &secrets{}}
		m.calls[rec.ID] = c
		m.reconcile[rec.ID] = true
		m.schedule(c)
	}
	m.restoreRequests(reqs)
	if !found {
		s, err := m.cfg.Telegram.GetState(ctx)
		if err != nil {
			return fmt.Errorf("updates.getState: %w", err)
		}
		m.engine = updates.New(updates.State{Pts: s.Pts, Qts: s.Qts, Seq: s.Seq, Date: s.Date}, m.now(), updates.Options{})
		m.stateDirty = true
		m.started = true
		m.reconcileRestored()
		return m.flush(ctx)
	}
	m.engine = updates.New(updates.State(st), m.now(), updates.Options{})
	m.statusMu.Lock()
	m.status = st
	m.statusMu.Unlock()
	m.engineOut(m.engine.Start(m.now()))
	return m.flush(ctx)
}

// reconcileRestored discards every call that was live when the daemon
// stopped and is still live after the first difference.
func (m *Manager) reconcileRestored() {
	for id := range m.reconcile {
		c := m.calls[id]
		if c == nil {
			continue
		}
		rec := c.m.Call()
		if !rec.State.Live() || rec.State == fsm.HangingUp {
			// A discard that was in flight: send it again.
			if rec.State == fsm.HangingUp {
				m.apply(c, fsm.Local{Action: fsm.Resend})
			}
			continue
		}
		m.apply(c, fsm.Local{Action: fsm.Discard, Reason: fsm.RestartReason(rec)})
	}
	m.reconcile = map[int64]bool{}
}

// flush commits everything the last inputs changed in ONE transaction
// (DESIGN invariant 2), then runs their effects. A failing commit is
// retried with backoff while the loop holds; nothing is half-written and
// no effect runs before its state is durable.
func (m *Manager) flush(ctx context.Context) error {
	if len(m.dirty) == 0 && len(m.events) == 0 && !m.stateDirty && len(m.effects) == 0 && len(m.requestsDirty) == 0 {
		return nil
	}
	if len(m.dirty) > 0 || len(m.events) > 0 || m.stateDirty || len(m.requestsDirty) > 0 {
		recs := make([]fsm.Call, 0, len(m.dirty))
		for c := range m.dirty {
			rec := c.m.Call()
			if rec.ID == 0 && c.req != nil && m.requests[c.req.RandomID] == c.req {
				// Requesting: its record lives in its request.
				m.requestsDirty[c.req.RandomID] = true
			}
			recs = append(recs, rec)
		}
		reqs := m.pendingRequests()
		var st store.UpdatesState
		if m.stateDirty && m.engine != nil {
			st = m.updatesState()
		}
		events := m.events
		backoff := 100 * time.Millisecond
		for {
			err := m.cfg.DB.Update(func(tx *store.Tx) error {
				for _, rec := range recs {
					if rec.ID == 0 {
						continue // requesting: persisted with its request (reqs)
					}
					b, err := json.Marshal(rec)
					if err != nil {
						return err
					}
					if err := tx.PutCall(rec.ID, b, rec.State.Live()); err != nil {
						return err
					}
				}
				if err := m.putRequests(tx, reqs); err != nil {
					return err
				}
				for i := range events {
					if err := tx.AppendEvent(&events[i]); err != nil {
						return err
					}
				}
				if m.stateDirty && m.engine != nil {
					return tx.SetUpdatesState(st)
				}
				return nil
			})
			if err == nil {
				break
			}
			m.log.Error().Str(logging.FieldEvent, logging.EventStoreError).Str(logging.FieldErr, err.Error()).
				Dur("retry_in", backoff).Msg("store commit failed; retrying")
			t := m.clock.Timer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("store commit: %w", err)
			case <-t.C():
			}
			if backoff < 5*time.Second {
				backoff *= 2
			}
		}
		if m.stateDirty && m.engine != nil {
			m.statusMu.Lock()
			m.status = st
			m.statusMu.Unlock()
		}
		for _, ev := range events {
			if m.cfg.Hub != nil {
				m.cfg.Hub.Publish(ev)
			}
		}
	}
	effects := m.effects
	m.dirty = map[*call]bool{}
	m.events = nil
	m.stateDirty = false
	m.effects = nil
	for _, f := range effects {
		f()
	}
	return nil
}
