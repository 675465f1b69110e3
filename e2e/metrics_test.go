package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/metrics"
	"github.com/calld/calld/internal/sim"
)

// scrape GETs /metrics from c and parses the exposition with
// prometheus/common's text parser.
func scrape(t *testing.T, c *http.Client, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s: %s", url, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	return fams
}

// sample is metrics.Find over a parsed scrape.
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	return metrics.Find(slices.Collect(maps.Values(fams)), name, want)
}

// metricsAddr is the address the daemon's daemon.metrics line names.
func metricsAddr(t *testing.T, d *daemon) string {
	t.Helper()
	for _, l := range logLines(d.logs.String()) {
		if l["event"] == "daemon.metrics" {
			if a, _ := l["addr"].(string); a != "" {
				return a
			}
		}
	}
	t.Fatalf("no daemon.metrics line with addr:\n%s", d.logs.String())
	return ""
}

// TestMetricsScrape scrapes a live daemon on the control socket and on
// [metrics] listen after the simulator's calls ended: the calls ended
// by reason, the discards' latencies, the updates state, the connection,
// the subscribers of /v1/events and the Go and process collectors.
func TestMetricsScrape(t *testing.T) {
	e := newEnv(t, sim.Options{Authorized: true}, "\n[metrics]\nlisten = \"127.0.0.1:0\"\n")
	d := e.start()
	addr := metricsAddr(t, d)

	// Refused (busy) and hung up: two discards, two reasons.
	alice := e.srv.AddPeer("alice")
	in, err := e.srv.IncomingCall(alice, false)
	if err != nil {
		t.Fatal(err)
	}
	e.waitCall(in, calld.StateRinging)
	var ended calld.Call
	e.cliJSON(&ended, "discard", fmt.Sprint(in))
	bob := e.srv.AddPeer("bob")
	e.srv.SetPeerBehaviour(bob, sim.Answer)
	var placed calld.Call
	e.cliJSON(&placed, "call", "@bob")
	e.waitCall(placed.ID, calld.StateActive)
	e.cliJSON(&ended, "discard", fmt.Sprint(placed.ID))
	// An RPC that fails: an unknown username.
	if status, _ := e.http("POST", "/v1/calls", `{"peer":"@nobody"}`); status != 404 {
		t.Fatalf("call @nobody: %d", status)
	}

	// One follower of /v1/events while scraping.
	unix := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", e.socket)
	}}}
	resp, err := unix.Get("http://calld/v1/events?since=0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if sc := bufio.NewScanner(resp.Body); !sc.Scan() { // the replay's first line: subscribed
		t.Fatalf("events: %v", sc.Err())
	}

	var st calld.Status
	e.cliJSON(&st, "status")
	pts, qts, seq, _ := e.srv.State()
	tcp := &http.Client{Timeout: 10 * time.Second}
	for _, src := range []struct {
		name string
		c    *http.Client
		url  string
	}{
		{"socket", unix, "http://calld/metrics"},
		{"listen", tcp, "http://" + addr + "/metrics"},
	} {
		t.Run(src.name, func(t *testing.T) {
			fams := scrape(t, src.c, src.url)
			for _, tc := range []struct {
				name   string
				labels map[string]string
				check  func(float64) bool
				want   string
			}{
				{"calld_calls_ended_total", map[string]string{"direction": "incoming", "reason": "busy", "ended_by": "local"}, eq(1), "1"},
				{"calld_calls_ended_total", map[string]string{"direction": "outgoing", "reason": "hangup", "ended_by": "local"}, eq(1), "1"},
				{"calld_discard_seconds", nil, eq(2), "2 observations"},
				{"calld_calls_live", map[string]string{"state": "active"}, eq(0), "0"},
				{"calld_calls_live", map[string]string{"state": "ringing"}, eq(0), "0"},
				{"calld_updates_state", map[string]string{"box": "pts"}, eq(float64(pts)), fmt.Sprint(pts)},
				{"calld_updates_state", map[string]string{"box": "qts"}, eq(float64(qts)), fmt.Sprint(qts)},
				{"calld_updates_state", map[string]string{"box": "seq"}, eq(float64(seq)), fmt.Sprint(seq)},
				{"calld_store_commit_seconds", nil, gt(0), "> 0 observations"},
				{"calld_telegram_connected", nil, eq(1), "1"},
				{"calld_telegram_authorized", nil, eq(1), "1"},
				{"calld_events_subscribers", nil, eq(1), "1"},
				{"calld_rpc_errors_total", map[string]string{"method": "contacts.resolveUsername"}, gt(0), "> 0"},
				{"calld_updates_differences_total", nil, gt(-1), "present"},
				{"calld_build_info", map[string]string{"version": st.Version}, eq(1), "1 with /v1/status's version"},
				{"go_goroutines", nil, gt(0), "> 0"},
				{"process_start_time_seconds", nil, gt(0), "> 0"},
			} {
				v, ok := sample(fams, tc.name, tc.labels)
				if !ok || !tc.check(v) {
					t.Errorf("%s%v = %v (found %v), want %s", tc.name, tc.labels, v, ok, tc.want)
				}
			}
		})
	}
}

func eq(w float64) func(float64) bool { return func(v float64) bool { return v == w } }
func gt(w float64) func(float64) bool { return func(v float64) bool { return v > w } }
