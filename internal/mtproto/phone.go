package mtproto

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/gotd/td/tg"
)

// ErrCallDiscarded: confirmCall or acceptCall answered with a discarded (or
// empty) call instead of the expected one; the result is still returned.
var ErrCallDiscarded = errors.New("call was discarded")

// Protocol is the phoneCallProtocol calld offers and accepts.
func Protocol() tg.PhoneCallProtocol {
	return tg.PhoneCallProtocol{
		UDPP2P:          true,
		UDPReflector:    true,
		MinLayer:        65,
		MaxLayer:        92,
		LibraryVersions: []string{"4.0.0", "4.0.1", "5.0.0", "7.0.0", "8.0.0"},
	}
}

// DiscardReason maps calld's reason names to Telegram's: missed, busy,
// hangup, disconnect.
func DiscardReason(reason string) (tg.PhoneCallDiscardReasonClass, error) {
	switch reason {
	case "missed":
		return &tg.PhoneCallDiscardReasonMissed{}, nil
	case "busy":
		return &tg.PhoneCallDiscardReasonBusy{}, nil
	case "hangup":
		return &tg.PhoneCallDiscardReasonHangup{}, nil
	case "disconnect":
		return &tg.PhoneCallDiscardReasonDisconnect{}, nil
	}
	return nil, fmt.Errorf("discard reason %q: want missed, busy, hangup or disconnect", reason)
}

// Discard is one phone.discardCall.
type Discard struct {
	Video        bool
	Peer         tg.InputPhoneCall
	Duration     int    // seconds; negative is sent as 0
	Reason       string // missed, busy, hangup or disconnect
	ConnectionID int64
}

// DiscardCall sends phone.discardCall. The Updates result has already been
// handed to the UpdatesSink when this returns; it is returned as well.
// Errors match ErrCallAlreadyAccepted, ErrCallAlreadyDeclined,
// ErrCallPeerInvalid, ErrCallOccupyFailed (after the retry budget),
// ErrFloodWait, ErrUnauthorized, ErrUnavailable or ErrUpdatesSink (then the
// Updates are returned too).
func (c *Client) DiscardCall(ctx context.Context, d Discard) (tg.UpdatesClass, error) {
	reason, err := DiscardReason(d.Reason)
	if err != nil {
		return nil, fmt.Errorf("phone.discardCall: %w", err)
	}
	dur := max(d.Duration, 0)
	dur = min(dur, math.MaxInt32)
	req := &tg.PhoneDiscardCallRequest{
		Video:        d.Video,
		Peer:         d.Peer,
		Duration:     dur,
		Reason:       reason,
		ConnectionID: d.ConnectionID,
	}
	// Invoked by hand (not api.PhoneDiscardCall) so that the decoded result
	// survives an ErrUpdatesSink error.
	var box tg.UpdatesBox
	if err := c.api.Invoker().Invoke(ctx, req, &box); err != nil {
		if errors.Is(err, ErrUpdatesSink) {
			return box.Updates, fmt.Errorf("phone.discardCall %d: %w", d.Peer.ID, err)
		}
		return nil, fmt.Errorf("phone.discardCall %d: %w", d.Peer.ID, err)
	}
	return box.Updates, nil
}

// ReceivedCall sends phone.receivedCall: the incoming call is ringing here.
func (c *Client) ReceivedCall(ctx context.Context, peer tg.InputPhoneCall) error {
	if _, err := c.api.PhoneReceivedCall(ctx, peer); err != nil {
		return fmt.Errorf("phone.receivedCall %d: %w", peer.ID, err)
	}
	return nil
}

// CallConfig is what help.getConfig says about calls, and the server's
// clock at the time of the answer.
type CallConfig struct {
	Receive, Ring time.Duration // call_receive_timeout_ms, call_ring_timeout_ms
	Date          int           // config.date: the server's clock, unix seconds
}

// CallConfig returns help.getConfig's call timeouts and date; a zero
// timeout from the server gives Telegram's usual defaults, 20 s and 90 s.
func (c *Client) CallConfig(ctx context.Context) (CallConfig, error) {
	cfg, err := c.api.HelpGetConfig(ctx)
	if err != nil {
		return CallConfig{}, fmt.Errorf("help.getConfig: %w", err)
	}
	cc := CallConfig{
		Receive: time.Duration(cfg.CallReceiveTimeoutMs) * time.Millisecond,
		Ring:    time.Duration(cfg.CallRingTimeoutMs) * time.Millisecond,
		Date:    cfg.Date,
	}
	if cc.Receive <= 0 {
		cc.Receive = 20 * time.Second
	}
	if cc.Ring <= 0 {
		cc.Ring = 90 * time.Second
	}
	return cc, nil
}

// OutgoingCall is our side of an outgoing call's key exchange: the secret a
// and g_a. It never prints its secret (String and GoString are redacted).
type OutgoingCall struct {
	id         int64
	accessHash int64
	params     *dhParams
	a          *exponent
	protocol   tg.PhoneCallProtocol // what RequestCall offered; ConfirmCall repeats it
}

// ID and AccessHash identify the call (from phone.requestCall's result).
func (o *OutgoingCall) ID() int64         { return o.id }
func (o *OutgoingCall) AccessHash() int64 { return o.accessHash }

// Peer is the call as an InputPhoneCall.
func (o *OutgoingCall) Peer() tg.InputPhoneCall {
	return tg.InputPhoneCall{ID: o.id, AccessHash: o.accessHash}
}

func (o *OutgoingCall) String() string   { return fmt.Sprintf("OutgoingCall{id:%d}", o.id) }
func (o *OutgoingCall) GoString() string { return o.String() }

// PrepareCall makes our side of a new outgoing call's key exchange:
// messages.getDhConfig (checked) and a fresh secret a. Persist it
// (Saved) before RequestCall sends sha256(g_a), so that a restart
// can re-send the same request and still confirm the call.
func (c *Client) PrepareCall(ctx context.Context) (*OutgoingCall, error) {
	params, random, err := c.dhConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("request call: %w", err)
	}
	a, err := newExponent(c.rand, params, random)
	if err != nil {
		return nil, fmt.Errorf("request call: %w", err)
	}
	return &OutgoingCall{params: params, a: a}, nil
}

// GAHash is sha256(g_a), what phone.requestCall commits to.
func (o *OutgoingCall) GAHash() []byte {
	h := sha256.Sum256(o.a.gx)
	return h[:]
}

// RequestCall sends phone.requestCall for a prepared call with sha256(g_a),
// random_id and the protocol (a zero protocol means Protocol()). Telegram
// answers a repeated random_id with the call it already created, so the
// same request may be sent again after a restart. The OutgoingCall learns
// the call's id and access hash from the result; it is needed for
// ConfirmCall once phoneCallAccepted arrives.
func (c *Client) RequestCall(ctx context.Context, user tg.InputUserClass, out *OutgoingCall, randomID int32, video bool, protocol tg.PhoneCallProtocol) (*tg.PhonePhoneCall, error) {
	if protocol.MaxLayer == 0 {
		protocol = Protocol()
	}
	out.protocol = protocol
	res, err := c.api.PhoneRequestCall(ctx, &tg.PhoneRequestCallRequest{
		Video:    video,
		UserID:   user,
		RandomID: int(randomID),
		GAHash:   out.GAHash(),
		Protocol: protocol,
	})
	if err != nil {
		return nil, fmt.Errorf("phone.requestCall: %w", err)
	}
	switch pc := res.PhoneCall.(type) {
	case *tg.PhoneCallDiscarded:
		return res, fmt.Errorf("phone.requestCall: %w (call %d)", ErrCallDiscarded, pc.ID)
	case *tg.PhoneCallEmpty, nil:
		return res, fmt.Errorf("phone.requestCall: unexpected result %T", res.PhoneCall)
	}
	out.id, out.accessHash = res.PhoneCall.GetID(), accessHashOf(res.PhoneCall)
	return res, nil
}

// accessHashOf is the access hash of a constructor that has one.
func accessHashOf(pc tg.PhoneCallClass) int64 {
	if p, ok := pc.(interface{ GetAccessHash() int64 }); ok {
		return p.GetAccessHash()
	}
	return 0
}

// OnAccepted checks the peer's g_b from phoneCallAccepted and computes the
// call key and its fingerprint. Pure; ConfirmCall calls it.
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

// ConfirmCall answers phoneCallAccepted: it computes the key (OnAccepted),
// sends phone.confirmCall with g_a and the fingerprint, and checks the
// fingerprint of the returned phoneCall. A mismatch gives ErrKeyMismatch; a
// discarded call gives ErrCallDiscarded (with res). The protocol is the one
// RequestCall offered. The key is for the media side only: never log it.
func (c *Client) ConfirmCall(ctx context.Context, out *OutgoingCall, acc *tg.PhoneCallAccepted) (key []byte, fp int64, res *tg.PhonePhoneCall, err error) {
	key, fp, err = OnAccepted(out, acc)
	if err != nil {
		return nil, 0, nil, err
	}
	protocol := out.protocol
	if protocol.MaxLayer == 0 {
		protocol = Protocol()
	}
	res, err = c.api.PhoneConfirmCall(ctx, &tg.PhoneConfirmCallRequest{
		Peer:           out.Peer(),
		GA:             out.a.gx,
		KeyFingerprint: fp,
		Protocol:       protocol,
	})
	if err != nil {
		return nil, 0, nil, fmt.Errorf("phone.confirmCall %d: %w", out.id, err)
	}
	switch pc := res.PhoneCall.(type) {
	case *tg.PhoneCall:
		if pc.KeyFingerprint != fp {
			return nil, 0, res, fmt.Errorf("phone.confirmCall %d: %w: fingerprint %d, ours %d", out.id, ErrKeyMismatch, pc.KeyFingerprint, fp)
		}
		return key, fp, res, nil
	case *tg.PhoneCallDiscarded, *tg.PhoneCallEmpty:
		return nil, 0, res, fmt.Errorf("phone.confirmCall %d: %w", out.id, ErrCallDiscarded)
	default:
		return nil, 0, res, fmt.Errorf("phone.confirmCall %d: unexpected result %T", out.id, res.PhoneCall)
	}
}

// IncomingCall is our side of an accepted incoming call's key exchange: the
// secret b, g_b and the g_a_hash of phoneCallRequested. It never prints its
// secret.
type IncomingCall struct {
	id         int64
	accessHash int64
	gAHash     []byte
	params     *dhParams
	b          *exponent
}

// ID and AccessHash identify the call.
func (in *IncomingCall) ID() int64         { return in.id }
func (in *IncomingCall) AccessHash() int64 { return in.accessHash }

func (in *IncomingCall) String() string   { return fmt.Sprintf("IncomingCall{id:%d}", in.id) }
func (in *IncomingCall) GoString() string { return in.String() }

// PrepareAccept is our half of accepting a call, before anything is sent:
// messages.getDhConfig (checked) and a fresh secret b. A caller that must
// survive a restart persists it (Saved) before SendAccept.
func (c *Client) PrepareAccept(ctx context.Context, peer tg.InputPhoneCall, gAHash []byte) (*IncomingCall, error) {
	if len(gAHash) != sha256.Size {
		return nil, fmt.Errorf("accept call %d: %w: g_a_hash has %d bytes, want %d", peer.ID, ErrBadDH, len(gAHash), sha256.Size)
	}
	params, random, err := c.dhConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("accept call %d: %w", peer.ID, err)
	}
	b, err := newExponent(c.rand, params, random)
	if err != nil {
		return nil, fmt.Errorf("accept call %d: %w", peer.ID, err)
	}
	return &IncomingCall{
		id:         peer.ID,
		accessHash: peer.AccessHash,
		gAHash:     append([]byte(nil), gAHash...),
		params:     params,
		b:          b,
	}, nil
}

// SendAccept sends phone.acceptCall with in's g_b, offering protocol (a
// zero protocol means Protocol()). Sending it again with the same in
// (after a restart) offers the same key.
func (c *Client) SendAccept(ctx context.Context, in *IncomingCall, protocol tg.PhoneCallProtocol) (*tg.PhonePhoneCall, error) {
	if protocol.MaxLayer == 0 {
		protocol = Protocol()
	}
	peer := tg.InputPhoneCall{ID: in.id, AccessHash: in.accessHash}
	res, err := c.api.PhoneAcceptCall(ctx, &tg.PhoneAcceptCallRequest{
		Peer:     peer,
		GB:       in.b.gx,
		Protocol: protocol,
	})
	if err != nil {
		return nil, fmt.Errorf("phone.acceptCall %d: %w", peer.ID, err)
	}
	switch res.PhoneCall.(type) {
	case *tg.PhoneCallDiscarded, *tg.PhoneCallEmpty:
		return res, fmt.Errorf("phone.acceptCall %d: %w", peer.ID, ErrCallDiscarded)
	}
	return res, nil
}

// CompleteIncoming checks the phoneCall that ends an incoming call's key
// exchange: sha256(g_a) must equal the g_a_hash of phoneCallRequested, g_a
// must be in range, and the key's fingerprint must equal key_fingerprint.
// A hash or fingerprint mismatch gives ErrKeyMismatch. Pure.
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
