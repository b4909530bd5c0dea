package witness

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the witness's Prometheus collectors:
//
//	govlog_witness_updates_total{origin,result}   add-checkpoint requests, by result: cosigned,
//	                                              conflict, fork, bad_proof, inconsistent,
//	                                              forbidden, malformed, unknown_log, error
//	govlog_witness_update_duration_seconds        time to check, sign and store a checkpoint
//	govlog_witness_tree_size{origin}              size of the latest checkpoint cosigned
//
// origin is always a configured origin ("" for requests about others), so
// clients cannot grow the label set. A nil *metrics records nothing.
type metrics struct {
	reg      prometheus.Registerer
	updates  *prometheus.CounterVec
	duration prometheus.Histogram
	treeSize *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer, w *Witness) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		reg: reg,
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "govlog_witness_updates_total",
			Help: "add-checkpoint requests, by log origin and result.",
		}, []string{"origin", "result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "govlog_witness_update_duration_seconds",
			Help:    "Time to check, cosign and durably store a checkpoint.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		treeSize: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "govlog_witness_tree_size",
			Help: "Size of the latest checkpoint cosigned, by log origin.",
		}, []string{"origin"}),
	}
	for _, c := range []prometheus.Collector{m.updates, m.duration, m.treeSize} {
		if err := reg.Register(c); err != nil {
			m.unregister()
			return nil, fmt.Errorf("failed to register the witness metrics: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, origin := range w.origins {
		st, err := w.store.get(ctx, origin)
		if err != nil {
			m.unregister()
			return nil, err
		}
		m.treeSize.WithLabelValues(origin).Set(float64(st.size))
	}
	return m, nil
}

func (m *metrics) unregister() {
	if m == nil {
		return
	}
	m.reg.Unregister(m.updates)
	m.reg.Unregister(m.duration)
	m.reg.Unregister(m.treeSize)
}

// observe records the outcome of an Update about origin ("" when unknown).
func (m *metrics) observe(origin string, err error, took time.Duration, size uint64) {
	if m == nil {
		return
	}
	m.duration.Observe(took.Seconds())
	m.updates.WithLabelValues(origin, result(err)).Inc()
	if err == nil {
		m.treeSize.WithLabelValues(origin).Set(float64(size))
	}
}

// result names the outcome of an Update for the metrics.
func result(err error) string {
	var ie *inconsistencyError
	switch {
	case err == nil:
		return "cosigned"
	case errors.As(err, &ie):
		return ie.kind
	case errors.Is(err, ErrConflict):
		return "conflict"
	case errors.Is(err, ErrInconsistent):
		return "inconsistent"
	case errors.Is(err, ErrNoSignature):
		return "forbidden"
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrOldSize):
		return "malformed"
	case errors.Is(err, ErrUnknownLog):
		return "unknown_log"
	default:
		return "error"
	}
}

// inconsistencyError marks the 422s that are evidence of misbehavior (a
// fork, a bad proof) for the metrics. It wraps ErrInconsistent.
type inconsistencyError struct {
	kind string // "fork" or "bad_proof"
	err  error
}

func (e *inconsistencyError) Error() string { return e.err.Error() }
func (e *inconsistencyError) Unwrap() error { return e.err }
