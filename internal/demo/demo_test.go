package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gotd/neo"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/calld/calld/client"
	"github.com/calld/calld/internal/metrics"
)

// TestDemo runs the whole tour (shorter waits) and checks the story it
// tells: the README promises that `calld demo` works on a fresh clone.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The daemon's clock is fake: the talk lasts 1.1 s whatever the load
	// (duration=1s), and the ring timeout fires when the tour moves past it.
	clk := neo.NewTime(time.Now())
	err := Run(ctx, &out, Options{Dir: t.TempDir(), Talk: 1100 * time.Millisecond, RingTimeout: time.Second, Clock: clk})
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{
		"reason=busy ended_by=local duration=0s",
		"ended_by=other_device",
		"reason=hangup ended_by=local duration=1s",
		"phone.discardCall(reason=hangup, duration=1, connection_id=5",
		"reason=missed ended_by=timeout",
		"the call goes on: state active, same media key: true",
		"(match: true)",
		"signaling from @carol's media engine: #3",
		"@carol's engine got them: true",
		"signaling from @carol's media engine: #4",
		"calld rate",
		"(in step: true)",
		"phone.discardCall requests Telegram received: 6",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
}

// TestDemoMetrics scrapes the demo daemon's /metrics on its control
// socket after the tour (the daemon restarted in step 6, so the counters
// are the second daemon's: the call hung up after the restart) and parses
// the exposition with prometheus/common's text parser.
func TestDemoMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var fams []*dto.MetricFamily
	scrape := func(ctx context.Context, socket string) error {
		c := client.New(socket)
		defer c.Close()
		body, err := c.Raw(ctx, "GET", "/metrics", nil)
		if err != nil {
			return err
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		parsed, err := p.TextToMetricFamilies(bytes.NewReader(body))
		if err != nil {
			return err
		}
		for _, f := range parsed {
			fams = append(fams, f)
		}
		return nil
	}
	var out bytes.Buffer
	clk := neo.NewTime(time.Now())
	err := Run(ctx, &out, Options{Dir: t.TempDir(), Talk: 1100 * time.Millisecond, RingTimeout: time.Second, Clock: clk, AfterTour: scrape})
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
	}{
		{"calld_calls_ended_total", map[string]string{"direction": "outgoing", "reason": "hangup", "ended_by": "local"}},
		{"calld_discard_seconds", nil},
	} {
		if v, ok := metrics.Find(fams, tc.name, tc.labels); !ok || v <= 0 {
			t.Errorf("%s%v = %v (found %v), want > 0", tc.name, tc.labels, v, ok)
		}
	}
}
