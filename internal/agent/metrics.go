package agent

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the agent's slipstream_* Prometheus metrics, on a registry of their own so
// that several agents can live in one test process.
type metrics struct {
	reg *prometheus.Registry

	cursor        prometheus.Gauge
	streamLast    prometheus.Gauge
	pending       prometheus.Gauge
	lag           prometheus.Gauge
	phase         *prometheus.GaugeVec
	applyDuration prometheus.Histogram
	applied       *prometheus.CounterVec
	cursorExpired prometheus.Counter
	resyncs       *prometheus.CounterVec
	seeds         *prometheus.CounterVec
	watchErrors   prometheus.Counter
	requests      *prometheus.CounterVec
	reqDuration   *prometheus.HistogramVec
	watchers      prometheus.Gauge
	watchCutoffs  *prometheus.CounterVec
	lastExport    prometheus.Gauge
	exports       *prometheus.CounterVec
	quarantined   prometheus.Counter
	statusWrites  *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	g := func(name, help string) prometheus.Gauge {
		x := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "slipstream", Name: name, Help: help})
		f(x)
		return x
	}
	m.cursor = g("applied_cursor", "Stream sequence of the last update applied to the fold.")
	m.streamLast = g("stream_last_sequence", "Last sequence of the bucket's stream, as last seen.")
	m.pending = g("pending_messages", "Messages NATS still has for the watch after the last applied batch.")
	m.lag = g("lag_seconds", "Age of the oldest update of the last applied batch when it was applied.")
	// slipstream_keys and slipstream_store_size_bytes are GaugeFuncs over the store (agent.go).
	m.watchers = g("watch_streams", "Open /v1/watch streams.")
	m.lastExport = g("last_export_success_timestamp_seconds", "Unix time of the last successful export by this agent (0: none yet).")
	m.exports = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "slipstream", Name: "exports_total", Help: "Exports attempted by this agent, by result (success, failure, skipped: another agent holds the lease, the fold is not Live, or a scheduled export found nothing new)."}, []string{"result"})
	f(m.exports)
	for _, r := range []string{exportSuccess, exportFailure, exportSkipped} {
		m.exports.WithLabelValues(r)
	}
	m.phase = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "slipstream", Name: "phase", Help: "1 for the agent's current lifecycle phase, 0 for the others."}, []string{"phase"})
	f(m.phase)
	m.applyDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "slipstream", Name: "batch_apply_duration_seconds", Help: "Time to apply one batch to the store.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)})
	f(m.applyDuration)
	m.applied = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "slipstream", Name: "updates_applied_total", Help: "Updates applied to the fold, by operation."}, []string{"op"})
	f(m.applied)
	m.cursorExpired = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "slipstream", Name: "cursor_expired_total", Help: "Times the resume found NATS no longer holds every update after the cursor."})
	f(m.cursorExpired)
	m.resyncs = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "slipstream", Name: "resyncs_total", Help: "Recoveries from cursor expiry, by mode (full: state-sync replay with diff; seed: from an export)."}, []string{"mode"})
	f(m.resyncs)
	m.seeds = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "slipstream", Name: "seeds_total", Help: "Folds seeded by this agent, by source (export: an empty store at startup or a cursor expiry seeded from an export)."}, []string{"source"})
	f(m.seeds)
	m.seeds.WithLabelValues(seedSourceExport)
	m.resyncs.WithLabelValues("full")
	m.resyncs.WithLabelValues("seed")
	m.watchErrors = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "slipstream", Name: "watch_errors_total", Help: "Watch failures (each is retried with backoff)."})
	f(m.watchErrors)
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "slipstream", Name: "read_requests_total", Help: "Read API requests, by route and status code."}, []string{"route", "code"})
	f(m.requests)
	m.reqDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "slipstream", Name: "read_request_duration_seconds", Help: "Read API latency to the response header (streams: to the first byte), by route.", Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16)}, []string{"route"})
	f(m.reqDuration)
	m.watchCutoffs = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "slipstream", Name: "watch_cutoffs_total", Help: "/v1/watch streams ended by the agent, by reason."}, []string{"reason"})
	f(m.watchCutoffs)
	m.quarantined = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "slipstream", Name: "store_quarantined_total", Help: "Corrupted fold stores moved aside and re-synced from NATS."})
	f(m.quarantined)
	m.statusWrites = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "slipstream", Name: "status_writes_total", Help: "KVFoldNode status writes to the Kubernetes API (cluster mode), by result (success, failure)."}, []string{"result"})
	f(m.statusWrites)
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, p := range AllPhases {
		m.phase.WithLabelValues(string(p))
	}
	for _, op := range []string{"put", "delete", "purge"} {
		m.applied.WithLabelValues(op)
	}
	m.setPhase(PhaseOpening)
	return m
}

func (m *metrics) setPhase(p Phase) {
	for _, q := range AllPhases {
		v := 0.0
		if q == p {
			v = 1
		}
		m.phase.WithLabelValues(string(q)).Set(v)
	}
}
