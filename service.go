package calld

import (
	"context"
	"encoding/json"
)

// CallService is the daemon as the control API serves it (CONTRACT §3):
// internal/manager implements the call methods; internal/daemon passes
// them on and adds Login, refusing the methods that act on a call
// (Discard, Place, Accept, Media, SetConnection) EUNAUTHORIZED while no
// account is logged in, EUNAVAILABLE while it cannot tell yet;
// internal/control serves it on the Unix socket; package client speaks
// the same routes from the other side.
//
// Every error is an *Error, or wraps one, whose Code the server maps to
// the HTTP status; any other error is answered EINTERNAL (500). Besides
// the codes each method names, a method that needs Telegram may return
// EUNAVAILABLE (503) while the daemon is not connected or is stopping,
// ETIMEOUT (504) when an RPC to Telegram ran out of time, and Telegram's
// own error type as the code (502, e.g. CALL_PEER_INVALID) when Telegram
// refused. Status, Calls, Call and Journal read the committed state
// only: they need no connection.
//
// A method that changes a call returns it as persisted, after the change
// was committed. An implementation is safe for concurrent use.
type CallService interface {
	// Status returns the daemon's summary (GET /v1/status).
	Status(ctx context.Context) (Status, error)

	// Calls returns the live calls (state not ended), or every known call
	// when all is set, newest first by CreatedAt. The slice is never nil.
	Calls(ctx context.Context, all bool) ([]Call, error)

	// Call returns one call's record. An unknown id is ENOTFOUND.
	Call(ctx context.Context, id int64) (Call, error)

	// Discard ends or refuses a live call. reason is ReasonAuto (the
	// daemon chooses) or one of ReasonBusy, ReasonHangup, ReasonMissed,
	// ReasonDisconnect, as ParseReason returns it. It returns the call
	// once the discard's result was applied and persisted. An unknown id
	// is ENOTFOUND; a call already ended, or being ended, is ECONFLICT.
	Discard(ctx context.Context, id int64, reason Reason) (Call, error)

	// Place places an outgoing call to peer, "@username" or a decimal
	// user id as ValidPeer accepts it. protocol, when not nil, replaces
	// the fields it sets of the configured [media] protocol for this call
	// (an invalid result is EINVALID). It returns the call in state
	// waiting or later.
	Place(ctx context.Context, peer string, video bool, protocol *ProtocolOverride) (Call, error)

	// Accept accepts an incoming ringing call; protocol as for Place. An
	// outgoing call is EINVALID; a call that is not ringing is ECONFLICT
	// (ENOTFOUND when unknown).
	Accept(ctx context.Context, id int64, protocol *ProtocolOverride) (Call, error)

	// Media returns what a media engine needs for an active call: the
	// key, the protocol and the relays with their secrets. A call that is
	// not active is ECONFLICT.
	Media(ctx context.Context, id int64) (Media, error)

	// SetConnection records the relay the media side actually uses for
	// an active call (ECONFLICT otherwise); connectionID must be one of
	// the call's Connections (EINVALID otherwise).
	SetConnection(ctx context.Context, id, connectionID int64) (Call, error)

	// Journal calls fn for every persisted event with Seq > since, in
	// order, and returns the first error fn returns. since beyond the
	// last seq ever assigned is EINVALID, naming that seq, before fn is
	// called. It reads committed events only and follows nothing: the
	// live events come from the server's hub.
	Journal(since uint64, fn func(Event) error) error

	// Login performs one login step (an empty step changes nothing) and
	// returns what is needed next (LoginState.State).
	Login(ctx context.Context, step LoginStep) (LoginState, error)
}

// MediaService is the media side of the daemon (CONTRACT §5.5). A
// CallService that also implements it serves the media routes; the
// internal/control server answers them ENOTFOUND otherwise.
type MediaService interface {
	// Signaling calls fn with the call's incoming signaling payloads with
	// Seq > since, then, with follow, each new one, until the call ends
	// or ctx is done. A call that is not live is ENOTFOUND or ECONFLICT,
	// returned before fn is called.
	Signaling(ctx context.Context, id int64, since uint64, follow bool, fn func(SignalingPayload) error) error

	// SendSignaling sends one payload to the peer's media engine
	// (phone.sendSignalingData).
	SendSignaling(ctx context.Context, id int64, data []byte) error

	// Rate rates an ended call that asked for it (NeedRating), once
	// (phone.setCallRating); rating is 1 to 5.
	Rate(ctx context.Context, id int64, rating int, comment string) (Call, error)

	// SaveDebug sends the media engine's JSON debug log of an ended call
	// that asked for it (NeedDebug), once (phone.saveCallDebug).
	SaveDebug(ctx context.Context, id int64, data json.RawMessage) (Call, error)
}
