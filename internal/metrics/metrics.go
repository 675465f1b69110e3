// Package metrics defines every Prometheus metric calld exports
// (CONTRACT §5.4, docs/metrics.md), on a registry of the daemon's own
// (never the global default), with the Go and process collectors.
//
// The parts that see a fact record it through a *Metrics they are given
// (the manager after its commit, the store's commit, the RPC middleware);
// what is a state read at scrape time (the event stream's subscribers) is
// a function registered here. Every method is safe on a nil *Metrics, so a
// part built without metrics (tests, the demo's helpers) records nothing.
package metrics

import (
	"net/http"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/calld/calld"
)

// Metric names, as docs/metrics.md lists them.
const (
	NameCallsLive            = "calld_calls_live"
	NameCallsEnded           = "calld_calls_ended_total"
	NameDiscardSeconds       = "calld_discard_seconds"
	NameRPCErrors            = "calld_rpc_errors_total"
	NameUpdatesGaps          = "calld_updates_gaps_total"
	NameUpdatesDifferences   = "calld_updates_differences_total"
	NameUpdatesState         = "calld_updates_state"
	NameStoreCommitSeconds   = "calld_store_commit_seconds"
	NameTelegramConnected    = "calld_telegram_connected"
	NameTelegramAuthorized   = "calld_telegram_authorized"
	NameEventsSubscribers    = "calld_events_subscribers"
	NameBuildInfo            = "calld_build_info"
	labelState, labelBox     = "state", "box"
	labelDirection           = "direction"
	labelReason, labelEndedB = "reason", "ended_by"
	labelMethod, labelType   = "method", "type"
	// LabelAccount is the constant label of every series when
	// Options.Account is set ([telegram] account).
	LabelAccount = "account"
)

// liveStates are the states calld_calls_live has a series for (every
// live state of CONTRACT's call, always exported, zero or not).
var liveStates = []calld.State{
	calld.StateRequesting, calld.StateWaiting, calld.StateRinging, calld.StateAccepting,
	calld.StateExchangingKeys, calld.StateActive, calld.StateHangingUp,
}

// Boxes of calld_updates_state.
const (
	BoxPts = "pts"
	BoxQts = "qts"
	BoxSeq = "seq"
)

// Metrics holds calld's collectors and the registry they are on.
type Metrics struct {
	reg *prometheus.Registry

	live        map[calld.State]prometheus.Gauge // by state, resolved once
	ended       *prometheus.CounterVec
	discard     prometheus.Histogram
	rpcErrors   *prometheus.CounterVec
	gaps        *prometheus.CounterVec
	differences prometheus.Counter
	pts         prometheus.Gauge
	qts         prometheus.Gauge
	seq         prometheus.Gauge
	commit      prometheus.Histogram
	connected   prometheus.Gauge
	authorized  prometheus.Gauge
}

// Options configures New.
type Options struct {
	// Version is calld_build_info's version label.
	Version string
	// Subscribers, when set, is read at every scrape for
	// calld_events_subscribers (the event hub's count).
	Subscribers func() int
	// Account, when not "", is the value of the constant label account
	// on every series, the Go and process collectors' too.
	Account string
}

// New returns calld's metrics on a new registry with the Go and process
// collectors.
func New(opts Options) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), live: map[calld.State]prometheus.Gauge{}}
	var reg prometheus.Registerer = m.reg
	if opts.Account != "" {
		reg = prometheus.WrapRegistererWith(prometheus.Labels{LabelAccount: opts.Account}, m.reg)
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	live := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: NameCallsLive,
		Help: "Calls not yet ended, by state (as last committed)."}, []string{labelState})
	for _, s := range liveStates {
		m.live[s] = live.WithLabelValues(string(s))
	}
	m.ended = prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameCallsEnded,
		Help: "Calls that ended (as committed), by direction, reason and ended_by."},
		[]string{labelDirection, labelReason, labelEndedB})
	m.discard = prometheus.NewHistogram(prometheus.HistogramOpts{Name: NameDiscardSeconds,
		Help:    "Time from a discard request on the control socket to its persisted answer (the call ended by it).",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}})
	m.rpcErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameRPCErrors,
		Help: "MTProto RPCs that failed after retries, by method and error type."}, []string{labelMethod, labelType})
	m.gaps = prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameUpdatesGaps,
		Help: "Gaps the updates engine found, by sequence box."}, []string{labelBox})
	m.differences = prometheus.NewCounter(prometheus.CounterOpts{Name: NameUpdatesDifferences,
		Help: "updates.getDifference rounds applied."})
	state := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: NameUpdatesState,
		Help: "The committed updates state, by box."}, []string{labelBox})
	m.pts, m.qts, m.seq = state.WithLabelValues(BoxPts), state.WithLabelValues(BoxQts), state.WithLabelValues(BoxSeq)
	m.commit = prometheus.NewHistogram(prometheus.HistogramOpts{Name: NameStoreCommitSeconds,
		Help:    "Duration of the state file's write transactions (bbolt commit and fsync included).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}})
	m.connected = prometheus.NewGauge(prometheus.GaugeOpts{Name: NameTelegramConnected,
		Help: "1 while the MTProto connection to Telegram is up."})
	m.authorized = prometheus.NewGauge(prometheus.GaugeOpts{Name: NameTelegramAuthorized,
		Help: "1 while the session is known to be logged in."})
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: NameBuildInfo,
		Help: "Always 1; the labels say which calld runs."}, []string{"version", "goversion"})
	info.WithLabelValues(opts.Version, runtime.Version()).Set(1)
	reg.MustRegister(live, m.ended, m.discard, m.rpcErrors, m.gaps, m.differences, state, m.commit,
		m.connected, m.authorized, info)
	subs := opts.Subscribers
	if subs == nil {
		subs = func() int { return 0 }
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: NameEventsSubscribers,
		Help: "Clients following /v1/events."}, func() float64 { return float64(subs()) }))
	return m
}

// Registry is the registry the metrics are on (tests gather from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// CallState moves one call in calld_calls_live from the state it was
// counted in (from, "" if none) to its committed state (to), and counts
// its end: ended is the call's record once to is ended. A call keeps
// being counted in exactly one live state until it ends.
func (m *Metrics) CallState(from calld.State, rec *calld.Call) {
	if m == nil || from == rec.State {
		return
	}
	if g := m.live[from]; g != nil {
		g.Dec()
	}
	if g := m.live[rec.State]; g != nil {
		g.Inc()
	}
	if rec.State == calld.StateEnded {
		m.ended.WithLabelValues(string(rec.Direction), string(rec.Reason), string(rec.EndedBy)).Inc()
	}
}

// Discarded observes one discard request answered after seconds.
func (m *Metrics) Discarded(seconds float64) {
	if m != nil {
		m.discard.Observe(seconds)
	}
}

// RPCError counts an RPC that failed with an error of type typ.
func (m *Metrics) RPCError(method, typ string) {
	if m != nil {
		m.rpcErrors.WithLabelValues(method, typ).Inc()
	}
}

// Gap counts a gap found in box.
func (m *Metrics) Gap(box string) {
	if m != nil {
		m.gaps.WithLabelValues(box).Inc()
	}
}

// Difference counts an applied getDifference.
func (m *Metrics) Difference() {
	if m != nil {
		m.differences.Inc()
	}
}

// UpdatesState sets the committed updates state.
func (m *Metrics) UpdatesState(st calld.UpdatesState) {
	if m != nil {
		m.pts.Set(float64(st.Pts))
		m.qts.Set(float64(st.Qts))
		m.seq.Set(float64(st.Seq))
	}
}

// StoreCommit is the histogram of the store's write transactions; nil
// (no metrics) gives nil, which the store takes as "not observed".
func (m *Metrics) StoreCommit() prometheus.Observer {
	if m == nil {
		return nil
	}
	return m.commit
}

// Connected sets calld_telegram_connected.
func (m *Metrics) Connected(up bool) {
	if m != nil {
		m.connected.Set(boolValue(up))
	}
}

// Authorized sets calld_telegram_authorized.
func (m *Metrics) Authorized(yes bool) {
	if m != nil {
		m.authorized.Set(boolValue(yes))
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Find is the value of the first series of the family name whose labels
// include want (a counter's or gauge's value, a histogram's sample
// count); ok is false when there is none. Tests read scrapes with it.
func Find(fams []*dto.MetricFamily, name string, want map[string]string) (v float64, ok bool) {
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if !hasLabels(m, want) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue(), true
			case m.Gauge != nil:
				return m.GetGauge().GetValue(), true
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if w, ok := want[l.GetName()]; ok {
			if w != l.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}
