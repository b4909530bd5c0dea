package distributor

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the distributor's Prometheus collectors:
//
//	govlog_witness_pushes_total{witness,result}    add-checkpoint requests, by witness name and result:
//	                                               cosigned, conflict (a 409, then retried), bad_request,
//	                                               forbidden, unknown_log, inconsistent, refused,
//	                                               invalid_cosignature, unreachable, error
//	govlog_witness_push_duration_seconds{witness}  time to get a checkpoint cosigned
//	govlog_witness_rounds_total{result}            rounds, by result: satisfied or unsatisfied
//	govlog_witness_round_duration_seconds          time from a round's start to its end
//	govlog_witness_cosigned_tree_size              size of the newest checkpoint that satisfies the policy
//
// A nil *metrics records nothing.
type metrics struct {
	reg          prometheus.Registerer
	pushes       *prometheus.CounterVec
	pushSeconds  *prometheus.HistogramVec
	rounds       *prometheus.CounterVec
	roundSeconds prometheus.Histogram
	cosignedSize prometheus.GaugeFunc
	collectors   []prometheus.Collector
}

func newMetrics(reg prometheus.Registerer, d *Distributor) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	buckets := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	m := &metrics{
		reg: reg,
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "govlog_witness_pushes_total",
			Help: "add-checkpoint requests sent to witnesses, by witness and result.",
		}, []string{"witness", "result"}),
		pushSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "govlog_witness_push_duration_seconds",
			Help:    "Time to get a checkpoint cosigned by a witness, 409 retries included.",
			Buckets: buckets,
		}, []string{"witness"}),
		rounds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "govlog_witness_rounds_total",
			Help: "Rounds of pushes of one checkpoint to every witness, by result.",
		}, []string{"result"}),
		roundSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "govlog_witness_round_duration_seconds",
			Help:    "Time from the start of a round to its end (policy satisfied and stored, or every witness answered).",
			Buckets: buckets,
		}),
		cosignedSize: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "govlog_witness_cosigned_tree_size",
			Help: "Size of the newest checkpoint whose cosignatures satisfy the witness policy.",
		}, func() float64 { return float64(d.cosignedSize()) }),
	}
	m.collectors = []prometheus.Collector{m.pushes, m.pushSeconds, m.rounds, m.roundSeconds, m.cosignedSize}
	for _, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			m.unregister()
			return nil, fmt.Errorf("failed to register the witness distribution metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) unregister() {
	if m == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}

// push records one push (took 0: a 409 on the way, not a whole push).
func (m *metrics) push(witness string, err error, took time.Duration) {
	if m == nil {
		return
	}
	m.pushes.WithLabelValues(witness, pushResult(err)).Inc()
	if took > 0 {
		m.pushSeconds.WithLabelValues(witness).Observe(took.Seconds())
	}
}

// pushResult is the result of a push, as the metrics label it: cosigned,
// or the kind of failure.
func pushResult(err error) string {
	var pe *pushError
	switch {
	case err == nil:
		return "cosigned"
	case errors.As(err, &pe):
		return pe.result
	}
	return "error"
}

// round records a finished round.
func (m *metrics) round(r *round) {
	if m == nil {
		return
	}
	result := "unsatisfied"
	if r.satisfied {
		result = "satisfied"
	}
	m.rounds.WithLabelValues(result).Inc()
	m.roundSeconds.Observe(r.finishedAt.Sub(r.started).Seconds())
}
