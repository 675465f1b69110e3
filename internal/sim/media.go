package sim

import (
	"fmt"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

// The peer's media engine. Once a call is active, the peer sends
// Options.SignalingPayloads signaling payloads (each pushed as
// updatePhoneCallSignalingData in its own `updates` container, so a
// getDifference repeats them like any pts-less update), with the contents
// PeerSignal gives. phone.sendSignalingData records the payload (what the
// peer's engine received, SignalingReceived) and the peer answers it with
// an echo: EchoPrefix followed by the payload's bytes.
//
// Rating and debug, as Telegram: phone.setCallRating records the rating
// and comment of any call the account took part in (RATING_INVALID out
// of 1..5) and answers an empty `updates`; phone.saveCallDebug records the
// debug JSON and answers true. Calls ended while SetNeedDebug is on carry
// need_debug; need_rating is set on a call discarded after it was active
// for at least a second (endLocked).

// EchoPrefix starts the peer's echo of a payload it received.
const EchoPrefix = "echo:"

// PeerSignal is the n-th (from 1) payload the peer's engine sends on call id.
func PeerSignal(id int64, n int) []byte {
	return []byte(fmt.Sprintf("sim-peer call %d signaling %d \x00\x01\xfe\xff", id, n))
}

func (s *Server) peerSignalLocked(c *call) {
	for n := 1; n <= s.opts.SignalingPayloads && c.info.State == StateActive; n++ {
		data := PeerSignal(c.info.ID, n)
		c.sigSent = append(c.sigSent, data)
		c.acct.pushLocked(0, &tg.UpdatePhoneCallSignalingData{PhoneCallID: c.info.ID, Data: data})
	}
}

func (s *Server) sendSignalingDataLocked(rc *rpcCtx, r *tg.PhoneSendSignalingDataRequest) (bin.Encoder, error) {
	c, err := rc.acct.callLocked(r.Peer)
	if err != nil {
		return nil, err
	}
	if !c.live() {
		return nil, tgerr.New(400, "CALL_ALREADY_DECLINED")
	}
	data := append([]byte(nil), r.Data...)
	c.sigReceived = append(c.sigReceived, data)
	rc.after(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if c.live() {
			echo := append([]byte(EchoPrefix), data...)
			c.sigSent = append(c.sigSent, echo)
			c.acct.pushLocked(0, &tg.UpdatePhoneCallSignalingData{PhoneCallID: c.info.ID, Data: echo})
		}
	})
	return &tg.BoolTrue{}, nil
}

func (s *Server) saveCallDebugLocked(rc *rpcCtx, r *tg.PhoneSaveCallDebugRequest) (bin.Encoder, error) {
	c, err := rc.acct.callLocked(r.Peer)
	if err != nil {
		return nil, err
	}
	c.debug = r.Debug.Data
	return &tg.BoolTrue{}, nil
}

// SetNeedDebug makes the calls ended from now on ask for a debug log
// (phoneCallDiscarded.need_debug).
func (s *Server) SetNeedDebug(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.needDebug = on
}

// SignalingSent returns the payloads the peer's engine sent on call id
// (its own, then echoes, in order).
func (s *Server) SignalingSent(id int64) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.state.calls[id]; c != nil {
		return append([][]byte(nil), c.sigSent...)
	}
	return nil
}

// SignalingReceived returns the payloads phone.sendSignalingData brought
// to the peer's engine on call id, in order.
func (s *Server) SignalingReceived(id int64) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.state.calls[id]; c != nil {
		return append([][]byte(nil), c.sigReceived...)
	}
	return nil
}

// CallFeedback returns the rating comment and the debug log the account
// sent for call id.
func (s *Server) CallFeedback(id int64) (comment, debug string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.state.calls[id]; c != nil {
		return c.ratingComment, c.debug
	}
	return "", ""
}
