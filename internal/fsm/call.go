package fsm

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/calld/calld"
)

// State is a call's lifecycle state (CONTRACT §3).
type State string

// The states of a call. Incoming calls start in Waiting until
// phone.receivedCall has been acknowledged, then ring.
const (
	Requesting     State = "requesting"      // outgoing, no server id yet
	Waiting        State = "waiting"         // outgoing: not yet delivered; incoming: receivedCall not yet acknowledged
	Ringing        State = "ringing"         // incoming ringing here, or outgoing ringing at the peer
	Accepting      State = "accepting"       // incoming, accept sent
	ExchangingKeys State = "exchanging_keys" // DH key exchange in progress
	Active         State = "active"          // connected
	HangingUp      State = "hanging_up"      // our discard in flight
	Ended          State = "ended"           // terminal
)

// Live reports whether a call in state s is not yet ended.
func (s State) Live() bool { return s != Ended && s != "" }

// Direction is incoming or outgoing.
type Direction string

const (
	Incoming Direction = "incoming"
	Outgoing Direction = "outgoing"
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
	ByNone        EndedBy = ""
	ByLocal       EndedBy = "local"
	ByRemote      EndedBy = "remote"
	ByOtherDevice EndedBy = "other_device"
	ByTimeout     EndedBy = "timeout"
	ByError       EndedBy = "error"
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

// MarshalJSON writes c with every time in calld.TimeLayout (RFC 3339 UTC,
// always with the fractional seconds CONTRACT §3 asks for).
func (c Call) MarshalJSON() ([]byte, error) {
	type plain Call
	return json.Marshal(struct {
		plain
		CreatedAt *calld.Time `json:"created_at,omitempty"`
		RingingAt *calld.Time `json:"ringing_at,omitempty"`
		ActiveAt  *calld.Time `json:"active_at,omitempty"`
		EndedAt   *calld.Time `json:"ended_at,omitempty"`
		Deadline  *calld.Time `json:"deadline,omitempty"`
	}{
		plain:     plain(c),
		CreatedAt: calld.TimePtr(c.CreatedAt),
		RingingAt: calld.TimePtr(c.RingingAt),
		ActiveAt:  calld.TimePtr(c.ActiveAt),
		EndedAt:   calld.TimePtr(c.EndedAt),
		Deadline:  calld.TimePtr(c.Deadline),
	})
}
