package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewFloor returns the cheapest server that answers decisions with
// govlogd's HTTP plumbing: the router, error handler and middleware of
// New, and a POST /v1/decisions admitted as a real one is (the body read
// and checked as JSON of at most log.MaxSubmissionBytes, the submitter
// charged, a bounded context) but answered with the next of receipts, in
// turn, without parsing, signing or storing anything. GET /v1/log
// answers logInfo and GET /metrics serves reg.
//
// It is a measurement, not a log: what a decision costs the server on top
// of HTTP is what govlogd spends beyond what this spends per request under
// the same load (internal/floor serves it; docs/performance.md). receipts
// should be real receipts from the log that logInfo describes, so that a
// load generator verifying every receipt accepts them.
//
// With commit, each decision's handler calls commit with the body it read
// and the receipt it is about to answer, and answers only if commit
// returns nil (an error is answered 503 log_unavailable): the floor of a
// durable answer, whose handler waits for a group commit as govlogd's
// does (internal/floor --durable). Without, it answers at once.
//
// With proofs, it also answers the reads of an inclusion-proof load
// (`govlog bench --proofs`) from precomputed bytes: see FloorProofs.
func NewFloor(reg *prometheus.Registry, receipts [][]byte, logInfo []byte, commit func(ctx context.Context, body, receipt []byte) error, proofs *FloorProofs) (http.Handler, error) {
	if len(receipts) == 0 || len(logInfo) == 0 || reg == nil {
		return nil, errors.New("failed to create the floor server: receipt, log info and registry are required")
	}
	m, err := NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := &Server{
		cfg: Config{Registry: reg, Metrics: m, Logger: logger, Clock: time.Now,
			SubmitTimeout: DefaultSubmitTimeout},
		logger:  logger,
		metrics: m,
		routes:  make(map[string]string),
		promHandler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{
			ErrorHandling: promhttp.ContinueOnError,
		}),
	}
	s.echo = s.newEcho()
	var next atomic.Uint64
	s.handle(http.MethodPost, "/v1/decisions", func(c echo.Context, _ query) error {
		ctx, cancel, body, _, err := s.single(c, PermDecisions)
		if err != nil {
			return err
		}
		defer cancel()
		rec := receipts[next.Add(1)%uint64(len(receipts))]
		if commit != nil {
			if err := commit(ctx, body, rec); err != nil {
				return &apiError{http.StatusServiceUnavailable, codeLogUnavailable, "the floor's commit failed: " + err.Error()}
			}
		}
		return c.Blob(http.StatusCreated, echo.MIMEApplicationJSON, rec)
	})
	s.handle(http.MethodGet, "/v1/log", func(c echo.Context, _ query) error {
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, logInfo)
	})
	s.handle(http.MethodGet, "/metrics", s.getMetrics)
	if proofs != nil {
		if len(proofs.Checkpoint) == 0 || len(proofs.Pages) == 0 || len(proofs.Inclusion) == 0 {
			return nil, errors.New("failed to create the floor server: proofs need a checkpoint, entry pages and inclusion proofs")
		}
		s.handle(http.MethodGet, "/v1/checkpoint", func(c echo.Context, _ query) error {
			return c.Blob(http.StatusOK, "text/plain; charset=utf-8", proofs.Checkpoint)
		})
		var page atomic.Uint64
		s.handle(http.MethodGet, "/v1/entries", func(c echo.Context, _ query) error {
			p := proofs.Pages[page.Add(1)%uint64(len(proofs.Pages))]
			return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, p)
		}, "start", "count")
		s.handle(http.MethodGet, "/v1/proofs/inclusion", func(c echo.Context, _ query) error {
			b, ok := proofs.Inclusion[c.QueryString()]
			if !ok {
				return &apiError{http.StatusNotFound, codeNotFound, "the floor has no answer to this query"}
			}
			return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, b)
		}, "index", "leaf_hash", "tree_size")
	}
	return s, nil
}

// FloorProofs are the floor's answers to an inclusion-proof load, taken
// from a real log: the load generator reads the checkpoint, a few pages of
// entries (their leaf hashes let it verify each proof), then asks for the
// proofs of those entries in the checkpoint's tree. The floor answers GET
// /v1/checkpoint with Checkpoint, every GET /v1/entries with the next of
// Pages, in turn, whatever its start (each page holds real entries with
// their real indices, so the load generator asks only for proofs the
// floor holds), and GET /v1/proofs/inclusion with the bytes Inclusion
// holds for its exact query string ("index=I&tree_size=N"), after the
// query is parsed as govlogd parses it; any other query is a 404.
type FloorProofs struct {
	Checkpoint []byte
	Pages      [][]byte
	Inclusion  map[string][]byte
}
