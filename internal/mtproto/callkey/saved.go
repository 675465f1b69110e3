package callkey

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/gotd/td/tg"
)

// CallDH is our half of a call's key exchange in the form the state file
// keeps, so that the exchange completes after a restart (CONTRACT §5.1).
// X is the secret exponent (a or b): it is as private as the session's
// auth key, never logged and never printed (String is redacted).
type CallDH struct {
	ID         int64  `json:"id,string"`
	AccessHash int64  `json:"access_hash,string"`
	GAHash     []byte `json:"g_a_hash,omitempty"` // incoming: the caller's commitment
	G          int    `json:"g"`
	P          []byte `json:"p"`
	Version    int    `json:"version"`
	X          []byte `json:"x"`
	GX         []byte `json:"gx"`
	// Protocol: an outgoing call's offer in requestCall, which
	// confirmCall repeats.
	Protocol *tg.PhoneCallProtocol `json:"protocol,omitempty"`
}

func (s CallDH) String() string   { return fmt.Sprintf("CallDH{id:%d}", s.ID) }
func (s CallDH) GoString() string { return s.String() }

func savedDH(id, accessHash int64, params *Params, e *exponent) CallDH {
	return CallDH{
		ID: id, AccessHash: accessHash,
		G: params.g, P: params.p.Bytes(), Version: params.version,
		X: e.x.Bytes(), GX: append([]byte(nil), e.gx...),
	}
}

// exponent rebuilds the parameters and the exponent, checking that they
// still belong together (g^x mod p == g_x) and that g_x is in range.
func (s CallDH) exponent() (*Params, *exponent, error) {
	p := new(big.Int).SetBytes(s.P)
	if p.BitLen() != dhBits || s.G < 2 || len(s.X) == 0 {
		return nil, nil, fmt.Errorf("call %d: %w: saved DH parameters are malformed", s.ID, ErrBadDH)
	}
	x := new(big.Int).SetBytes(s.X)
	gx := new(big.Int).Exp(big.NewInt(int64(s.G)), x, p)
	if gx.Cmp(new(big.Int).SetBytes(s.GX)) != 0 {
		return nil, nil, fmt.Errorf("call %d: %w: saved g_x does not match the saved secret", s.ID, ErrBadDH)
	}
	if err := checkGX(gx, p); err != nil {
		return nil, nil, fmt.Errorf("call %d: %w", s.ID, err)
	}
	return &Params{g: s.G, p: p, version: s.Version}, &exponent{x: x, gx: gx.FillBytes(make([]byte, dhBytes))}, nil
}

// Saved is o in the form the state file keeps.
func (o *OutgoingCall) Saved() CallDH {
	s := savedDH(o.id, o.accessHash, o.params, o.a)
	if o.protocol.MaxLayer != 0 {
		p := o.protocol
		s.Protocol = &p
	}
	return s
}

// Saved is in in the form the state file keeps.
func (in *IncomingCall) Saved() CallDH {
	s := savedDH(in.id, in.accessHash, in.params, in.b)
	s.GAHash = append([]byte(nil), in.gAHash...)
	return s
}

// RestoreOutgoing rebuilds an outgoing call's half of the exchange.
func RestoreOutgoing(s CallDH) (*OutgoingCall, error) {
	params, a, err := s.exponent()
	if err != nil {
		return nil, err
	}
	out := &OutgoingCall{id: s.ID, accessHash: s.AccessHash, params: params, a: a}
	if s.Protocol != nil {
		out.protocol = *s.Protocol
	}
	return out, nil
}

// RestoreIncoming rebuilds an accepted incoming call's half of the
// exchange.
func RestoreIncoming(s CallDH) (*IncomingCall, error) {
	if len(s.GAHash) == 0 {
		return nil, errors.New("restore incoming call: no g_a_hash")
	}
	params, b, err := s.exponent()
	if err != nil {
		return nil, err
	}
	return &IncomingCall{id: s.ID, accessHash: s.AccessHash, gAHash: append([]byte(nil), s.GAHash...), params: params, b: b}, nil
}
