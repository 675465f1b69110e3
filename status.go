package calld

// Status is the shape of GET /v1/status.
type Status struct {
	Version string `json:"version"`
	Ready   bool   `json:"ready"`
	// State is what calld is doing: connecting, unknown (the
	// authorization check has not answered), not_logged_in, starting or
	// ready; Status says it in a line (the same as systemd's STATUS=).
	State    string         `json:"state,omitempty"`
	Status   string         `json:"status,omitempty"`
	Telegram TelegramStatus `json:"telegram"`
	Updates  UpdatesState   `json:"updates"`
	Calls    CallCounts     `json:"calls"`
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
