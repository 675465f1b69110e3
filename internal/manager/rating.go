package manager

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/gotd/td/tg"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/logging"
	"github.com/calld/calld/internal/store"
)

// Rating and debug logs (CONTRACT §5.5): a call that ended with
// need_rating may be rated once (phone.setCallRating), one that ended
// with need_debug may have its media engine's debug log saved once
// (phone.saveCallDebug), as TDLib does. Each success is a journal event
// (call.rated, call.debug) on the call, which is what "once" is checked
// against, across restarts; a request in flight counts too.

// mediaState is the loop-owned media side of the manager, and the
// signaling relay (with its own lock).
type mediaState struct {
	sig      signaling
	inFlight map[mediaAnswer]bool
}

type mediaAnswer struct {
	id    int64
	event string // logging.EventCallRated or logging.EventCallDebug
}

// Rate implements calld.MediaService.
func (m *Manager) Rate(ctx context.Context, id int64, rating int, comment string) (calld.Call, error) {
	if rating < 1 || rating > 5 {
		return calld.Call{}, calld.Errorf(calld.EINVALID, "rating %d is not 1..5", rating)
	}
	return m.answerEnded(ctx, id, logging.EventCallRated, rating, func(ctx context.Context, t Telegram, peer tg.InputPhoneCall) error {
		return t.SetCallRating(ctx, peer, rating, comment)
	})
}

// SaveDebug implements calld.MediaService: data is the media engine's
// JSON debug log.
func (m *Manager) SaveDebug(ctx context.Context, id int64, data json.RawMessage) (calld.Call, error) {
	if !json.Valid(data) {
		return calld.Call{}, calld.Errorf(calld.EINVALID, "the debug log is not valid JSON")
	}
	return m.answerEnded(ctx, id, logging.EventCallDebug, len(data), func(ctx context.Context, t Telegram, peer tg.InputPhoneCall) error {
		return t.SaveCallDebug(ctx, peer, string(data))
	})
}

// answerEnded runs send for an ended call whose flags ask for event's
// answer, at most once per call, and journals event once it succeeded.
// The RPC's Updates are applied (through the engine) before the answer.
func (m *Manager) answerEnded(ctx context.Context, id int64, event string, value int, send func(context.Context, Telegram, tg.InputPhoneCall) error) (calld.Call, error) {
	key := mediaAnswer{id, event}
	what, flag := "a rating", "need_rating"
	if event == logging.EventCallDebug {
		what, flag = "a debug log", "need_debug"
	}
	return m.ask(ctx, func(done func(calld.Call, error)) {
		if c := m.calls[id]; c != nil && c.m.Call().State.Live() {
			done(c.m.Call(), calld.Errorf(calld.ECONFLICT, "call %d is still %s: %s is sent once it has ended", id, c.m.Call().State, what))
			return
		}
		rec, err := m.Call(ctx, id)
		if err != nil {
			done(rec, err)
			return
		}
		asked := rec.NeedRating
		if event == logging.EventCallDebug {
			asked = rec.NeedDebug
		}
		if !asked {
			done(rec, calld.Errorf(calld.ECONFLICT, "call %d did not ask for %s (%s is false)", id, what, flag))
			return
		}
		if m.media.inFlight[key] || m.answered(id, event) {
			done(rec, calld.Errorf(calld.ECONFLICT, "call %d already has %s", id, what))
			return
		}
		if m.media.inFlight == nil {
			m.media.inFlight = map[mediaAnswer]bool{}
		}
		m.media.inFlight[key] = true
		tgc := m.cfg.Telegram
		peer := tg.InputPhoneCall{ID: rec.ID, AccessHash: rec.AccessHash}
		m.effects = append(m.effects, func() {
			m.goRPC(func() {
				rctx, cancel := m.rpcContext()
				defer cancel()
				err := m.rpcError(rctx, methodOf(event), send(rctx, tgc, peer))
				_ = m.post(func() {
					// The result's Updates may be held by the engine
					// behind a getDifference: answer after them.
					m.afterUpdates(err == nil, func() {
						result := "ok"
						if err != nil {
							result = errorType(err)
						}
						e := m.log.Info().Str(logging.FieldEvent, event).Str(logging.FieldCallID, itoa(id)).Str(logging.FieldResult, result)
						if event == logging.EventCallRated {
							e = e.Int(logging.FieldRating, value)
						} else {
							e = e.Int(logging.FieldBytes, value)
						}
						e.Msg(methodOf(event) + " answered")
						if err != nil {
							delete(m.media.inFlight, key)
							done(rec, telegramError(methodOf(event), err))
							return
						}
						// In flight until the event is committed: a second
						// request in this batch would not find it in the
						// journal yet.
						m.events = append(m.events, calld.Event{At: m.now().UTC(), Event: event, CallID: id})
						m.effects = append(m.effects, func() {
							delete(m.media.inFlight, key)
							done(rec, nil)
						})
					})
				})
			})
		})
	})
}

func methodOf(event string) string {
	if event == logging.EventCallDebug {
		return "phone.saveCallDebug"
	}
	return "phone.setCallRating"
}

// answered reports whether the journal holds event for call id.
func (m *Manager) answered(id int64, event string) bool {
	errFound := errors.New("found")
	err := m.cfg.DB.View(func(tx *store.Tx) error {
		return tx.CallEvents(id, func(e calld.Event) error {
			if e.Event == event {
				return errFound
			}
			return nil
		})
	})
	return errors.Is(err, errFound)
}
