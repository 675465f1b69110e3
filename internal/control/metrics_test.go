package control

import (
	"net/http"
	"testing"
)

// TestMetricsRoute: GET /metrics serves Options.Metrics as a read route
// (any uid that may connect), and is absent (404 not_found) without it.
func TestMetricsRoute(t *testing.T) {
	exposition := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write([]byte("calld_build_info{version=\"x\"} 1\n"))
	})
	for _, tc := range []struct {
		name   string
		opts   func(*testing.T) Options
		status int
	}{
		{"served", func(*testing.T) Options { return Options{Metrics: exposition} }, 200},
		{"served to any uid", func(t *testing.T) Options {
			return Options{Metrics: exposition, DaemonUID: 4321, Cred: uidAs(t, 5555)}
		}, 200},
		{"absent", func(*testing.T) Options { return Options{} }, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t, tc.opts(t), 0)
			status, hdr, body := e.do(t, "GET", "/metrics", "")
			if status != tc.status {
				t.Fatalf("GET /metrics: %d %s", status, body)
			}
			if tc.status == 200 && (hdr.Get("Content-Type") != "text/plain; version=0.0.4" || body != "calld_build_info{version=\"x\"} 1\n") {
				t.Fatalf("GET /metrics: %q %q", hdr.Get("Content-Type"), body)
			}
			if tc.status == 404 {
				wantError(t, status, hdr, body, 404, "not_found")
			}
		})
	}
}
