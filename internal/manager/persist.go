package manager

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/fsm"
	"github.com/calld/calld/internal/logging"
	"github.com/calld/calld/internal/store"
	"github.com/calld/calld/internal/updates"
)

// restore loads the persisted updates state and every live call with its
// secrets. Once the first difference is applied (resumeRestored), every
// call still live goes on in its state (CONTRACT §5.1). Calls still
// requesting are restored from their persisted requests, which are sent
// again with the same random_id (request.go).
func (m *Manager) restore(ctx context.Context) error {
	m.loadCallConfig(ctx)
	p, err := m.loadPersisted()
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	m.lastSeq = p.lastSeq
	if err := m.restoreCalls(p.recs, p.secs); err != nil {
		return err
	}
	m.restoreRequests(p.reqs)
	if !p.found {
		s, err := m.cfg.Telegram.GetState(ctx)
		if err != nil {
			return fmt.Errorf("updates.getState: %w", err)
		}
		m.engine = updates.New(updates.State{Pts: s.Pts, Qts: s.Qts, Seq: s.Seq, Date: s.Date}, m.now(), updates.Options{})
		m.stateDirty = true
		m.started = true
		m.resumeRestored()
		return m.settle(ctx)
	}
	m.engine = updates.New(updates.State(p.st), m.now(), updates.Options{})
	m.statusMu.Lock()
	m.status = p.st
	m.statusMu.Unlock()
	m.cfg.Metrics.UpdatesState(p.st)
	m.engineOut(m.engine.Start(m.now()))
	return m.settle(ctx)
}

// loadCallConfig sets the call timeouts: the config's, and those it
// leaves to the server from help.getConfig, whose date is the server's
// clock (stale calls are judged on it). Without an answer the defaults
// stay.
func (m *Manager) loadCallConfig(ctx context.Context) {
	m.timeouts = m.cfg.Timeouts
	cc, err := m.cfg.Telegram.CallConfig(ctx)
	if err != nil {
		m.log.Warn().Str(logging.FieldEvent, logging.EventLog).Str(logging.FieldErr, err.Error()).Msg("help.getConfig failed: using default call timeouts")
		return
	}
	if m.timeouts.Receive == 0 {
		m.timeouts.Receive = cc.Receive
	}
	if m.timeouts.Ring == 0 {
		m.timeouts.Ring = cc.Ring
	}
	m.configDate = cc.Date
}

// persisted is what the store holds at start-up: the updates state (if
// found), the live calls with their secrets and the pending requests.
type persisted struct {
	st    calld.UpdatesState
	found bool
	recs  []calld.Call
	reqs  []*request
	secs  map[int64][]byte
	// lastSeq is the journal's last event number.
	lastSeq uint64
}

// loadPersisted reads the store in one read transaction.
func (m *Manager) loadPersisted() (*persisted, error) {
	p := &persisted{secs: map[int64][]byte{}}
	err := m.cfg.DB.View(func(tx *store.Tx) error {
		var err error
		if p.st, p.found, err = tx.UpdatesState(); err != nil {
			return err
		}
		p.lastSeq = tx.LastSeq()
		err = tx.ForEachCall(true, func(id int64, b []byte) error {
			var c calld.Call
			if err := json.Unmarshal(b, &c); err != nil {
				return fmt.Errorf("call %d: %w", id, err)
			}
			p.recs = append(p.recs, c)
			sec, err := tx.CallSecrets(id)
			switch {
			case err == nil:
				p.secs[id] = sec
			case !errors.Is(err, store.ErrNotFound):
				return err
			}
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
			p.reqs = append(p.reqs, &r)
			return nil
		})
	})
	return p, err
}

// restoreCalls makes a machine of every live record, with its secrets,
// and schedules its deadline. A call whose secrets are unreadable is
// treated like a record without them: it ends (resumeRestored).
func (m *Manager) restoreCalls(recs []calld.Call, secs map[int64][]byte) error {
	for _, rec := range recs {
		mach, err := fsm.Restore(rec, m.timeouts)
		if err != nil {
			return fmt.Errorf("restore call %d: %w", rec.ID, err)
		}
		c := &call{m: mach, secrets: &secrets{}}
		if b, ok := secs[rec.ID]; ok {
			if s, err := unmarshalSecrets(b); err != nil {
				m.logCall(zerolog.WarnLevel, rec.ID).Str(logging.FieldErr, err.Error()).
					Msg("the persisted secrets of a call are unreadable")
			} else {
				c.secrets = s
			}
		}
		m.calls[rec.ID] = c
		m.countCall(c)
		m.restored[rec.ID] = true
		m.schedule(c)
	}
	return nil
}

// resumeRestored runs once the first difference is applied: a call the
// server ended meanwhile has ended from it (remote); every other call
// restored at start-up goes on in its state (CONTRACT §5.1): a ringing
// call keeps ringing, an active one stays active, and what was in flight
// is sent again: phone.receivedCall, our accept (the same g_b), our
// confirm (the same g_a). A hanging_up call re-sends its recorded discard:
// the machine honours that only when it was restored in hanging_up (no
// answer recorded), once; a discard decided in this process is never sent
// twice. Only a call that cannot go on (a record from before calld
// persisted its secrets) ends, with DESIGN's reason (fsm.RestartReason).
func (m *Manager) resumeRestored() {
	for id := range m.restored {
		c := m.calls[id]
		if c == nil {
			continue
		}
		rec := c.m.Call()
		switch {
		case !rec.State.Live():
		case rec.State == calld.StateHangingUp:
			m.apply(c, fsm.Local{Action: fsm.Resend})
		case !canContinue(rec, c.secrets):
			m.logCall(zerolog.InfoLevel, id).Str(logging.FieldState, string(rec.State)).
				Msg("restored call without its key-exchange material: ending it")
			m.apply(c, fsm.Local{Action: fsm.Discard, Reason: fsm.RestartReason(rec)})
		case rec.State == calld.StateWaiting && rec.Direction == calld.DirectionIncoming:
			m.rpc(c, fsm.SendReceived{})
		case rec.State == calld.StateAccepting:
			// Our g_b may have reached the server: the phoneCall that
			// answers it comes, and a repeated accept is refused.
			c.resentAccept = c.secrets.incoming != nil
			m.rpc(c, fsm.SendAccept{})
		case rec.State == calld.StateExchangingKeys && rec.Direction == calld.DirectionOutgoing && c.secrets.key == nil:
			m.rpc(c, fsm.SendConfirm{})
		}
	}
	m.restored = map[int64]bool{}
}

// flush starts the commit of everything the inputs applied since the
// last one, in ONE transaction (DESIGN invariant 2), on a goroutine of
// its own while the loop goes on applying inputs; commitDone runs the
// batch's effects once it is durable. One commit is in flight at a time:
// while it is, flush does nothing and what the loop applies waits for the
// next one, which commitDone starts (group commit: the busier the loop,
// the more steps share a transaction and its fsyncs). What has no write
// (an answer to a read, say) runs its effects at once when nothing is in
// flight, else after the commit in flight: effects keep their order, and
// none runs before the state it follows from is durable.
func (m *Manager) flush(ctx context.Context) error {
	if m.inflight != nil {
		return nil
	}
	if !m.pendingWrites() {
		effects := m.effects
		m.effects = nil
		m.runEffects(effects)
		return nil
	}
	b, err := m.collectBatch()
	if err != nil {
		return err
	}
	m.inflight = b
	wait := make(chan struct{})
	m.commitWait.Store(&wait)
	if !m.commits.Go(func() error {
		m.committed <- m.commitBatch(ctx, b)
		return nil
	}) {
		// Run is past its last settle (cannot happen: the loop's
		// flushes precede it); commit here rather than drop it.
		m.committed <- m.commitBatch(ctx, b)
	}
	return nil
}

// pendingWrites reports whether the inputs applied since the last
// collectBatch changed anything to write.
func (m *Manager) pendingWrites() bool {
	return len(m.dirty) > 0 || len(m.events) > 0 || m.stateDirty || len(m.requestsDirty) > 0
}

// pendingFull reports whether what waits for the next commit is as large
// as the loop lets it grow while a commit is in flight: the loop then
// stops reading its inbox until the commit is done (posters block, as
// they do on a full inbox), so a commit that retries for long holds the
// loop as it did before commits ran beside it.
func (m *Manager) pendingFull() bool {
	return m.inflight != nil && len(m.dirty)+len(m.events) >= maxPending
}

// maxPending bounds the calls and events that wait for the next commit
// while one is in flight, and so the size of a commit: bbolt holds every
// page a transaction dirties as decoded nodes (~20 KB per call in a burst,
// BenchmarkBurstCommit), and a commit's effects start its calls' RPCs at
// once. Measured with bench/ab (5 pairs of 5,000-call bursts), 1,024
// against 8,192: peak RSS 117 against 130 MiB (medians), CPU alike.
const maxPending = 1024

// commitDone takes the result of the commit in flight: on success the
// batch is published, its calls counted in their committed states and
// its effects run, and the commit of what the loop applied meanwhile is
// started. A failed commit (only once ctx is done: commitBatch retries
// until then) ends the loop with the error.
func (m *Manager) commitDone(ctx context.Context, err error) error {
	b := m.inflight
	m.inflight = nil
	close(*m.commitWait.Swap(nil))
	if err != nil {
		return err
	}
	m.publishBatch(b)
	m.remember(b)
	for i := range b.calls {
		m.countState(b.calls[i].c, &b.calls[i].rec)
	}
	m.runEffects(b.effects)
	return m.flush(ctx)
}

// runEffects runs effects in order, their log lines written together.
func (m *Manager) runEffects(effects []func()) {
	if len(effects) == 0 {
		return
	}
	release := m.cfg.LogBatch.Hold()
	defer release()
	for _, f := range effects {
		f()
	}
}

// settle waits for the commit in flight and commits what is pending, so
// that everything applied is durable and every effect has run: the
// loop's last step before Run returns.
func (m *Manager) settle(ctx context.Context) error {
	for {
		if m.inflight != nil {
			if err := m.commitDone(ctx, <-m.committed); err != nil {
				return err
			}
			continue
		}
		if err := m.flush(ctx); err != nil {
			return err
		}
		if m.inflight == nil {
			return nil
		}
	}
}

// batch is one commit: what it writes, encoded by the loop (the
// committer goroutine shares nothing the loop goes on changing), and what
// follows it: the changed calls with their records as committed, and the
// effects that wait for the commit.
type batch struct {
	commit
	calls   []batchCall
	effects []func()
	seq     uint64 // the commit's number in the store's log, once logged
}

// batchCall is a changed call in a batch and its record as committed.
type batchCall struct {
	c   *call
	rec calld.Call
}

// collectBatch takes what the last inputs changed, encoded, and leaves
// nothing pending.
func (m *Manager) collectBatch() (*batch, error) {
	b := &batch{calls: make([]batchCall, 0, len(m.dirty)), commit: commit{secs: map[int64][]byte{}, encoded: true}}
	for c := range m.dirty {
		rec := c.m.Call()
		var raw []byte
		if rec.ID == 0 {
			if c.req != nil && m.requests[c.req.RandomID] == c.req {
				// Requesting: its record lives in its request.
				m.requestsDirty[c.req.RandomID] = true
			}
		} else {
			var err error
			if raw, err = rec.MarshalJSON(); err != nil {
				return nil, fmt.Errorf("call %d: %w", rec.ID, err)
			}
		}
		if c.secrets != nil && c.secrets.dirty {
			if rec.ID != 0 && rec.State.Live() {
				sec, err := c.secrets.marshal()
				if err != nil {
					return nil, fmt.Errorf("call %d: secrets: %w", rec.ID, err)
				}
				b.secs[rec.ID] = sec
			}
			// Written now, or not at all: a requesting call's secret
			// is in its request, an ended call's are erased.
			c.secrets.dirty = false
		}
		b.calls = append(b.calls, batchCall{c: c, rec: rec})
		if raw != nil {
			b.records = append(b.records, callRecord{id: rec.ID, live: rec.State.Live(), raw: raw})
		}
	}
	slices.SortFunc(b.records, func(x, y callRecord) int { return cmp.Compare(uint64(x.id), uint64(y.id)) })
	reqs, err := m.pendingRequests()
	if err != nil {
		return nil, err
	}
	b.reqs = reqs
	if m.stateDirty && m.engine != nil {
		b.setState = true
		b.st = m.updatesState()
	}
	b.events, b.effects = m.events, m.effects
	for i := range b.events {
		// Numbered here, not by the store: the events are published
		// once the commit is logged, before it is in the bbolt file.
		m.lastSeq++
		b.events[i].Seq = m.lastSeq
	}
	m.dirty = map[*call]bool{}
	m.events, m.effects = nil, nil
	m.stateDirty = false
	return b, nil
}

// commitBatch makes b durable, as one commit of the store's log (put
// into the bbolt file by a later checkpoint), retrying with backoff on the
// manager's clock until it commits or ctx ends. It runs on the commit's
// goroutine: it reads b and the manager's immutable parts only, and
// encodes into m.enc, which only the commit in flight uses.
func (m *Manager) commitBatch(ctx context.Context, b *batch) error {
	backoff := 100 * time.Millisecond
	rec := b.commit.appendBinary(m.enc[:0])
	m.enc = rec   // Log keeps nothing of rec; the next commit reuses it
	c := b.commit // the apply holds what it writes, not the batch's calls and effects
	for {
		seq, err := m.cfg.DB.Log(rec, c.write)
		if err == nil {
			b.seq = seq // read by commitDone, after the committed channel
			return nil
		}
		m.log.Error().Str(logging.FieldEvent, logging.EventStoreError).Str(logging.FieldErr, err.Error()).
			Dur(logging.FieldRetryIn, backoff).Msg("store commit failed; retrying")
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
}

// publishBatch makes a committed batch visible: the status's updates
// state and the journal entries on the hub.
func (m *Manager) publishBatch(b *batch) {
	if b.setState {
		m.statusMu.Lock()
		m.status = b.st
		m.statusMu.Unlock()
		m.cfg.Metrics.UpdatesState(b.st)
	}
	for _, ev := range b.events {
		if m.cfg.Hub != nil {
			m.cfg.Hub.Publish(ev)
		}
	}
}

// countCall moves c, in calld_calls_live, to its current state, which
// is committed (a restored call); without metrics it costs one nil check.
func (m *Manager) countCall(c *call) {
	if m.cfg.Metrics == nil {
		return
	}
	rec := c.m.Call()
	m.countState(c, &rec)
}

// countState moves c, in calld_calls_live, to rec's state, as committed.
func (m *Manager) countState(c *call, rec *calld.Call) {
	if m.cfg.Metrics == nil {
		return
	}
	if rec.State != c.counted {
		m.cfg.Metrics.CallState(c.counted, rec)
		c.counted = rec.State
	}
}
