package calld

import (
	"context"
	"encoding/json"
)

// CallService is what the daemon (the call manager) provides to the control
// API. Errors should be *calld.Error values (or wrap one) so that the API
// can answer with the right code; any other error is "internal" (500).
type CallService interface {
	// Status is the daemon's summary (GET /v1/status).
	Status(ctx context.Context) (Status, error)
	// Calls lists the live calls, or every known call when all is set,
	// newest first.
	Calls(ctx context.Context, all bool) ([]Call, error)
	// Call returns one call, or a not_found error.
	Call(ctx context.Context, id int64) (Call, error)
	// Discard ends or refuses a call; reason is one of ReasonAuto, busy,
	// hangup, missed, disconnect (already validated).
	Discard(ctx context.Context, id int64, reason Reason) (Call, error)
	// Place places an outgoing call to peer ("@username" or a decimal
	// user id, already syntax-checked); protocol, when not nil, overrides
	// parts of the configured [media] protocol for this call.
	Place(ctx context.Context, peer string, video bool, protocol *ProtocolOverride) (Call, error)
	// Accept accepts an incoming ringing call; protocol as for Place.
	Accept(ctx context.Context, id int64, protocol *ProtocolOverride) (Call, error)
	// Media returns what a media engine needs for an active call.
	Media(ctx context.Context, id int64) (Media, error)
	// SetConnection records the relay the media side actually uses.
	SetConnection(ctx context.Context, id, connectionID int64) (Call, error)
	// Journal calls fn for every persisted event with Seq > since, in
	// order, and stops at the first error fn returns (returning it).
	// since beyond the last seq ever assigned is an "invalid" error
	// naming that seq (answered 400 before the stream starts).
	Journal(since uint64, fn func(Event) error) error
	// Login performs one login step (see LoginStep) and returns what is
	// needed next.
	Login(ctx context.Context, step LoginStep) (LoginState, error)
}

// MediaService is the media side of the daemon.
type MediaService interface {
	// Signaling calls fn with the call's incoming signaling payloads with
	// seq > since, then (with follow) each new one, until the call ends
	// or ctx is done. A call that is not live is not_found or conflict
	// (before fn is called).
	Signaling(ctx context.Context, id int64, since uint64, follow bool, fn func(SignalingPayload) error) error
	// SendSignaling sends one payload to the peer's media engine
	// (phone.sendSignalingData).
	SendSignaling(ctx context.Context, id int64, data []byte) error
	// Rate rates an ended call that asked for it (need_rating), once.
	Rate(ctx context.Context, id int64, rating int, comment string) (Call, error)
	// SaveDebug sends the media engine's JSON debug log of an ended call
	// that asked for it (need_debug), once.
	SaveDebug(ctx context.Context, id int64, data json.RawMessage) (Call, error)
}
