package control

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/calld/calld"
)

// TestHealth: GET /v1/health over the real socket answers 200 {"status":"ok"}
// when ready, connected and authorized, else 503 with every check; the
// client returns the degraded body, not an error; the route is a read
// route (no mutating permission).
func TestHealth(t *testing.T) {
	tests := []struct {
		name       string
		degrade    func(*calld.Status)
		wantStatus int
		want       calld.Health
	}{
		{"healthy", nil, http.StatusOK, calld.Health{Status: "ok"}},
		{"connecting", func(st *calld.Status) {
			st.Ready, st.Telegram.Connected, st.Telegram.Authorized = false, false, false
			st.State, st.Status = "connecting", "connecting to DC 2 (127.0.0.1:1): connection refused"
		}, http.StatusServiceUnavailable, calld.Health{Status: "degraded", Checks: map[string]calld.HealthCheck{
			"ready":      {Reason: "connecting to DC 2 (127.0.0.1:1): connection refused"},
			"connected":  {Reason: "connecting to DC 2 (127.0.0.1:1): connection refused"},
			"authorized": {Reason: "not logged in (or not known yet)"},
		}}},
		{"not logged in", func(st *calld.Status) {
			st.Telegram.Authorized = false
			st.State, st.Status = "not_logged_in", "not logged in: run calld login"
		}, http.StatusServiceUnavailable, calld.Health{Status: "degraded", Checks: map[string]calld.HealthCheck{
			"ready":      {OK: true},
			"connected":  {OK: true},
			"authorized": {Reason: "not logged in: run calld login"},
		}}},
		{"starting", func(st *calld.Status) {
			st.Ready = false
			st.State, st.Status = "starting", "logged in: restoring calls"
		}, http.StatusServiceUnavailable, calld.Health{Status: "degraded", Checks: map[string]calld.HealthCheck{
			"ready":      {Reason: "logged in: restoring calls"},
			"connected":  {OK: true},
			"authorized": {OK: true},
		}}},
	}
	// TestPeerCredentials checks that anyone may read it.
	env := start(t, Options{}, 0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env.svc.mu.Lock()
			env.svc.degrade = tt.degrade
			env.svc.mu.Unlock()
			code, hdr, body := env.do(t, http.MethodGet, "/v1/health", "")
			if code != tt.wantStatus || hdr.Get("Content-Type") != "application/json" {
				t.Errorf("GET /v1/health: %d %q, want %d application/json (body %s)", code, hdr.Get("Content-Type"), tt.wantStatus, body)
			}
			if got := decode[calld.Health](t, body); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("body %s, want %+v", body, tt.want)
			}
			h, err := env.client.Health(context.Background())
			if err != nil || !reflect.DeepEqual(h, tt.want) || h.Healthy() != (tt.wantStatus == http.StatusOK) {
				t.Errorf("client.Health = %+v, %v; want %+v", h, err, tt.want)
			}
		})
	}
	env.svc.mu.Lock()
	env.svc.degrade = nil
	env.svc.mu.Unlock()
	if code, _, body := env.do(t, http.MethodGet, "/v1/health", ""); code != http.StatusOK || strings.TrimSpace(body) != `{"status":"ok"}` {
		t.Errorf("healthy body %q (%d), want exactly {\"status\":\"ok\"}", body, code)
	}
}
