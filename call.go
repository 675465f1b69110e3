package calld

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// State is a call's lifecycle state (CONTRACT §3).
type State string

// The states of a call. Incoming calls start in Waiting until
// phone.receivedCall has been acknowledged, then ring.
const (
	StateRequesting     State = "requesting"      // outgoing, no server id yet
	StateWaiting        State = "waiting"         // outgoing: not yet delivered; incoming: receivedCall not yet acknowledged
	StateRinging        State = "ringing"         // incoming ringing here, or outgoing ringing at the peer
	StateAccepting      State = "accepting"       // incoming, accept sent
	StateExchangingKeys State = "exchanging_keys" // DH key exchange in progress
	StateActive         State = "active"          // connected
	StateHangingUp      State = "hanging_up"      // our discard in flight
	StateEnded          State = "ended"           // terminal
)

// Live reports whether a call in state s is not yet ended.
func (s State) Live() bool { return s != StateEnded && s != "" }

// Direction is incoming or outgoing.
type Direction string

const (
	DirectionIncoming Direction = "incoming"
	DirectionOutgoing Direction = "outgoing"
)

// Reason is the discard reason, as sent in phone.discardCall and as
// received in phoneCallDiscarded.
type Reason string

const (
	ReasonNone       Reason = ""
	ReasonAuto       Reason = "auto" // only as a request: let the daemon choose
	ReasonMissed     Reason = "missed"
	ReasonBusy       Reason = "busy"
	ReasonHangup     Reason = "hangup"
	ReasonDisconnect Reason = "disconnect"
)

// EndedBy says who or what ended a call.
type EndedBy string

const (
	EndedByNone        EndedBy = ""
	EndedByLocal       EndedBy = "local"
	EndedByRemote      EndedBy = "remote"
	EndedByOtherDevice EndedBy = "other_device"
	EndedByTimeout     EndedBy = "timeout"
	EndedByError       EndedBy = "error"
)

// Connection is a relay of a call as the control API shows it. The secret
// parts (peer_tag, TURN credentials) are not kept here.
type Connection struct {
	ID   int64  `json:"id,string"`
	IP   string `json:"ip"`
	IPv6 string `json:"ipv6,omitempty"`
	Port int    `json:"port"`
}

// Call is one call's record: what the store persists and what the control
// API returns (CONTRACT §3 "Call"). Fields after the CONTRACT's are
// extensions.
type Call struct {
	ID           int64        `json:"id,string"`
	AccessHash   int64        `json:"access_hash,string"`
	Direction    Direction    `json:"direction"`
	PeerID       int64        `json:"peer_id,string"`
	State        State        `json:"state"`
	Video        bool         `json:"video"`
	CreatedAt    *time.Time   `json:"created_at,omitempty"`
	RingingAt    *time.Time   `json:"ringing_at,omitempty"`
	ActiveAt     *time.Time   `json:"active_at,omitempty"`
	EndedAt      *time.Time   `json:"ended_at,omitempty"`
	Duration     int          `json:"duration"`
	Reason       Reason       `json:"reason"`
	EndedBy      EndedBy      `json:"ended_by"`
	ConnectionID int64        `json:"connection_id,string"`
	Connections  []Connection `json:"connections"`
	NeedRating   bool         `json:"need_rating"`
	NeedDebug    bool         `json:"need_debug"`
	Error        string       `json:"error"`

	// Extensions.

	// Date is the server's date of the call (phoneCallRequested.date or
	// the like), unix seconds.
	Date int `json:"date,omitempty"`
	// PeerUsername is the peer's username without "@", when known: the
	// one contacts.resolveUsername (or users.getUsers) returned for a call
	// placed by calld; the caller's among the users of the Updates that
	// brought an incoming call.
	PeerUsername string `json:"peer_username,omitempty"`
	// AdminID and ParticipantID are the caller's and the callee's user ids.
	AdminID       int64 `json:"admin_id,string,omitempty"`
	ParticipantID int64 `json:"participant_id,string,omitempty"`
	// RandomID is the random_id of phone.requestCall of an outgoing call,
	// the call's only id while it is requesting.
	RandomID int32 `json:"random_id,omitempty"`
	// LocalVideo is set when the local side turned video on.
	LocalVideo bool `json:"local_video,omitempty"`
	// Deadline is when the running timer (DeadlineKind) fires; persisted
	// so that a restart honours it.
	Deadline     *time.Time `json:"deadline,omitempty"`
	DeadlineKind string     `json:"deadline_kind,omitempty"`
	// HangupPending is set when a hang-up was asked for while the call
	// was still requesting (no server id to discard yet). Reason holds
	// the decided reason; the discard goes out as soon as the id arrives.
	HangupPending bool `json:"hangup_pending,omitempty"`
	// PendingEndedBy is what EndedBy becomes once our own hang-up
	// completes (hanging_up, or requesting with HangupPending).
	PendingEndedBy EndedBy `json:"pending_ended_by,omitempty"`
}

// Clone returns a deep copy of c: no time pointer or slice is shared.
func (c Call) Clone() Call {
	c.CreatedAt = cloneTime(c.CreatedAt)
	c.RingingAt = cloneTime(c.RingingAt)
	c.ActiveAt = cloneTime(c.ActiveAt)
	c.EndedAt = cloneTime(c.EndedAt)
	c.Deadline = cloneTime(c.Deadline)
	c.Connections = slices.Clone(c.Connections)
	return c
}

func cloneTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := *t
	return &v
}

// MarshalJSON writes c with every time in TimeLayout (RFC 3339 UTC,
// always with the fractional seconds CONTRACT §3 asks for): the fields in
// declaration order, the times last (AppendJSON).
func (c Call) MarshalJSON() ([]byte, error) {
	return c.AppendJSON(make([]byte, 0, 512)), nil
}

// ParseReason validates a discard reason as the control API takes it: ""
// means ReasonAuto; any other value than auto, busy, hangup, missed or
// disconnect is an EINVALID error.
func ParseReason(s string) (Reason, error) {
	switch r := Reason(s); r {
	case ReasonNone:
		return ReasonAuto, nil
	case ReasonAuto, ReasonBusy, ReasonHangup, ReasonMissed, ReasonDisconnect:
		return r, nil
	}
	return "", Errorf(EINVALID, "reason %q is not one of auto, busy, hangup, missed, disconnect", s)
}

// ValidPeer checks a peer's syntax: "@username" (1 to 64 letters, digits,
// underscores) or a positive decimal 64-bit user id. Any other value is an
// EINVALID error.
func ValidPeer(p string) error {
	if name, ok := strings.CutPrefix(p, "@"); ok {
		if name == "" || len(name) > 64 {
			return Errorf(EINVALID, "peer %q: a username is @ followed by 1 to 64 letters, digits or underscores", p)
		}
		for _, c := range name {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
				return Errorf(EINVALID, "peer %q: a username is @ followed by letters, digits or underscores", p)
			}
		}
		return nil
	}
	if p == "" {
		return Errorf(EINVALID, "peer is required (\"@username\" or a user id)")
	}
	if strings.TrimLeft(p, "0123456789") != "" {
		return Errorf(EINVALID, "peer %q is neither @username nor a decimal user id", p)
	}
	id, err := strconv.ParseInt(p, 10, 64)
	if err != nil || id <= 0 {
		return Errorf(EINVALID, "peer %q is not a positive 64-bit user id", p)
	}
	return nil
}
