package callkey

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/gotd/td/tg"
)

var (
	// ErrKeyMismatch: the call's key fingerprint or g_a hash does not match
	// (end the call with reason disconnect).
	ErrKeyMismatch = errors.New("call key mismatch")
	// ErrBadDH: the server's or the peer's DH parameters fail Telegram's
	// checks (prime, generator, g_a/g_b range).
	ErrBadDH = errors.New("invalid DH parameters")
)

// OutgoingCall is our side of an outgoing call's key exchange: the secret a
// and g_a. It never prints its secret (String and GoString are redacted).
type OutgoingCall struct {
	id         int64
	accessHash int64
	params     *Params
	a          *exponent
	protocol   tg.PhoneCallProtocol // what phone.requestCall offered; phone.confirmCall repeats it
}

// NewOutgoing makes our side of a new outgoing call's exchange: a fresh
// secret a from rand mixed with the server's random bytes of
// messages.getDhConfig.
func NewOutgoing(rand io.Reader, params *Params, serverRandom []byte) (*OutgoingCall, error) {
	a, err := newExponent(rand, params, serverRandom)
	if err != nil {
		return nil, err
	}
	return &OutgoingCall{params: params, a: a}, nil
}

// ID and AccessHash identify the call (from phone.requestCall's result).
func (o *OutgoingCall) ID() int64         { return o.id }
func (o *OutgoingCall) AccessHash() int64 { return o.accessHash }

// SetCall records the call's id and access hash from phone.requestCall's
// result.
func (o *OutgoingCall) SetCall(id, accessHash int64) { o.id, o.accessHash = id, accessHash }

// Protocol is the protocol phone.requestCall offered (zero before).
func (o *OutgoingCall) Protocol() tg.PhoneCallProtocol { return o.protocol }

// SetProtocol records the protocol phone.requestCall offers.
func (o *OutgoingCall) SetProtocol(p tg.PhoneCallProtocol) { o.protocol = p }

// Peer is the call as an InputPhoneCall.
func (o *OutgoingCall) Peer() tg.InputPhoneCall {
	return tg.InputPhoneCall{ID: o.id, AccessHash: o.accessHash}
}

func (o *OutgoingCall) String() string   { return fmt.Sprintf("OutgoingCall{id:%d}", o.id) }
func (o *OutgoingCall) GoString() string { return o.String() }

// GA is g_a, what phone.confirmCall reveals.
func (o *OutgoingCall) GA() []byte { return o.a.gx }

// GAHash is sha256(g_a), what phone.requestCall commits to.
func (o *OutgoingCall) GAHash() []byte {
	h := sha256.Sum256(o.a.gx)
	return h[:]
}

// OnAccepted checks the peer's g_b from phoneCallAccepted and computes the
// call key and its fingerprint.
func OnAccepted(out *OutgoingCall, acc *tg.PhoneCallAccepted) (key []byte, fp int64, err error) {
	if out == nil || acc == nil {
		return nil, 0, errors.New("phoneCallAccepted: nil call")
	}
	if acc.ID != out.id {
		return nil, 0, fmt.Errorf("phoneCallAccepted: call id %d, want %d", acc.ID, out.id)
	}
	key, fp, err = out.a.sharedKey(out.params, acc.GB)
	if err != nil {
		return nil, 0, fmt.Errorf("phoneCallAccepted %d: g_b: %w", acc.ID, err)
	}
	return key, fp, nil
}

// IncomingCall is our side of an accepted incoming call's key exchange: the
// secret b, g_b and the g_a_hash of phoneCallRequested. It never prints its
// secret.
type IncomingCall struct {
	id         int64
	accessHash int64
	gAHash     []byte
	params     *Params
	b          *exponent
}

// NewIncoming makes our side of accepting the call peer, whose
// phoneCallRequested committed to gAHash: a fresh secret b from rand mixed
// with the server's random bytes of messages.getDhConfig.
func NewIncoming(rand io.Reader, params *Params, serverRandom []byte, peer tg.InputPhoneCall, gAHash []byte) (*IncomingCall, error) {
	b, err := newExponent(rand, params, serverRandom)
	if err != nil {
		return nil, err
	}
	return &IncomingCall{
		id:         peer.ID,
		accessHash: peer.AccessHash,
		gAHash:     append([]byte(nil), gAHash...),
		params:     params,
		b:          b,
	}, nil
}

// ID and AccessHash identify the call.
func (in *IncomingCall) ID() int64         { return in.id }
func (in *IncomingCall) AccessHash() int64 { return in.accessHash }

// Peer is the call as an InputPhoneCall.
func (in *IncomingCall) Peer() tg.InputPhoneCall {
	return tg.InputPhoneCall{ID: in.id, AccessHash: in.accessHash}
}

// GB is g_b, what phone.acceptCall sends.
func (in *IncomingCall) GB() []byte { return in.b.gx }

func (in *IncomingCall) String() string   { return fmt.Sprintf("IncomingCall{id:%d}", in.id) }
func (in *IncomingCall) GoString() string { return in.String() }

// CompleteIncoming checks the phoneCall that ends an incoming call's key
// exchange: sha256(g_a) must equal the g_a_hash of phoneCallRequested, g_a
// must be in range, and the key's fingerprint must equal key_fingerprint.
// A hash or fingerprint mismatch gives ErrKeyMismatch.
func CompleteIncoming(in *IncomingCall, call *tg.PhoneCall) (key []byte, fp int64, err error) {
	if in == nil || call == nil {
		return nil, 0, errors.New("phoneCall: nil call")
	}
	if call.ID != in.id {
		return nil, 0, fmt.Errorf("phoneCall: call id %d, want %d", call.ID, in.id)
	}
	if !gaHashMatches(call.GAOrB, in.gAHash) {
		return nil, 0, fmt.Errorf("phoneCall %d: %w: sha256(g_a) differs from g_a_hash", call.ID, ErrKeyMismatch)
	}
	key, fp, err = in.b.sharedKey(in.params, call.GAOrB)
	if err != nil {
		return nil, 0, fmt.Errorf("phoneCall %d: g_a: %w", call.ID, err)
	}
	if fp != call.KeyFingerprint {
		return nil, 0, fmt.Errorf("phoneCall %d: %w: fingerprint %d, ours %d", call.ID, ErrKeyMismatch, call.KeyFingerprint, fp)
	}
	return key, fp, nil
}
