package mtproto

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/gotd/td/tg"

	"github.com/calld/calld/internal/mtproto/callkey"
	"github.com/calld/calld/internal/mtproto/middleware"
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

// discardReason maps calld's reason names to Telegram's: missed, busy,
// hangup, disconnect.
func discardReason(reason string) (tg.PhoneCallDiscardReasonClass, error) {
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
// Errors are typed by the middlewares (see middleware.APIErrorCode), e.g.
// they match middleware.ErrCallAlreadyDeclined, ErrCallOccupyFailed (after
// the retry budget), ErrFloodWait, ErrUnauthorized or ErrUpdatesSink (then
// the Updates are returned too).
func (c *Client) DiscardCall(ctx context.Context, d Discard) (tg.UpdatesClass, error) {
	reason, err := discardReason(d.Reason)
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
	// survives a middleware.ErrUpdatesSink error.
	var box tg.UpdatesBox
	if err := c.api.Invoker().Invoke(ctx, req, &box); err != nil {
		if errors.Is(err, middleware.ErrUpdatesSink) {
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

// PrepareCall makes our side of a new outgoing call's key exchange:
// messages.getDhConfig (checked) and a fresh secret a. Persist it
// (Saved) before RequestCall sends sha256(g_a), so that a restart
// can re-send the same request and still confirm the call.
func (c *Client) PrepareCall(ctx context.Context) (*callkey.OutgoingCall, error) {
	params, random, err := c.dhConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("request call: %w", err)
	}
	out, err := callkey.NewOutgoing(c.rand, params, random)
	if err != nil {
		return nil, fmt.Errorf("request call: %w", err)
	}
	return out, nil
}

// RequestCall sends phone.requestCall for a prepared call with sha256(g_a),
// random_id and the protocol (a zero protocol means Protocol()). Telegram
// answers a repeated random_id with the call it already created, so the
// same request may be sent again after a restart. The OutgoingCall learns
// the call's id and access hash from the result; it is needed for
// ConfirmCall once phoneCallAccepted arrives.
func (c *Client) RequestCall(ctx context.Context, user tg.InputUserClass, out *callkey.OutgoingCall, randomID int32, video bool, protocol tg.PhoneCallProtocol) (*tg.PhonePhoneCall, error) {
	if protocol.MaxLayer == 0 {
		protocol = Protocol()
	}
	out.SetProtocol(protocol)
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
	out.SetCall(res.PhoneCall.GetID(), accessHashOf(res.PhoneCall))
	return res, nil
}

// accessHashOf is the access hash of a constructor that has one.
func accessHashOf(pc tg.PhoneCallClass) int64 {
	if p, ok := pc.(interface{ GetAccessHash() int64 }); ok {
		return p.GetAccessHash()
	}
	return 0
}

// ConfirmCall answers phoneCallAccepted: it computes the key (OnAccepted),
// sends phone.confirmCall with g_a and the fingerprint, and checks the
// fingerprint of the returned phoneCall. A mismatch gives callkey.ErrKeyMismatch; a
// discarded call gives ErrCallDiscarded (with res). The protocol is the one
// RequestCall offered. The key is for the media side only: never log it.
func (c *Client) ConfirmCall(ctx context.Context, out *callkey.OutgoingCall, acc *tg.PhoneCallAccepted) (key []byte, fp int64, res *tg.PhonePhoneCall, err error) {
	key, fp, err = callkey.OnAccepted(out, acc)
	if err != nil {
		return nil, 0, nil, err
	}
	protocol := out.Protocol()
	if protocol.MaxLayer == 0 {
		protocol = Protocol()
	}
	res, err = c.api.PhoneConfirmCall(ctx, &tg.PhoneConfirmCallRequest{
		Peer:           out.Peer(),
		GA:             out.GA(),
		KeyFingerprint: fp,
		Protocol:       protocol,
	})
	if err != nil {
		return nil, 0, nil, fmt.Errorf("phone.confirmCall %d: %w", out.ID(), err)
	}
	switch pc := res.PhoneCall.(type) {
	case *tg.PhoneCall:
		if pc.KeyFingerprint != fp {
			return nil, 0, res, fmt.Errorf("phone.confirmCall %d: %w: fingerprint %d, ours %d", out.ID(), callkey.ErrKeyMismatch, pc.KeyFingerprint, fp)
		}
		return key, fp, res, nil
	case *tg.PhoneCallDiscarded, *tg.PhoneCallEmpty:
		return nil, 0, res, fmt.Errorf("phone.confirmCall %d: %w", out.ID(), ErrCallDiscarded)
	default:
		return nil, 0, res, fmt.Errorf("phone.confirmCall %d: unexpected result %T", out.ID(), res.PhoneCall)
	}
}

// PrepareAccept is our half of accepting a call, before anything is sent:
// messages.getDhConfig (checked) and a fresh secret b. A caller that must
// survive a restart persists it (Saved) before SendAccept.
func (c *Client) PrepareAccept(ctx context.Context, peer tg.InputPhoneCall, gAHash []byte) (*callkey.IncomingCall, error) {
	if len(gAHash) != sha256.Size {
		return nil, fmt.Errorf("accept call %d: %w: g_a_hash has %d bytes, want %d", peer.ID, callkey.ErrBadDH, len(gAHash), sha256.Size)
	}
	params, random, err := c.dhConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("accept call %d: %w", peer.ID, err)
	}
	in, err := callkey.NewIncoming(c.rand, params, random, peer, gAHash)
	if err != nil {
		return nil, fmt.Errorf("accept call %d: %w", peer.ID, err)
	}
	return in, nil
}

// SendAccept sends phone.acceptCall with in's g_b, offering protocol (a
// zero protocol means Protocol()). Sending it again with the same in
// (after a restart) offers the same key.
func (c *Client) SendAccept(ctx context.Context, in *callkey.IncomingCall, protocol tg.PhoneCallProtocol) (*tg.PhonePhoneCall, error) {
	if protocol.MaxLayer == 0 {
		protocol = Protocol()
	}
	peer := in.Peer()
	res, err := c.api.PhoneAcceptCall(ctx, &tg.PhoneAcceptCallRequest{
		Peer:     peer,
		GB:       in.GB(),
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

// dhConfig calls messages.getDhConfig with the version of the parameters
// verified last (so an unchanged config costs no re-check) and returns the
// verified parameters and the server's random bytes.
func (c *Client) dhConfig(ctx context.Context) (*callkey.Params, []byte, error) {
	c.dhMu.Lock()
	cached := c.dh
	c.dhMu.Unlock()
	req := &tg.MessagesGetDhConfigRequest{RandomLength: callkey.RandomLength}
	if cached != nil {
		req.Version = cached.Version()
	}
	res, err := c.api.MessagesGetDhConfig(ctx, req)
	if err != nil {
		return nil, nil, fmt.Errorf("messages.getDhConfig: %w", err)
	}
	switch res := res.(type) {
	case *tg.MessagesDhConfigNotModified:
		if cached == nil {
			return nil, nil, fmt.Errorf("messages.getDhConfig: %w: dhConfigNotModified without a known config", callkey.ErrBadDH)
		}
		return cached, res.Random, nil
	case *tg.MessagesDhConfig:
		params, err := callkey.NewParams(res.G, res.P, res.Version)
		if err != nil {
			return nil, nil, fmt.Errorf("messages.getDhConfig version %d: %w", res.Version, err)
		}
		c.dhMu.Lock()
		c.dh = params
		c.dhMu.Unlock()
		return params, res.Random, nil
	default:
		return nil, nil, fmt.Errorf("messages.getDhConfig: unexpected result %T", res)
	}
}
