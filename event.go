package calld

import "time"

// Event is one entry of the journal: what the store keeps, what
// /v1/events streams (CONTRACT §3 "Event"). Seq is assigned by the store
// when the event is appended, strictly increasing across the whole journal.
type Event struct {
	Seq      uint64    `json:"seq"`
	At       time.Time `json:"at"`
	Event    string    `json:"event"`
	CallID   int64     `json:"call_id,string"`
	From     string    `json:"from"`
	To       string    `json:"to"`
	Reason   string    `json:"reason"`
	Duration int       `json:"duration"`
}

// MarshalJSON writes e with At in TimeLayout (RFC 3339 UTC, always with
// fractional seconds), last (AppendJSON).
func (e Event) MarshalJSON() ([]byte, error) {
	return e.AppendJSON(make([]byte, 0, 192)), nil
}

// UpdatesState is the account's common update state as persisted: the
// sequence engine's pts, qts, seq and date.
type UpdatesState struct {
	Pts  int `json:"pts"`
	Qts  int `json:"qts"`
	Seq  int `json:"seq"`
	Date int `json:"date"`
}
