package daemon

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/calld/calld/internal/buildinfo"
	"github.com/calld/calld/internal/config"
	"github.com/calld/calld/internal/logging"
	"github.com/calld/calld/internal/metrics"
)

// newMetrics makes the daemon's metrics (its own registry); the event
// hub's subscribers are read at scrape time, once the hub is built.
func (m *Main) newMetrics() {
	m.metrics = metrics.New(metrics.Options{Version: buildinfo.Read().Version, Account: m.Config.Telegram.Account, Subscribers: func() int {
		select {
		case <-m.built:
			return m.hub.Len()
		default:
			return 0
		}
	}})
}

// listenMetrics opens [metrics] listen, when set, before the socket
// serves: a port that cannot be bound fails the start.
func (m *Main) listenMetrics() error {
	addr := m.Config.Metrics.Listen
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics.listen: %w", err)
	}
	m.metricsLn = ln
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.metrics.Handler())
	m.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute}
	return nil
}

// serveMetrics serves [metrics] listen until the stop closes it.
func (m *Main) serveMetrics() {
	if m.metricsSrv == nil {
		return
	}
	m.log.Info().Str(logging.FieldEvent, logging.EventDaemonMetrics).Str(logging.FieldAddr, m.metricsLn.Addr().String()).
		Msg("serving metrics")
	m.tasks.Go(func() error {
		if err := m.metricsSrv.Serve(m.metricsLn); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("metrics: serving %s: %w", m.metricsLn.Addr(), err)
		}
		return nil
	})
}

// stopMetrics ends [metrics] listen's server (scrapes in flight are cut:
// the daemon is going away).
func (m *Main) stopMetrics() {
	if m.metricsSrv != nil {
		_ = m.metricsSrv.Close()
	}
}

// MetricsAddr is where [metrics] listen is bound ("" when off or before
// Run has built it): its port when the config said 0.
func (m *Main) MetricsAddr() string {
	select {
	case <-m.built:
	default:
		return ""
	}
	if m.metricsLn == nil {
		return ""
	}
	return m.metricsLn.Addr().String()
}

// reloadMetrics says, on a reload that changes [metrics] listen, that
// the listener is kept as it is (it is bound at start only).
func (m *Main) reloadMetrics(cfg config.Config) {
	if cfg.Metrics.Listen != m.Config.Metrics.Listen {
		m.log.Warn().Str(logging.FieldEvent, logging.EventDaemonMetrics).Str(logging.FieldAddr, m.MetricsAddr()).
			Msg("metrics.listen changed: takes effect at the next start; the listener is kept as it is")
	}
}
