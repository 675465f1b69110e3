package calld

import "slices"

// Status is the shape of GET /v1/status.
type Status struct {
	Version string `json:"version"`
	// Account is [telegram] account, the account this daemon serves
	// (CONTRACT §5.6); absent when not set.
	Account string `json:"account,omitempty"`
	Ready   bool   `json:"ready"`
	// State is what calld is doing: connecting, unknown (the
	// authorization check has not answered), not_logged_in, starting or
	// ready; Status says it in a line (the same as systemd's STATUS=).
	State    string         `json:"state,omitempty"`
	Status   string         `json:"status,omitempty"`
	Telegram TelegramStatus `json:"telegram"`
	Updates  UpdatesState   `json:"updates"`
	Calls    CallCounts     `json:"calls"`
	// ReloadError is why the last reload (SIGHUP) was refused, the
	// configuration error; empty once a reload succeeds (and before any).
	ReloadError string `json:"reload_error,omitempty"`
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

// Health is the shape of GET /v1/health: Status "ok" (HTTP 200) when calld
// is ready, connected and authorized; else "degraded" (HTTP 503) with
// every check, each saying why when it fails.
type Health struct {
	Status string                 `json:"status"`
	Checks map[string]HealthCheck `json:"checks,omitempty"`
}

// HealthCheck is one check of a degraded Health.
type HealthCheck struct {
	OK bool `json:"ok"`
	// Reason says, when OK is false, why (a short line).
	Reason string `json:"reason,omitempty"`
}

// The values of Health.Status and the names of its checks.
const (
	HealthOK       = "ok"
	HealthDegraded = "degraded"

	CheckReady      = "ready"      // calld serves and, once logged in, has restored its calls
	CheckConnected  = "connected"  // the MTProto connection to Telegram is up
	CheckAuthorized = "authorized" // the session is logged in
)

// Healthy tells whether h is "ok".
func (h Health) Healthy() bool { return h.Status == HealthOK }

// HealthOf derives the health from a Status: ok when Ready,
// Telegram.Connected and Telegram.Authorized all hold; else degraded,
// each failed check with its reason: the status line where it says why
// (Status.Status, e.g. the dial error while connecting), else a fixed
// line.
func HealthOf(st Status) Health {
	if st.Ready && st.Telegram.Connected && st.Telegram.Authorized {
		return Health{Status: HealthOK}
	}
	check := func(ok bool, states []string, fallback string) HealthCheck {
		switch {
		case ok:
			return HealthCheck{OK: true}
		case st.Status != "" && (states == nil || slices.Contains(states, st.State)):
			return HealthCheck{Reason: st.Status}
		}
		return HealthCheck{Reason: fallback}
	}
	return Health{Status: HealthDegraded, Checks: map[string]HealthCheck{
		CheckReady:      check(st.Ready, nil, "not ready"),
		CheckConnected:  check(st.Telegram.Connected, []string{"connecting"}, "not connected to Telegram"),
		CheckAuthorized: check(st.Telegram.Authorized, []string{"not_logged_in", "unknown"}, "not logged in (or not known yet)"),
	}}
}
