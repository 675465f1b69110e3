package manager

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/fsm"
	"github.com/calld/calld/internal/mtproto/middleware"
	"github.com/calld/calld/internal/store"
)

// This file is the control API's side of the manager (calld.CallService but
// Login, which the daemon adds). Reads come from the store: they see only
// committed state. Writes go through the loop.

// Status implements calld.CallService.
func (m *Manager) Status(ctx context.Context) (calld.Status, error) {
	var live, total int
	err := m.cfg.DB.View(func(tx *store.Tx) error {
		var err error
		live, total, err = tx.CallCounts()
		return err
	})
	if err != nil {
		return calld.Status{}, err
	}
	m.statusMu.Lock()
	st := m.status
	m.statusMu.Unlock()
	return calld.Status{
		Version: m.cfg.Version,
		Ready:   m.ready.Load(),
		Telegram: calld.TelegramStatus{
			Connected:  m.connected.Load(),
			Authorized: m.authorized.Load(),
			SelfID:     m.selfID.Load(),
			DC:         int(m.dc.Load()),
		},
		Updates: st,
		Calls:   calld.CallCounts{Live: live, Total: total},
	}, nil
}

// Authorized reports what SetIdentity last said.
func (m *Manager) Authorized() bool { return m.authorized.Load() }

// SetIdentity records the logged-in account and DC for Status.
func (m *Manager) SetIdentity(authorized bool, selfID int64, dc int) {
	m.authorized.Store(authorized)
	m.cfg.Metrics.Authorized(authorized)
	m.selfID.Store(selfID)
	m.dc.Store(int64(dc))
}

// Calls implements calld.CallService: live calls, or all newest first.
func (m *Manager) Calls(ctx context.Context, all bool) ([]calld.Call, error) {
	var calls []calld.Call
	err := m.cfg.DB.View(func(tx *store.Tx) error {
		return tx.ForEachCall(!all, func(id int64, b []byte) error {
			var c calld.Call
			if err := json.Unmarshal(b, &c); err != nil {
				return fmt.Errorf("call %d: %w", id, err)
			}
			calls = append(calls, c)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(calls, func(i, j int) bool {
		a, b := calls[i].CreatedAt, calls[j].CreatedAt
		if a == nil || b == nil {
			return b == nil && a != nil
		}
		return a.After(*b)
	})
	if calls == nil {
		calls = []calld.Call{}
	}
	return calls, nil
}

// Call implements calld.CallService.
func (m *Manager) Call(ctx context.Context, id int64) (calld.Call, error) {
	var c calld.Call
	err := m.cfg.DB.View(func(tx *store.Tx) error {
		b, err := tx.Call(id)
		if err != nil {
			return err
		}
		return json.Unmarshal(b, &c)
	})
	if errors.Is(err, store.ErrNotFound) {
		return c, calld.Errorf(calld.ENOTFOUND, "no call with id %d", id)
	}
	return c, err
}

// Journal implements calld.CallService.
func (m *Manager) Journal(since uint64, fn func(calld.Event) error) error {
	// Read in bounded chunks so a slow reader never holds a read
	// transaction open (bbolt's remap waits for readers).
	for {
		var batch []calld.Event
		err := m.cfg.DB.View(func(tx *store.Tx) error {
			return tx.Events(since, func(e calld.Event) error {
				batch = append(batch, e)
				if len(batch) == 1000 {
					return errStopIter
				}
				return nil
			})
		})
		if err != nil && !errors.Is(err, errStopIter) {
			return err
		}
		for _, e := range batch {
			if err := fn(e); err != nil {
				return err
			}
			since = e.Seq
		}
		if len(batch) < 1000 {
			return nil
		}
	}
}

var errStopIter = errors.New("stop")

// reply is a one-shot answer from the loop to an API caller.
type reply struct {
	call calld.Call
	err  error
}

// ask runs f on the loop and waits for the answer f arranges to send.
func (m *Manager) ask(ctx context.Context, f func(done func(calld.Call, error))) (calld.Call, error) {
	ch := make(chan reply, 1)
	done := func(c calld.Call, err error) {
		select {
		case ch <- reply{c, err}:
		default:
		}
	}
	if err := m.post(func() { f(done) }); err != nil {
		return calld.Call{}, calld.Errorf(calld.EUNAVAILABLE, "%v", err)
	}
	select {
	case r := <-ch:
		return r.call, r.err
	case <-ctx.Done():
		return calld.Call{}, ctx.Err()
	case <-m.done:
		return calld.Call{}, calld.Errorf(calld.EUNAVAILABLE, "%v", ErrStopped)
	}
}

// waiter is an API caller waiting for a call to end.
type waiter struct {
	done func(calld.Call, error)
}

// afterCommit answers with c as the loop has it now, once that is durable
// (the record is taken now: the loop goes on applying inputs while the
// commit is in flight, and the answer must not tell of a later step the
// commit does not hold).
func (m *Manager) afterCommit(c *call, done func(calld.Call, error), err error) {
	rec := c.m.Call()
	m.effects = append(m.effects, func() { done(rec, err) })
}

// Discard implements calld.CallService: exactly one phone.discardCall per
// call whatever the concurrency; the answer is the final persisted Call.
func (m *Manager) Discard(ctx context.Context, id int64, reason calld.Reason) (calld.Call, error) {
	start := m.clock.Now()
	rec, err := m.discard(ctx, id, reason)
	if err == nil {
		m.cfg.Metrics.Discarded(m.clock.Now().Sub(start).Seconds())
	}
	return rec, err
}

// discard is Discard's work on the loop: it answers once the call's end
// is committed.
func (m *Manager) discard(ctx context.Context, id int64, reason calld.Reason) (calld.Call, error) {
	return m.ask(ctx, func(done func(calld.Call, error)) {
		c, err := m.liveCall(ctx, id)
		if err != nil {
			done(c.record(), err)
			return
		}
		rec := c.m.Call()
		switch rec.State {
		case calld.StateEnded:
			done(rec, calld.Errorf(calld.ECONFLICT, "call %d already ended (%s)", id, rec.Reason))
			return
		case calld.StateHangingUp:
			// Wait for the discard in flight, then say it was not ours.
			c.waiters = append(c.waiters, waiter{done: func(r calld.Call, err error) {
				if err != nil {
					// That discard ran out of time: no answer yet.
					done(r, err)
					return
				}
				done(r, calld.Errorf(calld.ECONFLICT, "call %d was already being ended; it ended (%s)", id, r.Reason))
			}})
			return
		}
		step := m.apply(c, fsm.Local{Action: fsm.Discard, Reason: reason})
		if step.Err != nil {
			done(c.m.Call(), step.Err)
			return
		}
		if !c.m.Call().State.Live() {
			m.afterCommit(c, done, nil)
			return
		}
		c.waiters = append(c.waiters, waiter{done: func(r calld.Call, err error) {
			if err == nil {
				err = telegramError("phone.discardCall", c.discardErr)
			}
			done(r, err)
		}})
	})
}

// Accept implements calld.CallService: sends phone.acceptCall and answers
// with the Call once its result is applied.
func (m *Manager) Accept(ctx context.Context, id int64) (calld.Call, error) {
	return m.AcceptWith(ctx, id, nil)
}

// AcceptWith is Accept offering the configured protocol with override's
// fields in place (media.go).
func (m *Manager) AcceptWith(ctx context.Context, id int64, override *calld.ProtocolOverride) (calld.Call, error) {
	protocol, err := m.protocolFor(override)
	if err != nil {
		return calld.Call{}, err
	}
	return m.ask(ctx, func(done func(calld.Call, error)) {
		c, err := m.liveCall(ctx, id)
		if err != nil {
			done(c.record(), err)
			return
		}
		if rec := c.m.Call(); rec.Direction == calld.DirectionIncoming && len(c.secrets.gAHash) == 0 {
			done(rec, calld.Errorf(calld.ECONFLICT, "call %d was restored without the caller's g_a_hash: it can only be discarded", id))
			return
		}
		c.secrets.protocol = protocol // offered now; the server's answer replaces it (setKey)
		step := m.apply(c, fsm.Local{Action: fsm.Accept})
		if step.Err != nil {
			done(c.m.Call(), step.Err)
			return
		}
		c.onAccept = done
	})
}

// SetConnection implements calld.CallService.
func (m *Manager) SetConnection(ctx context.Context, id, connectionID int64) (calld.Call, error) {
	return m.ask(ctx, func(done func(calld.Call, error)) {
		c, err := m.liveCall(ctx, id)
		if err != nil {
			done(c.record(), err)
			return
		}
		step := m.apply(c, fsm.Local{Action: fsm.SetConnection, ConnectionID: connectionID})
		m.afterCommit(c, done, step.Err)
	})
}

// Media implements calld.CallService.
func (m *Manager) Media(ctx context.Context, id int64) (calld.Media, error) {
	var media calld.Media
	_, err := m.ask(ctx, func(done func(calld.Call, error)) {
		c, err := m.liveCall(ctx, id)
		if err != nil {
			done(c.record(), err)
			return
		}
		rec := c.m.Call()
		if rec.State != calld.StateActive || c.secrets == nil || c.secrets.key == nil {
			done(rec, calld.Errorf(calld.ECONFLICT, "call %d is %s: media parameters exist once it is active", id, rec.State))
			return
		}
		media = mediaOf(rec, c.secrets)
		done(rec, nil)
	})
	return media, err
}

func mediaOf(rec calld.Call, s *secrets) calld.Media {
	md := calld.Media{
		Key:            append([]byte(nil), s.key.Bytes...),
		KeyFingerprint: s.key.Fingerprint,
		Outgoing:       rec.Direction == calld.DirectionOutgoing,
		Protocol: calld.Protocol{
			UDPP2P:          s.protocol.UDPP2P,
			UDPReflector:    s.protocol.UDPReflector,
			MinLayer:        s.protocol.MinLayer,
			MaxLayer:        s.protocol.MaxLayer,
			LibraryVersions: s.protocol.LibraryVersions,
		},
		Connections: []calld.MediaConnection{},
	}
	for _, pc := range s.connections {
		switch c := pc.(type) {
		case *tg.PhoneConnection:
			md.Connections = append(md.Connections, calld.MediaConnection{
				ID: c.ID, IP: c.IP, IPv6: c.Ipv6, Port: c.Port, PeerTag: c.PeerTag, TCP: c.TCP,
			})
		case *tg.PhoneConnectionWebrtc:
			md.Connections = append(md.Connections, calld.MediaConnection{
				ID: c.ID, IP: c.IP, IPv6: c.Ipv6, Port: c.Port, TURN: c.Turn, STUN: c.Stun,
				Username: c.Username, Password: c.Password,
			})
		}
	}
	return md
}

// Place implements calld.CallService: resolves the peer, prepares our half
// of the DH exchange, persists the request (request.go), sends
// phone.requestCall, and answers with the Call once the server has named
// it (state waiting or later).
func (m *Manager) Place(ctx context.Context, peer string, video bool) (calld.Call, error) {
	return m.PlaceWith(ctx, peer, video, nil)
}

// PlaceWith is Place offering the configured protocol with override's
// fields in place (media.go).
func (m *Manager) PlaceWith(ctx context.Context, peer string, video bool, override *calld.ProtocolOverride) (calld.Call, error) {
	protocol, err := m.protocolFor(override)
	if err != nil {
		return calld.Call{}, err
	}
	user, err := m.cfg.Telegram.ResolvePeer(ctx, peer)
	if err != nil {
		return calld.Call{}, telegramError("resolve "+peer, err)
	}
	out, err := m.cfg.Telegram.PrepareCall(ctx)
	if err != nil {
		return calld.Call{}, telegramError("messages.getDhConfig", err)
	}
	return m.ask(ctx, func(done func(calld.Call, error)) {
		var b [4]byte
		_, _ = rand.Read(b[:])
		randomID := int32(binary.LittleEndian.Uint32(b[:]) & 0x7fffffff)
		c := &call{m: fsm.NewOutgoing(user.ID, user.Username, randomID, video, m.now(), m.timeouts), secrets: &secrets{outgoing: out}}
		r := newRequest(c.m.Call(), user.AsInput(), out, protocol)
		c.req, c.onPlaced = r, done
		m.requested[randomID] = c
		m.schedule(c)
		m.saveRequest(r)
		m.sendRequest(c)
	})
}

// telegramError turns an RPC error into a control API error with the code
// middleware.APIErrorCode gives it (Telegram's error type as the code, 502;
// unauthorized; unavailable when not connected). CALL_ALREADY_DECLINED
// from a discard means the call is already over: not an error.
func telegramError(what string, err error) error {
	if err == nil || tgerr.Is(err, "CALL_ALREADY_DECLINED") {
		return nil
	}
	var ce *calld.Error
	if errors.As(err, &ce) {
		return err
	}
	code, _ := middleware.APIErrorCode(err)
	return calld.Errorf(code, "%s: %v", what, err)
}

// errorType is the result field of call.discard log lines.
func errorType(err error) string {
	code, _ := middleware.APIErrorCode(err)
	return code
}

// liveCall returns the live call id, or an error: conflict (with the
// stored record in the returned call) when it has ended, not_found when
// it was never known.
func (m *Manager) liveCall(ctx context.Context, id int64) (*call, error) {
	if c := m.calls[id]; c != nil {
		return c, nil
	}
	rec, err := m.Call(ctx, id)
	if err != nil {
		return nil, err
	}
	ended, _ := fsm.Restore(rec, m.timeouts)
	return &call{m: ended}, calld.Errorf(calld.ECONFLICT, "call %d already ended (%s)", id, orNone(rec.Reason))
}

// record is the call's record, or the zero Call for nil.
func (c *call) record() calld.Call {
	if c == nil || c.m == nil {
		return calld.Call{}
	}
	return c.m.Call()
}

func orNone(r calld.Reason) string {
	if r == "" {
		return "no reason"
	}
	return string(r)
}
