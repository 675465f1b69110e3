package manager

import (
	"context"
	"crypto/sha256"
	"sync"

	"github.com/gotd/td/tg"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/logging"
)

// Signaling relay (CONTRACT §5.5). tgcalls 2.x and later exchange their
// connection set-up through Telegram: phone.sendSignalingData out,
// updatePhoneCallSignalingData in. The incoming payloads of a live call
// are kept here, numbered 1, 2, … in the order the sequence engine
// dispatched them, for GET /v1/calls/{id}/signaling to replay and follow.
//
// Exactly once. updatePhoneCallSignalingData has no pts and no id of its
// own, and a getDifference repeats the pts-less updates dated since the
// client's date (Telegram does; so does the simulator): a repeated update
// reproduces the same call id and the same bytes. A payload whose SHA-256
// was already seen for the call is therefore dropped. Media engines never
// send two byte-identical payloads (tgcalls encrypts each signaling packet
// with its own counter), so nothing legitimate is lost.
//
// Bounds. Per call at most SignalingMaxBytes of payload bytes are kept:
// past it the oldest payloads are evicted (their seq numbers are not
// reused, so a reader replaying from before them sees the gap in seq).
// At most SignalingMaxPayloads payloads are accepted per call (the
// dedupe set holds one 32-byte hash each); later ones are dropped with a
// warning. A single payload larger than SignalingMaxBytes is dropped.
//
// Lifetime and secrecy. The payloads live in memory for the call's life
// only: they are dropped when the call ends (a follower gets what was
// kept, then its stream ends), never written to the store or the journal
// and never logged (log lines carry the call id, the seq and the size).
// They do not survive a restart of calld: a media engine whose stream
// ends while the call is still live (GET /v1/calls/{id} says so) is
// talking to a restarted calld and must read again from since=0, the
// numbering having started again at 1; payloads that arrived before the
// restart and were not read are lost, as they would be for a client that
// was offline (the engines repeat their set-up messages on reconnection).
const (
	SignalingMaxBytes    = 1 << 20
	SignalingMaxPayloads = 16384
)

// signaling holds the relayed payloads of the live calls. It has its own
// lock: the loop adds, the control API's streams read.
type signaling struct {
	mu    sync.Mutex
	calls map[int64]*sigCall
}

type sigCall struct {
	first    uint64 // seq of payloads[0]
	next     uint64 // seq of the next payload
	payloads [][]byte
	bytes    int
	seen     map[[sha256.Size]byte]struct{}
	ended    bool
	changed  chan struct{} // closed and replaced on every change
}

// get returns call id's payloads, created on first use.
func (s *signaling) get(id int64) *sigCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls == nil {
		s.calls = map[int64]*sigCall{}
	}
	sc := s.calls[id]
	if sc == nil {
		sc = &sigCall{first: 1, next: 1, seen: map[[sha256.Size]byte]struct{}{}, changed: make(chan struct{})}
		s.calls[id] = sc
	}
	return sc
}

// add keeps one payload; it returns its seq, or 0 and why it was dropped.
func (s *signaling) add(id int64, data []byte) (uint64, string) {
	sc := s.get(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	h := sha256.Sum256(data)
	switch _, dup := sc.seen[h]; {
	case dup:
		return 0, "a repeat of a payload already kept (a getDifference repeating the update)"
	case len(sc.seen) >= SignalingMaxPayloads:
		return 0, "the call's payload count limit is reached"
	case len(data) > SignalingMaxBytes:
		return 0, "the payload is larger than the per-call limit"
	}
	sc.seen[h] = struct{}{}
	sc.payloads = append(sc.payloads, append([]byte(nil), data...))
	sc.bytes += len(data)
	seq := sc.next
	sc.next++
	for sc.bytes > SignalingMaxBytes {
		sc.bytes -= len(sc.payloads[0])
		sc.payloads[0] = nil
		sc.payloads = sc.payloads[1:]
		sc.first++
	}
	close(sc.changed)
	sc.changed = make(chan struct{})
	return seq, ""
}

// end drops a call's payloads; its followers finish.
func (s *signaling) end(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sc := s.calls[id]; sc != nil {
		delete(s.calls, id)
		sc.ended = true
		close(sc.changed)
	}
}

// since returns the payloads with seq > after, whether the call ended,
// and a channel closed on the next change.
func (sc *sigCall) since(mu *sync.Mutex, after uint64) (out []calld.SignalingPayload, ended bool, changed <-chan struct{}) {
	mu.Lock()
	defer mu.Unlock()
	for i, p := range sc.payloads {
		if seq := sc.first + uint64(i); seq > after {
			out = append(out, calld.SignalingPayload{Seq: seq, Data: p})
		}
	}
	return out, sc.ended, sc.changed
}

// last is the seq of the newest payload kept so far (0: none yet).
func (sc *sigCall) last(mu *sync.Mutex) uint64 {
	mu.Lock()
	defer mu.Unlock()
	return sc.next - 1
}

// onSignaling handles a dispatched updatePhoneCallSignalingData.
func (m *Manager) onSignaling(u *tg.UpdatePhoneCallSignalingData) {
	c := m.calls[u.PhoneCallID]
	if c == nil || !c.m.Call().State.Live() {
		m.log.Debug().Str(logging.FieldEvent, logging.EventCallIgnored).Str(logging.FieldCallID, itoa(u.PhoneCallID)).
			Str(logging.FieldConstructor, u.TypeName()).Int(logging.FieldBytes, len(u.Data)).
			Msg("signaling data for a call that is not live: dropped")
		return
	}
	seq, why := m.media.sig.add(u.PhoneCallID, u.Data)
	if seq == 0 {
		m.log.Debug().Str(logging.FieldEvent, logging.EventCallIgnored).Str(logging.FieldCallID, itoa(u.PhoneCallID)).
			Str(logging.FieldConstructor, u.TypeName()).Int(logging.FieldBytes, len(u.Data)).
			Msg("signaling data dropped: " + why)
		return
	}
	m.log.Debug().Str(logging.FieldEvent, logging.EventCallSignaling).Str(logging.FieldCallID, itoa(u.PhoneCallID)).
		Str(logging.FieldDirection, "incoming").Uint64(logging.FieldSeq, seq).Int(logging.FieldBytes, len(u.Data)).
		Msg("signaling data kept")
}

// Signaling implements calld.MediaService: fn gets the call's payloads
// with seq > since, then, with follow, each new one until the call ends
// or ctx is done. A call that is not live is not_found or conflict; since
// beyond the last seq is invalid (as on /v1/events): a reader resuming
// after calld restarted must not skip the new numbering's payloads.
func (m *Manager) Signaling(ctx context.Context, id int64, since uint64, follow bool, fn func(calld.SignalingPayload) error) error {
	var sc *sigCall
	if _, err := m.ask(ctx, func(done func(calld.Call, error)) {
		c, err := m.liveCall(ctx, id)
		if err != nil {
			done(c.record(), err)
			return
		}
		rec := c.m.Call()
		if !rec.State.Live() {
			done(rec, calld.Errorf(calld.ECONFLICT, "call %d already ended (%s)", id, orNone(rec.Reason)))
			return
		}
		sc = m.media.sig.get(id)
		if last := sc.last(&m.media.sig.mu); since > last {
			done(rec, calld.Errorf(calld.EINVALID, "since %d is beyond call %d's last signaling seq %d (the numbering starts at 1 again when calld restarts: read from since=0)", since, id, last))
			return
		}
		done(rec, nil)
	}); err != nil {
		return err
	}
	last := since
	for {
		ps, ended, changed := sc.since(&m.media.sig.mu, last)
		for _, p := range ps {
			if err := fn(p); err != nil {
				return err
			}
			last = p.Seq
		}
		if ended || !follow {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		case <-m.done:
			return nil
		}
	}
}

// SendSignaling implements calld.MediaService: phone.sendSignalingData
// for a live call the server has named.
func (m *Manager) SendSignaling(ctx context.Context, id int64, data []byte) error {
	if len(data) == 0 {
		return calld.Errorf(calld.EINVALID, "data is empty")
	}
	_, err := m.ask(ctx, func(done func(calld.Call, error)) {
		c, err := m.liveCall(ctx, id)
		if err != nil {
			done(c.record(), err)
			return
		}
		rec := c.m.Call()
		if !rec.State.Live() || rec.ID == 0 {
			done(rec, calld.Errorf(calld.ECONFLICT, "call %d is %s: no signaling", id, rec.State))
			return
		}
		peer, tgc := tg.InputPhoneCall{ID: rec.ID, AccessHash: rec.AccessHash}, m.cfg.Telegram
		// The RPC is the manager's (Run waits for it); it changes no
		// state, so its answer goes straight to the caller.
		m.goRPC(func() {
			rctx, cancel := m.rpcContext()
			defer cancel()
			stop := context.AfterFunc(ctx, cancel)
			defer stop()
			err := m.rpcError(rctx, "phone.sendSignalingData", tgc.SendSignalingData(rctx, peer, data))
			result := "ok"
			if err != nil {
				result = errorType(err)
			}
			m.log.Debug().Str(logging.FieldEvent, logging.EventCallSignaling).Str(logging.FieldCallID, itoa(id)).
				Str(logging.FieldDirection, "outgoing").Int(logging.FieldBytes, len(data)).Str(logging.FieldResult, result).
				Msg("signaling data sent")
			done(rec, telegramError("phone.sendSignalingData", err))
		})
	})
	return err
}
