package control

import (
	"context"

	"github.com/calld/calld/internal/fsm"
	"github.com/calld/calld/internal/store"
)

// Service is what the daemon (the call manager) provides to the control
// API. Errors should be *calld.Error values (or wrap one) so that the API
// can answer with the right code; any other error is "internal" (500).
type Service interface {
	// Status is the daemon's summary (GET /v1/status).
	Status(ctx context.Context) (Status, error)
	// Calls lists the live calls, or every known call when all is set,
	// newest first.
	Calls(ctx context.Context, all bool) ([]fsm.Call, error)
	// Call returns one call, or a not_found error.
	Call(ctx context.Context, id int64) (fsm.Call, error)
	// Discard ends or refuses a call; reason is one of ReasonAuto, busy,
	// hangup, missed, disconnect (already validated).
	Discard(ctx context.Context, id int64, reason fsm.Reason) (fsm.Call, error)
	// Place places an outgoing call to peer ("@username" or a decimal
	// user id, already syntax-checked); protocol, when not nil, overrides
	// parts of the configured [media] protocol for this call.
	Place(ctx context.Context, peer string, video bool, protocol *ProtocolOverride) (fsm.Call, error)
	// Accept accepts an incoming ringing call; protocol as for Place.
	Accept(ctx context.Context, id int64, protocol *ProtocolOverride) (fsm.Call, error)
	// Media returns what a media engine needs for an active call.
	Media(ctx context.Context, id int64) (Media, error)
	// SetConnection records the relay the media side actually uses.
	SetConnection(ctx context.Context, id, connectionID int64) (fsm.Call, error)
	// Journal calls fn for every persisted event with Seq > since, in
	// order, and stops at the first error fn returns (returning it).
	// since beyond the last seq ever assigned is an "invalid" error
	// naming that seq (answered 400 before the stream starts).
	Journal(since uint64, fn func(store.Event) error) error
	// Login performs one login step (see LoginStep) and returns what is
	// needed next.
	Login(ctx context.Context, step LoginStep) (LoginState, error)
}

// Status is the shape of GET /v1/status.
type Status struct {
	Version string `json:"version"`
	Ready   bool   `json:"ready"`
	// State is what calld is doing: connecting, unknown (the
	// authorization check has not answered), not_logged_in, starting or
	// ready; Status says it in a line (the same as systemd's STATUS=).
	State    string             `json:"state,omitempty"`
	Status   string             `json:"status,omitempty"`
	Telegram TelegramStatus     `json:"telegram"`
	Updates  store.UpdatesState `json:"updates"`
	Calls    CallCounts         `json:"calls"`
}

// TelegramStatus is the connection and authorization part of Status.
type TelegramStatus struct {
	Connected  bool  `json:"connected"`
	Authorized bool  `json:"authorized"`
	SelfID     int64 `json:"self_id,string"`
	DC         int   `json:"dc"`
}

// CallCounts counts live and known calls.
type CallCounts struct {
	Live  int `json:"live"`
	Total int `json:"total"`
}

// Media is the shape of GET /v1/calls/{id}/media: the secret material a
// media engine needs once the call is active. Key and PeerTag are encoded
// as standard base64 by encoding/json.
type Media struct {
	Key            []byte            `json:"key"`
	KeyFingerprint int64             `json:"key_fingerprint,string"`
	Outgoing       bool              `json:"outgoing"`
	Protocol       Protocol          `json:"protocol"`
	Connections    []MediaConnection `json:"connections"`
}

// Protocol is the call's negotiated phoneCallProtocol.
type Protocol struct {
	UDPP2P          bool     `json:"udp_p2p"`
	UDPReflector    bool     `json:"udp_reflector"`
	MinLayer        int      `json:"min_layer"`
	MaxLayer        int      `json:"max_layer"`
	LibraryVersions []string `json:"library_versions"`
}

// ProtocolOverride is the "protocol" of POST /v1/calls and .../accept:
// the fields given replace those of the configured [media] protocol for
// this call; the fields left out keep the configured values.
type ProtocolOverride struct {
	UDPP2P          *bool    `json:"udp_p2p,omitempty"`
	UDPReflector    *bool    `json:"udp_reflector,omitempty"`
	MinLayer        *int     `json:"min_layer,omitempty"`
	MaxLayer        *int     `json:"max_layer,omitempty"`
	LibraryVersions []string `json:"library_versions,omitempty"`
}

// MediaConnection is one relay with its secret parts (phoneConnection or
// phoneConnectionWebrtc).
type MediaConnection struct {
	ID       int64  `json:"id,string"`
	IP       string `json:"ip"`
	IPv6     string `json:"ipv6"`
	Port     int    `json:"port"`
	PeerTag  []byte `json:"peer_tag"`
	TCP      bool   `json:"tcp"`
	TURN     bool   `json:"turn"`
	STUN     bool   `json:"stun"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// LoginStep is the body of POST /v1/login: at most one field is set. An
// empty step asks for the current state without changing anything.
type LoginStep struct {
	Phone    string `json:"phone,omitempty"`
	Code     string `json:"code,omitempty"`
	Password string `json:"password,omitempty"`
}

// Login states (LoginState.State).
const (
	LoginPhoneNeeded    = "phone_needed"    // send {"phone": "+..."}
	LoginCodeSent       = "code_sent"       // send {"code": "..."}
	LoginPasswordNeeded = "password_needed" // send {"password": "..."} (2FA)
	LoginAuthorized     = "authorized"      // done
)

// LoginState is the answer to every login step.
type LoginState struct {
	State string `json:"state"`
	// Phone is the phone number the code was sent to, masked.
	Phone string `json:"phone,omitempty"`
	// CodeVia says where the code went (app, sms, call, ...), if known.
	CodeVia string `json:"code_via,omitempty"`
	// PasswordHint is the 2FA password hint, if any.
	PasswordHint string `json:"password_hint,omitempty"`
	// SelfID is the logged-in user's id once authorized.
	SelfID int64 `json:"self_id,string,omitempty"`
}
