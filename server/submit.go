package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/labstack/echo/v4"

	"github.com/govlog/govlog/log"
)

// single admits a request that submits one entry: its body read with the
// permission need, the submitter charged one entry of its rate, and a
// context bounded by the submit timeout (cancel it when done).
func (s *Server) single(c echo.Context, need Permission) (context.Context, context.CancelFunc, []byte, string, error) {
	body, who, err := s.submission(c, log.MaxSubmissionBytes, need)
	if err != nil {
		return nil, nil, nil, "", err
	}
	if err := s.charge(c, who, 1); err != nil {
		return nil, nil, nil, "", err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.SubmitTimeout)
	return ctx, cancel, body, who, nil
}

// postDecision handles POST /v1/decisions.
func (s *Server) postDecision(c echo.Context, _ query) error {
	ctx, cancel, body, who, err := s.single(c, PermDecisions)
	if err != nil {
		return err
	}
	defer cancel()
	rec, created, err := s.processDecision(ctx, body, who)
	if err != nil {
		return err
	}
	return writeReceipt(c, createdStatus(created), rec)
}

// postExecution handles POST /v1/executions.
func (s *Server) postExecution(c echo.Context, _ query) error {
	ctx, cancel, body, who, err := s.single(c, PermExecutions)
	if err != nil {
		return err
	}
	defer cancel()
	res, err := s.processExecution(ctx, body, who)
	if err != nil {
		return err
	}
	if res.Violation != "" {
		return writeViolation(c, res.Violation, res.Receipt)
	}
	return writeReceipt(c, createdStatus(res.Created), res.Receipt)
}

// postBatch handles POST /v1/decisions/batch.
func (s *Server) postBatch(c echo.Context, _ query) error {
	body, who, err := s.submission(c, MaxBatchBytes, PermDecisions)
	if err != nil {
		return err
	}
	items, err := parseBatch(body)
	if err != nil {
		return err
	}
	if err := s.charge(c, who, len(items)); err != nil {
		return err
	}
	s.metrics.batchItems.Observe(float64(len(items)))
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.SubmitTimeout)
	defer cancel()
	results, err := s.processBatch(ctx, items, who)
	if err != nil {
		return err
	}
	return writeResults(c, results)
}

func createdStatus(created bool) int {
	if created {
		return http.StatusCreated
	}
	return http.StatusOK
}

// submission checks that the server accepts submissions and that the
// client may do need, and returns the request body and the submitter's
// identity. Credentials are checked before the body is read.
func (s *Server) submission(c echo.Context, limit int64, need Permission) ([]byte, string, error) {
	if err := s.accepting(); err != nil {
		return nil, "", err
	}
	who, err := s.submitter(c, need)
	if err != nil {
		return nil, "", err
	}
	body, err := readJSON(c, limit)
	if err != nil {
		return nil, "", err
	}
	return body, who, nil
}

// readJSON reads a JSON request body of at most limit bytes. The limit is
// enforced on the bytes read, whatever Content-Length says.
func readJSON(c echo.Context, limit int64) ([]byte, error) {
	r := c.Request()
	ct := r.Header.Get(echo.HeaderContentType)
	if ct == "" {
		return nil, &apiError{http.StatusUnsupportedMediaType, codeUnsupportedMediaType, "Content-Type is missing; it must be application/json"}
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != echo.MIMEApplicationJSON {
		return nil, &apiError{http.StatusUnsupportedMediaType, codeUnsupportedMediaType, "Content-Type must be application/json"}
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return nil, &apiError{http.StatusUnsupportedMediaType, codeUnsupportedMediaType, "the charset of application/json must be utf-8"}
	}
	if r.ContentLength > limit {
		return nil, &apiError{http.StatusRequestEntityTooLarge, codeTooLarge, fmt.Sprintf("the body exceeds %d bytes", limit)}
	}
	// Read into a buffer of the announced size (a batch's body is up to
	// MiBs: io.ReadAll grows its buffer from 512 bytes, allocating and
	// copying the body about twice over); bytes.MinRead more, so that the
	// read that finds the end does not grow it.
	buf := bytes.NewBuffer(make([]byte, 0, max(r.ContentLength, 0)+bytes.MinRead))
	_, err = buf.ReadFrom(http.MaxBytesReader(c.Response().Writer, r.Body, limit))
	body := buf.Bytes()
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &apiError{http.StatusRequestEntityTooLarge, codeTooLarge, fmt.Sprintf("the body exceeds %d bytes", limit)}
		}
		return nil, invalidRequest("failed to read the request body")
	}
	return body, nil
}

// processDecision validates and logs one decision; an allow gets its
// artifact. created is false for an identical resubmission, which gets the
// original receipt and the same artifact.
func (s *Server) processDecision(ctx context.Context, body []byte, who string) (*log.Receipt, bool, error) {
	d, err := log.ParseDecision(body, s.cfg.Clock())
	if err != nil {
		return nil, false, err
	}
	return s.submitDecision(ctx, d, who)
}

func (s *Server) submitDecision(ctx context.Context, d *log.Decision, who string) (*log.Receipt, bool, error) {
	res, err := s.log.Submit(ctx, log.DecisionSubmission(d, who))
	return s.decisionReceipt(ctx, d, res, err)
}

// decisionReceipt turns the log's answer to a decision into the answer of
// the API: the receipt, acknowledged (witnesses.go), with the artifact of
// an allow.
func (s *Server) decisionReceipt(ctx context.Context, d *log.Decision, res *log.Result, err error) (*log.Receipt, bool, error) {
	if err != nil {
		return nil, false, submitError(err)
	}
	s.noteTreeSize(res.Checkpoint.Size)
	// Witness sync mode: the receipt and artifact are on a cosigned
	// checkpoint, or there are none (witnesses.go).
	if res, err = s.acknowledge(ctx, res); err != nil {
		return nil, false, err
	}
	rec := *res.Receipt
	if d.Outcome == log.OutcomeAllow {
		if rec.Artifact, err = s.artifact(d, res); err != nil {
			return nil, false, fmt.Errorf("%w: %w", log.ErrUnavailable, err)
		}
	}
	return &rec, res.Created, nil
}

// processExecution validates and logs one execution report. The result's
// Violation is the one the log recorded, if any: the report is logged
// either way.
func (s *Server) processExecution(ctx context.Context, body []byte, who string) (*log.Result, error) {
	e, err := log.ParseExecution(body, s.cfg.Clock())
	if err != nil {
		return nil, err
	}
	res, err := s.log.Submit(ctx, log.ExecutionSubmission(e, who))
	if err != nil {
		return nil, submitError(err)
	}
	s.noteTreeSize(res.Checkpoint.Size)
	if res, err = s.acknowledge(ctx, res); err != nil {
		return nil, err
	}
	return res, nil
}

// submitError makes the errors of Submit that cannot be the client's
// (storage that cannot find what it just acknowledged) unavailability.
func submitError(err error) error {
	if errors.Is(err, log.ErrNotFound) || errors.Is(err, log.ErrOutOfRange) {
		return fmt.Errorf("%w: %w", log.ErrUnavailable, err)
	}
	return err
}

// batchItem is one decision of a batch on its way through processBatch.
type batchItem struct {
	d   *log.Decision // nil when invalid
	rec *log.Receipt
	err error
}

// processBatch judges every item alone and logs the valid ones in one
// SubmitAll: the log appends them together, in order, so that its rule
// book judges the batch as if its items came one by one (a repeated id
// later in the batch is a resubmission, a parent earlier in it counts).
// It returns one receipt or errorBody per item, in order; or an error when
// nothing was acknowledged because the log is unavailable or overloaded.
func (s *Server) processBatch(ctx context.Context, raw []json.RawMessage, who string) ([]any, error) {
	now := s.cfg.Clock()
	items := make([]batchItem, len(raw))
	var (
		subs  []*log.Submission
		valid []int // the item of each submission
	)
	for i, r := range raw {
		d, err := log.ParseDecision(r, now)
		if err != nil {
			items[i].err = err
			continue
		}
		items[i].d = d
		subs = append(subs, log.DecisionSubmission(d, who))
		valid = append(valid, i)
	}
	out, err := s.log.SubmitAll(ctx, subs)
	receipt := func(k int) {
		i := valid[k]
		items[i].rec, _, items[i].err = s.decisionReceipt(ctx, items[i].d, out[k].Result, out[k].Err)
	}
	var wg sync.WaitGroup
	switch {
	case err != nil:
		for _, i := range valid {
			items[i].err = err
		}
	case s.cfg.Witnessing != nil && s.cfg.Witnessing.Sync:
		// The acknowledgements wait for witnesses: all at once, so that
		// the batch waits for them once.
		for k := range valid {
			wg.Go(func() { receipt(k) })
		}
	default:
		// The artifacts of the allows, signed by one worker per CPU (a
		// goroutine per item cost its creation and the growth of its
		// stack for every signature).
		var next atomic.Int64
		for range min(runtime.GOMAXPROCS(0), len(valid)) {
			wg.Go(func() {
				for k := int(next.Add(1) - 1); k < len(valid); k = int(next.Add(1) - 1) {
					receipt(k)
				}
			})
		}
	}
	wg.Wait()

	results := make([]any, len(items))
	acked := 0
	var refusal error // the first unavailability or pushback
	for i, it := range items {
		if it.err == nil {
			results[i] = it.rec
			acked++
			continue
		}
		ae := classify(it.err)
		results[i] = errorBodyOf(ae, it.err)
		switch ae.Code {
		case codeLogUnavailable:
			if refusal == nil || !errors.Is(refusal, log.ErrUnavailable) {
				refusal = it.err
			}
		case codeOverloaded:
			if refusal == nil {
				refusal = it.err
			}
		}
	}
	if acked == 0 && refusal != nil {
		return nil, refusal
	}
	return results, nil
}

// parseBatch parses the batch wrapper {"decisions":[…]} and returns the
// items as written. The wrapper must have exactly the one member, given
// once; a malformed wrapper or more than MaxBatchItems items is
// invalid_request. The items themselves are judged later, one by one.
// splitBatch splits the usual batches; encoding/json the others.
func parseBatch(body []byte) ([]json.RawMessage, error) {
	if items, ok := splitBatch(body); ok {
		return items, nil
	}
	return decodeBatch(body)
}

// decodeBatch is parseBatch with encoding/json's Decoder.
func decodeBatch(body []byte) ([]json.RawMessage, error) {
	malformed := invalidRequest(`the body must be {"decisions":[…]}`)
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, malformed
	}
	var items []json.RawMessage
	seen := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, malformed
		}
		if key, _ := tok.(string); key != "decisions" {
			return nil, invalidRequest(`unknown member %q: the body must be {"decisions":[…]}`, clip(fmt.Sprint(tok)))
		}
		if seen {
			return nil, invalidRequest(`"decisions" given more than once`)
		}
		seen = true
		if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
			return nil, invalidRequest(`"decisions" must be an array`)
		}
		items = []json.RawMessage{}
		for dec.More() {
			if len(items) == MaxBatchItems {
				return nil, invalidRequest("a batch holds at most %d decisions", MaxBatchItems)
			}
			var item json.RawMessage
			if err := dec.Decode(&item); err != nil {
				return nil, invalidRequest("the batch is not well-formed JSON")
			}
			items = append(items, item)
		}
		if tok, err := dec.Token(); err != nil || tok != json.Delim(']') {
			return nil, malformed
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, malformed
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalidRequest("unexpected data after the batch object")
	}
	if !seen {
		return nil, invalidRequest(`"decisions" is required`)
	}
	return items, nil
}
