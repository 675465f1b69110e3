package daemon

import (
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calld/calld/internal/sim"
)

// TestMetricsListen: [metrics] listen serves /metrics from the start, a
// reload that changes it keeps the listener and says so, and a port that
// cannot be bound fails the start naming the key.
func TestMetricsListen(t *testing.T) {
	srv := newSim(t, sim.Options{Authorized: true})
	r := start(t, srv, filepath.Join(t.TempDir(), "calld.db"), "", func(m *Main) {
		m.Config.Metrics.Listen = "127.0.0.1:0"
	})
	r.waitReady(t)
	addr := r.m.MetricsAddr()
	if addr == "" || strings.HasSuffix(addr, ":0") {
		t.Fatalf("MetricsAddr = %q", addr)
	}
	get := func() string {
		t.Helper()
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET /metrics: %d %s", resp.StatusCode, b)
		}
		return string(b)
	}
	if body := get(); !strings.Contains(body, "calld_build_info{") || !strings.Contains(body, "go_goroutines ") {
		t.Fatalf("scrape:\n%s", body)
	}

	cfg := r.m.Config
	cfg.Metrics.Listen = "127.0.0.1:1"
	r.m.Reload(cfg)
	r.logs.waitFor(t, `"level":"warn","event":"daemon.metrics"`)
	get() // still there

	// A second daemon on the same port fails at start.
	srv2 := newSim(t, sim.Options{Authorized: true})
	m2 := New(r.m.Config)
	m2.Config.State.Path = filepath.Join(t.TempDir(), "calld.db")
	m2.Config.Metrics.Listen = addr
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	m2.Listener, m2.Stderr = ln, io.Discard
	m2.Sim = &SimTarget{Addr: srv2.Addr(), DC: srv2.DC(), PublicKey: srv2.PublicKeyPEM()}
	if err := m2.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "metrics.listen") {
		t.Fatalf("second daemon on %s: %v", addr, err)
	}
}
