package manager

import (
	"encoding/json"
	"fmt"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/tg"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/mtproto/callkey"
)

// Key is an established call key: the shared secret for the media side.
type Key struct {
	Bytes       []byte
	Fingerprint int64
}

// secrets is what a live call holds that never reaches the call record,
// the control API's answers (but media) or a log line. What a call needs
// to go on after a restart is persisted beside the record
// (store.Tx.PutCallSecrets, as private as the session's auth key) and
// erased by the store when the call ends (CONTRACT §5.1).
type secrets struct {
	gAHash      []byte
	incoming    *callkey.IncomingCall
	outgoing    *callkey.OutgoingCall
	accepted    *tg.PhoneCallAccepted
	early       []tg.PhoneCallClass // constructors held until acceptCall's result (not persisted)
	key         *Key
	call        *tg.PhoneCall // the phoneCall that set the key: protocol, relays with their secrets
	protocol    tg.PhoneCallProtocol
	connections []tg.PhoneConnectionClass

	// dirty: changed since it was last persisted.
	dirty bool
	// saved: the store holds (or will hold) this call's secrets. A call
	// restored without them was recorded before calld persisted them.
	saved bool
}

func (s *secrets) setKey(k Key, p *tg.PhoneCall) {
	s.key = &k
	s.call = p
	s.protocol = p.Protocol
	s.connections = p.Connections
}

// String never prints the key.
func (s *secrets) String() string { return "secrets(redacted)" }

// wipe drops the key material of an ended call.
func (s *secrets) wipe() {
	if s.key != nil {
		for i := range s.key.Bytes {
			s.key.Bytes[i] = 0
		}
	}
	*s = secrets{}
}

// savedSecrets is the persisted form of secrets.
type savedSecrets struct {
	GAHash      []byte          `json:"g_a_hash,omitempty"`
	Incoming    *callkey.CallDH `json:"incoming,omitempty"`
	Outgoing    *callkey.CallDH `json:"outgoing,omitempty"`
	Accepted    []byte          `json:"accepted,omitempty"` // phoneCallAccepted, TL
	Key         []byte          `json:"key,omitempty"`
	Fingerprint int64           `json:"fingerprint,omitempty"`
	Call        []byte          `json:"call,omitempty"` // phoneCall, TL
	// Offer: the protocol an accept offers (a per-call override) until the
	// key's phoneCall names the server's choice.
	Offer *tg.PhoneCallProtocol `json:"offer,omitempty"`
}

func encodeTL(e bin.Encoder) ([]byte, error) {
	var b bin.Buffer
	if err := e.Encode(&b); err != nil {
		return nil, err
	}
	return b.Buf, nil
}

// marshal is the persisted form of s.
func (s *secrets) marshal() ([]byte, error) {
	var v savedSecrets
	v.GAHash = s.gAHash
	if s.incoming != nil {
		d := s.incoming.Saved()
		v.Incoming = &d
	}
	if s.outgoing != nil {
		d := s.outgoing.Saved()
		v.Outgoing = &d
	}
	var err error
	if s.accepted != nil {
		if v.Accepted, err = encodeTL(s.accepted); err != nil {
			return nil, fmt.Errorf("phoneCallAccepted: %w", err)
		}
	}
	if s.key != nil {
		v.Key, v.Fingerprint = s.key.Bytes, s.key.Fingerprint
	}
	if s.key == nil && s.protocol.MaxLayer != 0 {
		p := s.protocol
		v.Offer = &p
	}
	if s.call != nil {
		if v.Call, err = encodeTL(s.call); err != nil {
			return nil, fmt.Errorf("phoneCall: %w", err)
		}
	}
	return json.Marshal(v)
}

// unmarshalSecrets rebuilds what marshal wrote.
func unmarshalSecrets(b []byte) (*secrets, error) {
	var v savedSecrets
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	s := &secrets{gAHash: v.GAHash, saved: true}
	var err error
	if v.Incoming != nil {
		if s.incoming, err = callkey.RestoreIncoming(*v.Incoming); err != nil {
			return nil, err
		}
	}
	if v.Outgoing != nil {
		if s.outgoing, err = callkey.RestoreOutgoing(*v.Outgoing); err != nil {
			return nil, err
		}
	}
	if len(v.Accepted) > 0 {
		s.accepted = &tg.PhoneCallAccepted{}
		if err := s.accepted.Decode(&bin.Buffer{Buf: v.Accepted}); err != nil {
			return nil, fmt.Errorf("phoneCallAccepted: %w", err)
		}
	}
	if v.Offer != nil {
		s.protocol = *v.Offer
	}
	if len(v.Key) > 0 {
		if len(v.Call) == 0 {
			return nil, fmt.Errorf("a key without its phoneCall")
		}
		p := &tg.PhoneCall{}
		if err := p.Decode(&bin.Buffer{Buf: v.Call}); err != nil {
			return nil, fmt.Errorf("phoneCall: %w", err)
		}
		s.setKey(Key{Bytes: v.Key, Fingerprint: v.Fingerprint}, p)
	}
	return s, nil
}

// secretsChanged queues c's secrets for the next commit.
func (m *Manager) secretsChanged(c *call) {
	c.secrets.dirty = true
	c.secrets.saved = true
	m.dirty[c] = true
}

// canContinue reports whether a restored call holds what its state needs
// to go on: the caller's g_a_hash to accept a ringing call, our half of
// the exchange to complete it, the key of an active call.
func canContinue(rec calld.Call, s *secrets) bool {
	if s == nil || !s.saved {
		return rec.State == calld.StateHangingUp || rec.State == calld.StateRequesting
	}
	in := rec.Direction == calld.DirectionIncoming
	switch rec.State {
	case calld.StateWaiting, calld.StateRinging:
		if in {
			return len(s.gAHash) > 0
		}
		return s.outgoing != nil
	case calld.StateAccepting:
		return len(s.gAHash) > 0
	case calld.StateExchangingKeys:
		if in {
			return s.incoming != nil
		}
		return s.key != nil || s.outgoing != nil && s.accepted != nil
	case calld.StateActive:
		return s.key != nil
	}
	return true
}
