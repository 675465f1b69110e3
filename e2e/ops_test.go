package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/calld/calld"
	"github.com/calld/calld/client"
	"github.com/calld/calld/internal/sim"
)

// TestVersion: the daemon reports the version the binary was built with
// (internal/buildinfo, set by the linker here), the same as `calld
// version`.
func TestVersion(t *testing.T) {
	e := newEnv(t, sim.Options{Authorized: true}, "")
	e.start()
	var st calld.Status
	e.cliJSON(&st, "status")
	if st.Version != e2eVersion {
		t.Errorf("/v1/status version %q, want %q", st.Version, e2eVersion)
	}
	var v struct{ Version string }
	e.cliJSON(&v, "version")
	if v.Version != e2eVersion {
		t.Errorf("calld version %q, want %q", v.Version, e2eVersion)
	}
}

// TestHealthFollowsLogin: GET /v1/health is 503 degraded (authorized
// false, with the reason) while no account is logged in, 200 ok once one
// is.
func TestHealthFollowsLogin(t *testing.T) {
	e := newEnv(t, sim.Options{Authorized: false}, "")
	e.start()
	code, body := e.http("GET", "/v1/health", "")
	var h calld.Health
	if b, _ := json.Marshal(body); json.Unmarshal(b, &h) != nil || code != http.StatusServiceUnavailable || h.Status != "degraded" ||
		h.Checks["authorized"].OK || h.Checks["authorized"].Reason == "" || !h.Checks["ready"].OK {
		t.Fatalf("health while logged out: %d %v", code, body)
	}
	if out, errOut, code := e.cliInput("+15550001111\n"+sim.LoginCode+"\n", "login"); code != 0 {
		t.Fatalf("login: exit %d\n%s\n%s", code, out, errOut)
	}
	cl := client.New(e.socket)
	defer cl.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		h, err := cl.Health(context.Background())
		if err == nil && h.Healthy() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not healthy 30 s after the login: %+v, %v", h, err)
		}
		time.Sleep(20 * time.Millisecond) // another process: poll
	}
	if code, body := e.http("GET", "/v1/health", ""); code != http.StatusOK || len(body) != 1 || body["status"] != "ok" {
		t.Fatalf("health once logged in: %d %v", code, body)
	}
}
