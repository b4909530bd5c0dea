package server

import (
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus collectors of a log server:
//
//	govlog_http_requests_total{route,code}          requests answered
//	govlog_http_request_duration_seconds{route}     request latency
//	govlog_commit_entries                           submissions per group commit (appended or refused)
//	govlog_commit_duration_seconds                  duration of a group commit
//	govlog_commit_errors_total                      failed group commits
//	govlog_batch_request_items                      items per POST /v1/decisions/batch
//	govlog_tree_size                                size of the latest checkpoint (registered by New)
type Metrics struct {
	requests      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	commitEntries prometheus.Histogram
	commitSeconds prometheus.Histogram
	commitErrors  prometheus.Counter
	batchItems    prometheus.Histogram
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "govlog_http_requests_total",
			Help: "HTTP requests answered, by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "govlog_http_request_duration_seconds",
			Help:    "HTTP request latency, by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route"}),
		commitEntries: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "govlog_commit_entries",
			Help:    "Submissions per group commit, appended or refused (id or sequence conflicts, unknown parents).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "govlog_commit_duration_seconds",
			Help:    "Duration of a group commit (storage transaction and checkpoint signature).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "govlog_commit_errors_total",
			Help: "Group commits that failed (nothing of them was acknowledged).",
		}),
		batchItems: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "govlog_batch_request_items",
			Help:    "Decisions per batch request.",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000},
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.commitEntries, m.commitSeconds, m.commitErrors, m.batchItems} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("failed to register metrics: %w", err)
		}
	}
	return m, nil
}

// ObserveBatch records one group commit. It has the signature of
// log.Config.OnBatch.
func (m *Metrics) ObserveBatch(entries int, took time.Duration, err error) {
	if err != nil {
		m.commitErrors.Inc()
		return
	}
	m.commitEntries.Observe(float64(entries))
	m.commitSeconds.Observe(took.Seconds())
}

// observe is the outermost middleware: it recovers panics, lets the error
// handler answer any error (so the status is known), and records the
// request's metrics.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		s.enter()
		defer s.leave()
		if err := s.recovered(next, c); err != nil {
			c.Error(err)
		}
		route := c.Path()
		if _, ok := s.routes[route]; !ok {
			route = "other"
		}
		s.metrics.requests.WithLabelValues(route, strconv.Itoa(c.Response().Status)).Inc()
		s.metrics.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
		return nil
	}
}

// errPanic is what a panicking handler returns: a 503, never an
// acknowledgement.
type errPanic struct{ v any }

func (e errPanic) Error() string { return fmt.Sprintf("handler panicked: %v", e.v) }

func (s *Server) recovered(next echo.HandlerFunc, c echo.Context) (err error) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.logger.Error("handler panicked", "route", c.Path(), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			err = errPanic{v}
		}
	}()
	return next(c)
}

// getMetrics serves the registry in the Prometheus text format.
func (s *Server) getMetrics(c echo.Context, _ query) error {
	s.promHandler.ServeHTTP(c.Response(), c.Request())
	return nil
}
