package mover

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	moves   *prometheus.CounterVec
	bytes   prometheus.Counter
	staged  prometheus.Gauge
	lag     prometheus.Gauge
	orphan  prometheus.Counter
	orphans prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		moves: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sealgate_mover_moves_total", Help: "Moves from staging to storage by outcome.",
		}, []string{"outcome"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sealgate_mover_bytes_total", Help: "Ciphertext bytes moved to storage regions.",
		}),
		staged: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sealgate_mover_staged_objects", Help: "Staged objects seen by the last pass.",
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sealgate_mover_lag_seconds", Help: "Age of the oldest staged object seen by the last pass.",
		}),
		orphan: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sealgate_mover_orphans_removed_total",
			Help: "Copies the mover deleted because their artifact's record was destroyed while it copied them.",
		}),
		orphans: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sealgate_mover_orphans_staged",
			Help: "Staged objects older than the orphan age whose artifact has no record, seen by the last pass (left in place).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.moves, m.bytes, m.staged, m.lag, m.orphan, m.orphans)
	}
	return m
}
