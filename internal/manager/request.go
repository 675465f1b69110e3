package manager

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gotd/td/tg"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/fsm"
	"github.com/calld/calld/internal/logging"
	"github.com/calld/calld/internal/mtproto"
	"github.com/calld/calld/internal/mtproto/callkey"
	"github.com/calld/calld/internal/store"
)

// An outgoing call's phone.requestCall is persisted BEFORE it is sent
// (CONTRACT §5.1): the peer, random_id, g_a_hash, video, protocol and our
// secret half of the key exchange, with the requesting call's record. It
// stays in the store's requests bucket until the server has named the
// call (the call's own record then takes over, in the same commit).
//
// After a restart the request is sent again with the same random_id:
// Telegram answers a repeated random_id with the call it already created,
// so the call goes on. A request calld gave up on (the receive timer and
// the hang-up watchdog ran out, or the RPC ran out of time) is kept as
// abandoned: a call the server created from it anyway (the late result,
// a late phoneCallWaiting, or the answer to the re-sent request after a
// restart) is discarded with reason missed, so that no peer is left
// ringing by calld.

// request is a persisted phone.requestCall. Secret never reaches a log or
// the control API.
type request struct {
	RandomID   int32                `json:"random_id"`
	PeerID     int64                `json:"peer_id,string"`
	AccessHash int64                `json:"access_hash,string"`
	Video      bool                 `json:"video"`
	GAHash     []byte               `json:"g_a_hash"`
	Protocol   tg.PhoneCallProtocol `json:"protocol"`
	Secret     callkey.CallDH       `json:"secret"`
	// Call is the requesting call's record (deadline, pending hang-up).
	Call calld.Call `json:"call"`
	// Abandoned: calld gave up waiting; a call the server made from this
	// request is discarded (missed).
	Abandoned bool `json:"abandoned,omitempty"`
}

// String never prints the secret.
func (r *request) String() string { return fmt.Sprintf("request{random_id:%d}", r.RandomID) }

func (r *request) user() tg.InputUserClass {
	return &tg.InputUser{UserID: r.PeerID, AccessHash: r.AccessHash}
}

// newRequest builds the request of a call about to be placed.
func newRequest(c calld.Call, user tg.InputUserClass, out *callkey.OutgoingCall, protocol tg.PhoneCallProtocol) *request {
	r := &request{
		RandomID: c.RandomID, PeerID: c.PeerID, Video: c.Video, GAHash: out.GAHash(),
		Protocol: protocol, Secret: out.Saved(), Call: c,
	}
	if u, ok := user.(*tg.InputUser); ok {
		r.AccessHash = u.AccessHash
	}
	return r
}

// saveRequest queues r for the next commit; dropRequest queues its
// removal.
func (m *Manager) saveRequest(r *request) {
	m.requests[r.RandomID] = r
	m.requestsDirty[r.RandomID] = true
}

func (m *Manager) dropRequest(rid int32) {
	delete(m.requests, rid)
	m.requestsDirty[rid] = true
}

// putRequests writes the encoded requests in the commit's transaction.
func putRequests(tx *store.Tx, recs map[int32][]byte) error {
	for rid, b := range recs {
		if b == nil {
			if err := tx.DeleteRequest(rid); err != nil {
				return err
			}
			continue
		}
		if err := tx.PutRequest(rid, b); err != nil {
			return err
		}
	}
	return nil
}

// pendingRequests encodes the queued requests for a commit (nil: delete
// the request); a request whose call is still requesting carries the
// call's record.
func (m *Manager) pendingRequests() (map[int32][]byte, error) {
	if len(m.requestsDirty) == 0 {
		return nil, nil
	}
	out := make(map[int32][]byte, len(m.requestsDirty))
	for rid := range m.requestsDirty {
		r := m.requests[rid]
		if r == nil {
			out[rid] = nil
			continue
		}
		if c := m.requested[rid]; c != nil && c.req == r && c.m.Call().State == calld.StateRequesting {
			r.Call = c.m.Call()
		}
		b, err := json.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("request %d: %w", rid, err)
		}
		out[rid] = b
	}
	m.requestsDirty = map[int32]bool{}
	return out, nil
}

// sendRequest sends c's phone.requestCall once what is queued is
// committed, and feeds the answer to requestResult.
func (m *Manager) sendRequest(c *call) {
	r := *c.req
	out := c.secrets.outgoing
	tgc := m.cfg.Telegram
	m.effects = append(m.effects, func() {
		m.goRPC(func() {
			ctx, cancel := m.rpcContext()
			defer cancel()
			res, err := tgc.RequestCall(ctx, r.user(), out, r.RandomID, r.Video, r.Protocol)
			err = m.rpcError(ctx, "phone.requestCall", err)
			_ = m.post(func() { m.requestResult(c, res, err) })
		})
	})
}

// requestResult applies the answer to phone.requestCall.
func (m *Manager) requestResult(c *call, res *tg.PhonePhoneCall, err error) {
	r := c.req
	rid := r.RandomID
	if err != nil && errors.Is(err, mtproto.ErrCallDiscarded) && res != nil {
		// The call exists and has ended (a repeated request after a
		// restart): it ends here from its phoneCallDiscarded.
		err = nil
	}
	if m.requested[rid] == c {
		delete(m.requested, rid)
	}
	done := c.onPlaced
	c.onPlaced = nil
	if done == nil {
		done = func(calld.Call, error) {} // restored: nobody is waiting
	}
	if r.Abandoned || c.m.Call().State != calld.StateRequesting {
		// calld gave up on this request: a call the server made from it
		// is discarded.
		if err == nil {
			m.adopt(r, res.PhoneCall)
		}
		if err == nil || !errors.Is(err, errRPCTimeout) {
			m.dropRequest(rid)
		}
		m.replayEarly()
		return
	}
	if err != nil {
		m.apply(c, fsm.RPCResult{Method: fsm.MethodRequest, Err: err})
		if errors.Is(err, errRPCTimeout) {
			// The server may still create the call.
			m.abandon(r)
		} else {
			m.dropRequest(rid)
		}
		m.afterCommit(c, done, telegramError("phone.requestCall", err))
		m.replayEarly()
		return
	}
	id := res.PhoneCall.GetID()
	m.calls[id] = c
	m.secretsChanged(c) // our secret a now goes with the call's record
	m.dropRequest(rid)
	c.req = nil
	first := c.m.Call()
	first.ID = id
	m.journal(first, "", calld.StateRequesting)
	m.apply(c, fsm.RPCResult{Method: fsm.MethodRequest})
	m.remote(c, res.PhoneCall, true)
	m.replayEarly()
	m.afterCommit(c, done, nil)
}

// replayEarly feeds the constructors held while requests were in flight
// to the calls now known, and drops them when no request is left.
func (m *Manager) replayEarly() {
	for id, pcs := range m.early {
		if c := m.calls[id]; c != nil {
			delete(m.early, id)
			for _, pc := range pcs {
				m.remote(c, pc, false)
			}
		}
	}
	if len(m.requested) == 0 {
		for id, pcs := range m.early {
			for _, pc := range pcs {
				if r := m.abandonedFor(pc); r != nil && m.adopt(r, pc) {
					m.dropRequest(r.RandomID)
					break
				}
			}
			delete(m.early, id)
		}
	}
}

// abandon marks r given up: kept (persisted) so that a call the server
// creates from it is discarded.
func (m *Manager) abandon(r *request) {
	if r.Abandoned {
		return
	}
	if c := m.requested[r.RandomID]; c != nil && c.req == r {
		r.Call = c.m.Call()
	}
	r.Abandoned = true
	m.saveRequest(r)
}

// requestEnded handles a requesting call that ended before its request
// was answered (its receive timer, then the hang-up watchdog): the Place
// request is answered 504 timeout (503 unavailable when not connected) and
// the request is kept as abandoned.
func (m *Manager) requestEnded(c *call) {
	if c.req == nil || m.requested[c.req.RandomID] != c {
		return
	}
	m.abandon(c.req)
	if done := c.onPlaced; done != nil {
		c.onPlaced = nil
		code, why := calld.ETIMEOUT, "no answer from Telegram"
		if !m.connected.Load() {
			code, why = calld.EUNAVAILABLE, "not connected to Telegram"
		}
		m.afterCommit(c, done, calld.Errorf(code,
			"phone.requestCall: %s before the call's receive timeout; the call ended (%s)", why, orNone(c.m.Call().Reason)))
	}
}

// abandonedFor returns the abandoned request a constructor of an unknown
// call comes from: an outgoing call (we are the admin) to the request's
// peer. The oldest such request wins.
func (m *Manager) abandonedFor(pc tg.PhoneCallClass) *request {
	p, ok := pc.(interface {
		GetAdminID() int64
		GetParticipantID() int64
	})
	if !ok {
		return nil
	}
	var best *request
	for _, r := range m.requests {
		if !r.Abandoned || p.GetParticipantID() != r.PeerID || p.GetAdminID() == r.PeerID {
			continue
		}
		if best == nil || r.Call.CreatedAt != nil && best.Call.CreatedAt != nil && r.Call.CreatedAt.Before(*best.Call.CreatedAt) {
			best = r
		}
	}
	return best
}

// adopt takes over a call the server created from an abandoned request
// and discards it (missed): a new record under the server's id, with the
// hang-up pending from the start, so the discard goes out at once. It
// reports false for a call calld already knows (an earlier call to the
// same peer, its constructor late): not the request's, which stays.
func (m *Manager) adopt(r *request, pc tg.PhoneCallClass) bool {
	id := pc.GetID()
	if m.calls[id] != nil || m.known(id) {
		return false
	}
	if _, over := pc.(*tg.PhoneCallDiscarded); over {
		return true
	}
	now := m.now()
	c := &call{m: fsm.NewOutgoing(r.PeerID, r.Call.PeerUsername, r.RandomID, r.Video, now, m.timeouts), secrets: &secrets{}}
	m.apply(c, fsm.Local{Action: fsm.Discard, Reason: calld.ReasonMissed})
	m.calls[id] = c
	first := c.m.Call()
	first.ID = id
	m.journal(first, "", calld.StateRequesting)
	m.log.Warn().Str(logging.FieldEvent, logging.EventLog).Str(logging.FieldCallID, itoa(id)).
		Str(logging.FieldPeerID, itoa(r.PeerID)).
		Msg("the server created a call from a request calld had given up: discarding it (missed)")
	m.remote(c, pc, true)
	return true
}

// restoreRequests loads the persisted requests: a call still requesting
// goes on (its request is sent again with the same random_id); an
// abandoned request is sent again too, and the call it names discarded.
func (m *Manager) restoreRequests(recs []*request) {
	for _, r := range recs {
		out, err := callkey.RestoreOutgoing(r.Secret)
		if err != nil {
			m.log.Error().Str(logging.FieldEvent, logging.EventStoreError).Int(logging.FieldRandomID, int(r.RandomID)).
				Str(logging.FieldErr, err.Error()).Msg("a persisted phone.requestCall cannot be restored: dropped")
			m.dropRequest(r.RandomID)
			continue
		}
		mach, err := fsm.Restore(r.Call, m.timeouts)
		if err != nil || r.Call.State != calld.StateRequesting {
			r.Abandoned = true
		}
		if r.Abandoned {
			// Only sent again to learn the call it made, if any: its
			// machine is over (not live, not busy) from the start.
			mach, _ = fsm.Restore(calld.Call{Direction: calld.DirectionOutgoing, State: calld.StateEnded, PeerID: r.PeerID, RandomID: r.RandomID}, m.timeouts)
		}
		m.requests[r.RandomID] = r
		c := &call{m: mach, secrets: &secrets{outgoing: out}, req: r}
		m.requested[r.RandomID] = c
		if r.Abandoned {
			c.counted = calld.StateEnded // ended before this start: counted then
		} else {
			m.countCall(c)
			m.schedule(c)
		}
		m.sendRequest(c)
	}
}
