package calld

// The bodies of the control API's requests and answers that are not a
// domain type of their own (CONTRACT §3, §5.5), shared by the server
// (internal/control) and the client.

// CodeSlowReader is the code of the final line of an event stream whose
// subscriber was dropped because it fell behind (an extension code).
const CodeSlowReader = "slow_reader"

// CallsBody is the shape of GET /v1/calls.
type CallsBody struct {
	Calls []Call `json:"calls"`
}

// PlaceRequest is the body of POST /v1/calls.
type PlaceRequest struct {
	Peer     string            `json:"peer"`
	Video    bool              `json:"video,omitempty"`
	Protocol *ProtocolOverride `json:"protocol,omitempty"`
}

// AcceptRequest is the body of POST /v1/calls/{id}/accept.
type AcceptRequest struct {
	Protocol *ProtocolOverride `json:"protocol,omitempty"`
}

// DiscardRequest is the body of POST /v1/calls/{id}/discard.
type DiscardRequest struct {
	Reason Reason `json:"reason,omitempty"`
}

// ConnectionRequest is the body of POST /v1/calls/{id}/connection. The
// server also accepts a JSON number for connection_id.
type ConnectionRequest struct {
	ConnectionID int64 `json:"connection_id,string"`
}

// SignalingRequest is the body of POST /v1/calls/{id}/signaling.
type SignalingRequest struct {
	Data []byte `json:"data"`
}

// RatingRequest is the body of POST /v1/calls/{id}/rating.
type RatingRequest struct {
	Rating  int    `json:"rating"`
	Comment string `json:"comment,omitempty"`
}

// SentBody answers POST /v1/calls/{id}/signaling.
type SentBody struct {
	Sent bool `json:"sent"`
}

// ErrorBody is the JSON shape of every error answer:
// {"error": {"code": "...", "message": "..."}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inner object of ErrorBody.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}
