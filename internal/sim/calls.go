package sim

import (
	"bytes"
	"fmt"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

// Behaviour is how a peer reacts to a call the account makes.
type Behaviour int

const (
	// Answer: the call is delivered (phoneCallWaiting with receive_date)
	// and the peer accepts at once (phoneCallAccepted with g_b). Default.
	Answer Behaviour = iota
	// RingForever: the call is delivered and rings until PeerAnswer,
	// PeerHangup or our discardCall.
	RingForever
	// Busy: the peer declines at once (phoneCallDiscarded, reason busy).
	Busy
	// Unreachable: the call is never delivered (no receive_date).
	Unreachable
)

func (b Behaviour) String() string {
	switch b {
	case Answer:
		return "answer"
	case RingForever:
		return "ring_forever"
	case Busy:
		return "busy"
	case Unreachable:
		return "unreachable"
	}
	return fmt.Sprintf("behaviour(%d)", int(b))
}

// CallState is the server's view of a call.
type CallState string

// Call states.
const (
	// StateRequested: incoming, waiting for the account to accept.
	StateRequested CallState = "requested"
	// StateWaiting: outgoing, not delivered to the peer yet.
	StateWaiting CallState = "waiting"
	// StateRinging: outgoing, delivered, the peer has not answered.
	StateRinging CallState = "ringing"
	// StateExchanging: accepted, keys are being exchanged.
	StateExchanging CallState = "exchanging"
	// StateActive: keys confirmed.
	StateActive CallState = "active"
	// StateElsewhere: incoming, accepted by another device of the account.
	StateElsewhere CallState = "accepted_elsewhere"
	// StateDiscarded: ended.
	StateDiscarded CallState = "discarded"
)

// Who ended a call (CallInfo.DiscardedBy).
const (
	BySelf = "self" // our phone.discardCall
	ByPeer = "peer" // the other user (PeerHangup, Busy behaviour)
	// ByServer: the server ended it (failed key confirmation).
	ByServer = "server"
)

// CallInfo is the server's record of a call.
type CallInfo struct {
	ID, AccessHash int64
	Peer           int64 // the other user
	Outgoing       bool  // the account is the caller (admin)
	Video          bool  // sticky OR of every video flag seen
	State          CallState
	// Reason is the discard reason as a TL name without prefix ("missed",
	// "busy", "hangup", "disconnect"), "" when none.
	Reason       string
	Duration     int   // seconds, as sent by whoever discarded
	ConnectionID int64 // connection_id of our discardCall
	DiscardedBy  string
	Date         int // creation date
	StartDate    int // when it became active, 0 if never
	Rating       int // phone.setCallRating
}

type call struct {
	acct        *Account // the account taking part
	info        CallInfo
	randomID    int
	receiveDate int                            // outgoing: when it was delivered to the peer
	reason      tg.PhoneCallDiscardReasonClass // once discarded
	// Peer side of the key exchange.
	peerDH      dhSecret
	ourGAHash   []byte // outgoing: g_a_hash our client committed to
	key         []byte
	fingerprint int64
	protocol    tg.PhoneCallProtocol
	conns       []tg.PhoneConnectionClass
	// The peer's media engine (media.go).
	sigSent, sigReceived [][]byte
	ratingComment        string
	debug                string
}

func (c *call) live() bool {
	return c.info.State != StateDiscarded && c.info.State != StateElsewhere
}

func (c *call) adminParticipant() (admin, participant int64) {
	if c.info.Outgoing {
		return c.acct.id, c.info.Peer
	}
	return c.info.Peer, c.acct.id
}

func defaultProtocol() tg.PhoneCallProtocol {
	return tg.PhoneCallProtocol{
		UDPP2P:          true,
		UDPReflector:    true,
		MinLayer:        65,
		MaxLayer:        92,
		LibraryVersions: []string{"4.0.0"},
	}
}

func reasonName(r tg.PhoneCallDiscardReasonClass) string {
	switch r.(type) {
	case *tg.PhoneCallDiscardReasonMissed:
		return "missed"
	case *tg.PhoneCallDiscardReasonBusy:
		return "busy"
	case *tg.PhoneCallDiscardReasonHangup:
		return "hangup"
	case *tg.PhoneCallDiscardReasonDisconnect:
		return "disconnect"
	case nil:
		return ""
	}
	return r.TypeName()
}

func (c *call) waiting(receiveDate int) *tg.PhoneCallWaiting {
	admin, part := c.adminParticipant()
	return &tg.PhoneCallWaiting{
		Video: c.info.Video, ID: c.info.ID, AccessHash: c.info.AccessHash, Date: c.info.Date,
		AdminID: admin, ParticipantID: part, Protocol: c.protocol, ReceiveDate: receiveDate,
	}
}

func (c *call) phoneCall(gAorB []byte) *tg.PhoneCall {
	admin, part := c.adminParticipant()
	return &tg.PhoneCall{
		P2PAllowed: true, Video: c.info.Video, ID: c.info.ID, AccessHash: c.info.AccessHash,
		Date: c.info.Date, AdminID: admin, ParticipantID: part, GAOrB: gAorB,
		KeyFingerprint: c.fingerprint, Protocol: c.protocol, Connections: c.conns,
		StartDate: c.info.StartDate,
	}
}

// outgoingNow is an outgoing call's constructor in its current state.
func (c *call) outgoingNow() tg.PhoneCallClass {
	admin, part := c.adminParticipant()
	switch c.info.State {
	case StateRinging:
		return c.waiting(c.receiveDate)
	case StateExchanging:
		return &tg.PhoneCallAccepted{
			Video: c.info.Video, ID: c.info.ID, AccessHash: c.info.AccessHash, Date: c.info.Date,
			AdminID: admin, ParticipantID: part, GB: c.peerDH.gx, Protocol: c.protocol,
		}
	case StateActive:
		return c.phoneCall(c.peerDH.gx)
	case StateDiscarded:
		return &tg.PhoneCallDiscarded{Video: c.info.Video, ID: c.info.ID, Reason: c.reason, Duration: c.info.Duration}
	}
	return c.waiting(0)
}

// SetPeerBehaviour sets how peer reacts to calls the account makes.
func (s *Server) SetPeerBehaviour(peer int64, b Behaviour) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.behaviour[peer] = b
}

func (a *Account) newCallLocked(peer int64, outgoing, video bool) *call {
	s := a.s
	id := s.state.nextCall
	s.state.nextCall++
	c := &call{
		acct: a,
		info: CallInfo{
			ID: id, AccessHash: id*31 ^ 0x7ca11, Peer: peer, Outgoing: outgoing,
			Video: video, Date: s.dateLocked(),
		},
		peerDH:   s.peerSecretLocked(),
		protocol: defaultProtocol(),
	}
	for i := int64(1); i <= 2; i++ {
		c.conns = append(c.conns, &tg.PhoneConnection{
			ID: id*10 + i, IP: "127.0.0.1", Port: int(40000 + i), PeerTag: randomBytes(16),
		})
	}
	s.state.calls[id] = c
	return c
}

// callLocked is account a's call in; another account's call is unknown.
func (a *Account) callLocked(in tg.InputPhoneCall) (*call, error) {
	c, ok := a.s.state.calls[in.ID]
	if !ok || c.acct != a || c.info.AccessHash != in.AccessHash {
		return nil, tgerr.New(400, "CALL_PEER_INVALID")
	}
	return c, nil
}

func phoneCallResultLocked(c *call, pc tg.PhoneCallClass) *tg.PhonePhoneCall {
	return &tg.PhonePhoneCall{PhoneCall: pc, Users: c.acct.usersLocked(c.acct.id, c.info.Peer)}
}

// endLocked marks c discarded and returns the updates Telegram emits:
// updatePhoneCall(phoneCallDiscarded) and the service message (a pts event).
func (s *Server) endLocked(c *call, reason tg.PhoneCallDiscardReasonClass, duration int, by string, needRating bool) []tg.UpdateClass {
	c.info.State = StateDiscarded
	c.reason = reason
	c.info.Reason = reasonName(reason)
	c.info.Duration = duration
	c.info.DiscardedBy = by
	from, _ := c.adminParticipant()
	msg := &tg.MessageService{
		Out:    c.info.Outgoing,
		ID:     c.acct.nextMsgIDLocked(),
		FromID: &tg.PeerUser{UserID: from},
		PeerID: &tg.PeerUser{UserID: c.info.Peer},
		Date:   s.dateLocked(),
		Action: &tg.MessageActionPhoneCall{
			Video: c.info.Video, CallID: c.info.ID, Reason: reason, Duration: duration,
		},
	}
	return []tg.UpdateClass{
		&tg.UpdatePhoneCall{PhoneCall: &tg.PhoneCallDiscarded{
			NeedRating: needRating, NeedDebug: s.state.needDebug, Video: c.info.Video, ID: c.info.ID, Reason: reason, Duration: duration,
		}},
		c.acct.newMessageLocked(msg),
	}
}

// IncomingCall makes user `from` call the default account (see
// Account.IncomingCall).
func (s *Server) IncomingCall(from int64, video bool) (callID int64, err error) {
	return s.Account().IncomingCall(from, video)
}

// IncomingCall makes user `from` call the account: the server pushes
// updatePhoneCall(phoneCallRequested{g_a_hash}) to it. The sim holds the
// caller's secret a and confirms with g_a after phone.acceptCall.
func (a *Account) IncomingCall(from int64, video bool) (callID int64, err error) {
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.state.users[from]; !ok || from == ServiceID || s.isAccountLocked(from) {
		return 0, fmt.Errorf("sim: incoming call: unknown peer %d", from)
	}
	c := a.newCallLocked(from, false, video)
	c.info.State = StateRequested
	admin, part := c.adminParticipant()
	a.pushLocked(0, &tg.UpdatePhoneCall{PhoneCall: &tg.PhoneCallRequested{
		Video: video, ID: c.info.ID, AccessHash: c.info.AccessHash, Date: c.info.Date,
		AdminID: admin, ParticipantID: part, GAHash: GAHash(c.peerDH.gx), Protocol: c.protocol,
	}})
	return c.info.ID, nil
}

// PeerHangup makes the other user end the call: the server pushes
// phoneCallDiscarded{reason} and the service message. Duration counts from
// the call's start when it was active.
func (s *Server) PeerHangup(callID int64, reason tg.PhoneCallDiscardReasonClass) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.state.calls[callID]
	if !ok {
		return fmt.Errorf("sim: peer hangup: unknown call %d", callID)
	}
	if !c.live() {
		return fmt.Errorf("sim: peer hangup: call %d is %s", callID, c.info.State)
	}
	duration := 0
	if c.info.State == StateActive {
		duration = s.dateLocked() - c.info.StartDate
	}
	c.acct.pushLocked(0, s.endLocked(c, reason, duration, ByPeer, duration > 0)...)
	return nil
}

// AcceptedElsewhere simulates another device of the account accepting an
// incoming call: this session gets phoneCallDiscarded without a reason,
// and a later discardCall or acceptCall answers CALL_ALREADY_ACCEPTED.
func (s *Server) AcceptedElsewhere(callID int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.state.calls[callID]
	if !ok {
		return fmt.Errorf("sim: accepted elsewhere: unknown call %d", callID)
	}
	if c.info.Outgoing || c.info.State != StateRequested {
		return fmt.Errorf("sim: accepted elsewhere: call %d is not a ringing incoming call (%s)", callID, c.info.State)
	}
	c.info.State = StateElsewhere
	c.acct.pushLocked(0, &tg.UpdatePhoneCall{PhoneCall: &tg.PhoneCallDiscarded{Video: c.info.Video, ID: c.info.ID}})
	return nil
}

// PeerAnswer makes the peer of an outgoing ringing (or not yet delivered)
// call accept it: the server pushes phoneCallAccepted{g_b}.
func (s *Server) PeerAnswer(callID int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.state.calls[callID]
	if !ok {
		return fmt.Errorf("sim: peer answer: unknown call %d", callID)
	}
	if !c.info.Outgoing || (c.info.State != StateRinging && c.info.State != StateWaiting) {
		return fmt.Errorf("sim: peer answer: call %d is not an outgoing ringing call (%s)", callID, c.info.State)
	}
	s.peerAcceptLocked(c)
	return nil
}

func (s *Server) peerAcceptLocked(c *call) {
	c.info.State = StateExchanging
	c.acct.pushLocked(0, &tg.UpdatePhoneCall{PhoneCall: c.outgoingNow()})
}

// CallKey returns the peer's side of the call key and its fingerprint,
// known once the exchange reached the peer.
func (s *Server) CallKey(callID int64) (key []byte, fingerprint int64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, found := s.state.calls[callID]
	if !found || c.key == nil {
		return nil, 0, false
	}
	return append([]byte(nil), c.key...), c.fingerprint, true
}

// Call returns the server's record of a call.
func (s *Server) Call(callID int64) (CallInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.state.calls[callID]
	if !ok {
		return CallInfo{}, false
	}
	return c.info, true
}

// Calls returns every call of every account, oldest first (with one
// account: the account's calls; Account.Calls gives one account's).
func (s *Server) Calls() []CallInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]CallInfo, 0, len(s.state.calls))
	for id := int64(firstCall); id < s.state.nextCall; id++ {
		if c, ok := s.state.calls[id]; ok {
			out = append(out, c.info)
		}
	}
	return out
}

func (s *Server) requestCallLocked(rc *rpcCtx, r *tg.PhoneRequestCallRequest) (bin.Encoder, error) {
	a := rc.acct
	peer, err := a.resolveInputUserLocked(r.UserID)
	if err != nil {
		return nil, err
	}
	if peer == ServiceID || s.isAccountLocked(peer) {
		return nil, tgerr.New(400, "USER_ID_INVALID")
	}
	if len(r.GAHash) != 32 {
		return nil, tgerr.New(400, "G_A_HASH_INVALID")
	}
	// Telegram de-duplicates requestCall by random_id: a repeated request
	// (a client that restarted while it was in flight) gets the call it
	// created, as it is now.
	for _, c := range s.state.calls {
		if c.acct == a && c.info.Outgoing && c.info.Peer == peer && c.randomID == r.RandomID && r.RandomID != 0 {
			return phoneCallResultLocked(c, c.outgoingNow()), nil
		}
	}
	c := a.newCallLocked(peer, true, r.Video)
	c.randomID = r.RandomID
	c.ourGAHash = append([]byte(nil), r.GAHash...)
	c.info.State = StateWaiting
	if len(r.Protocol.LibraryVersions) > 0 {
		c.protocol.LibraryVersions = r.Protocol.LibraryVersions
	}
	switch b := s.state.behaviour[peer]; b {
	case Answer, RingForever:
		rc.after(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if c.info.State != StateWaiting {
				return
			}
			c.info.State = StateRinging
			c.receiveDate = s.dateLocked()
			a.pushLocked(0, &tg.UpdatePhoneCall{PhoneCall: c.waiting(c.receiveDate)})
			if b == Answer {
				s.peerAcceptLocked(c)
			}
		})
	case Busy:
		rc.after(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if c.live() {
				a.pushLocked(0, s.endLocked(c, &tg.PhoneCallDiscardReasonBusy{}, 0, ByPeer, false)...)
			}
		})
	}
	return phoneCallResultLocked(c, c.waiting(0)), nil
}

func (s *Server) receivedCallLocked(rc *rpcCtx, r *tg.PhoneReceivedCallRequest) (bin.Encoder, error) {
	c, err := rc.acct.callLocked(r.Peer)
	if err != nil {
		return nil, err
	}
	if c.info.State == StateDiscarded {
		return nil, tgerr.New(400, "CALL_ALREADY_DECLINED")
	}
	return &tg.BoolTrue{}, nil
}

func (s *Server) acceptCallLocked(rc *rpcCtx, r *tg.PhoneAcceptCallRequest) (bin.Encoder, error) {
	c, err := rc.acct.callLocked(r.Peer)
	if err != nil {
		return nil, err
	}
	switch {
	case c.info.Outgoing:
		return nil, tgerr.New(400, "CALL_PEER_INVALID")
	case c.info.State == StateElsewhere:
		return nil, tgerr.New(400, "CALL_ALREADY_ACCEPTED")
	case c.info.State == StateDiscarded:
		return nil, tgerr.New(400, "CALL_ALREADY_DECLINED")
	case c.info.State != StateRequested:
		// A repeated accept (new msg_id) of a call already accepted here.
		return nil, tgerr.New(400, "CALL_ALREADY_ACCEPTED")
	}
	key, fp, ok := c.peerDH.sharedKey(r.GB)
	if !ok {
		return nil, tgerr.New(400, "G_B_INVALID")
	}
	c.key, c.fingerprint = key, fp
	c.info.State = StateExchanging
	res := phoneCallResultLocked(c, c.waiting(s.dateLocked()))
	// The caller (the sim) confirms with g_a: the account gets phoneCall.
	rc.after(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if c.info.State != StateExchanging {
			return
		}
		c.info.State = StateActive
		c.info.StartDate = s.dateLocked()
		c.acct.pushLocked(0, &tg.UpdatePhoneCall{PhoneCall: c.phoneCall(c.peerDH.gx)})
		s.peerSignalLocked(c)
	})
	return res, nil
}

func (s *Server) confirmCallLocked(rc *rpcCtx, r *tg.PhoneConfirmCallRequest) (bin.Encoder, error) {
	c, err := rc.acct.callLocked(r.Peer)
	if err != nil {
		return nil, err
	}
	if !c.info.Outgoing {
		return nil, tgerr.New(400, "CALL_PEER_INVALID")
	}
	switch c.info.State {
	case StateExchanging:
	case StateActive:
		// A repeated confirm (new msg_id) with the same values.
		if r.KeyFingerprint == c.fingerprint {
			return phoneCallResultLocked(c, c.phoneCall(c.peerDH.gx)), nil
		}
		return nil, tgerr.New(400, "CALL_ALREADY_ACCEPTED")
	case StateDiscarded:
		return nil, tgerr.New(400, "CALL_ALREADY_DECLINED")
	default:
		return nil, tgerr.New(400, "CALL_PEER_INVALID")
	}
	fail := func(typ string) (bin.Encoder, error) {
		c.acct.pushLocked(0, s.endLocked(c, &tg.PhoneCallDiscardReasonDisconnect{}, 0, ByServer, false)...)
		return nil, tgerr.New(400, typ)
	}
	if !bytes.Equal(GAHash(r.GA), c.ourGAHash) {
		return fail("G_A_HASH_MISMATCH")
	}
	key, fp, ok := c.peerDH.sharedKey(r.GA)
	if !ok {
		return fail("G_A_INVALID")
	}
	c.key, c.fingerprint = key, fp
	if fp != r.KeyFingerprint {
		return fail("KEY_FINGERPRINT_MISMATCH")
	}
	c.info.State = StateActive
	c.info.StartDate = s.dateLocked()
	rc.after(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.peerSignalLocked(c)
	})
	return phoneCallResultLocked(c, c.phoneCall(c.peerDH.gx)), nil
}

func (s *Server) discardCallLocked(rc *rpcCtx, r *tg.PhoneDiscardCallRequest) (bin.Encoder, error) {
	c, err := rc.acct.callLocked(r.Peer)
	if err != nil {
		return nil, err
	}
	switch c.info.State {
	case StateElsewhere:
		return nil, tgerr.New(400, "CALL_ALREADY_ACCEPTED")
	case StateDiscarded:
		if c.info.DiscardedBy == BySelf {
			// A repeated discard of a call we discarded (its answer
			// lost, or re-sent): Telegram answers CALL_ALREADY_DECLINED.
			return nil, tgerr.New(400, "CALL_ALREADY_DECLINED")
		}
		return nil, tgerr.New(400, "CALL_PEER_INVALID")
	}
	wasActive := c.info.State == StateActive
	c.info.Video = c.info.Video || r.Video
	c.info.ConnectionID = r.ConnectionID
	ups := s.endLocked(c, r.Reason, r.Duration, BySelf, wasActive && r.Duration > 0)
	return c.acct.pushLocked(rc.session, ups...), nil
}

func (s *Server) setCallRatingLocked(rc *rpcCtx, r *tg.PhoneSetCallRatingRequest) (bin.Encoder, error) {
	c, err := rc.acct.callLocked(r.Peer)
	if err != nil {
		return nil, err
	}
	if r.Rating < 1 || r.Rating > 5 {
		return nil, tgerr.New(400, "RATING_INVALID")
	}
	c.info.Rating = r.Rating
	c.ratingComment = r.Comment
	return &tg.Updates{Updates: []tg.UpdateClass{}, Users: []tg.UserClass{}, Chats: []tg.ChatClass{}, Date: s.dateLocked()}, nil
}
