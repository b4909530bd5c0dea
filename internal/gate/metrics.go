package gate

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gate's Prometheus collectors, served on the admin
// listener.
type metrics struct {
	allowed       prometheus.Counter
	refused       *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	authorization prometheus.Histogram
	reports       *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	buckets := []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	m := &metrics{
		allowed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "govlog_gate_allowed_total",
			Help: "Requests forwarded to the upstream after a claim the log accepted.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "govlog_gate_refused_total",
			Help: "Requests refused and never forwarded, by reason (the error code of the answer).",
		}, []string{"reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "govlog_gate_request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its answer, by result (allowed or refused).",
			Buckets: buckets,
		}, []string{"result"}),
		authorization: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "govlog_gate_authorization_duration_seconds",
			Help:    "Time from a request's arrival to its forwarding: the gate's own latency (policy, verification, claim).",
			Buckets: buckets,
		}),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "govlog_gate_reports_total",
			Help: "Terminal execution reports, by result: logged, or failed (given up after retries).",
		}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.allowed, m.refused, m.duration, m.authorization, m.reports} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("failed to register the gate's metrics: %w", err)
		}
	}
	return m, nil
}
