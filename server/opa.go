package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/govlog/govlog/internal/opa"
)

// OPADecisionLogsPath is where OPA's decision_logs plugin uploads: a
// "services" entry with the server's URL and decision_logs.resource set to
// this path.
const OPADecisionLogsPath = "/v1/opa/decision-logs"

// DefaultOPAMaxUploadBytes bounds an upload, compressed and decompressed.
const DefaultOPAMaxUploadBytes = 32 << 20

// OPAConfig configures the OPA decision-log endpoint. The zero value
// selects the defaults.
type OPAConfig struct {
	// Mapping says where the subject, action and resource are in OPA's
	// input, and whether the raw input is kept (package internal/opa).
	// Default: the zero Mapping (/subject, /action, /resource; digest only).
	Mapping opa.Mapping
	// MaxUploadBytes bounds an upload, compressed and decompressed.
	// Default DefaultOPAMaxUploadBytes.
	MaxUploadBytes int64
}

// opaEvents counts the events of decision-log uploads by result.
type opaEvents struct {
	logged, refused prometheus.Counter
}

// handleOPA registers POST OPADecisionLogsPath and its metric.
//
// An upload is what OPA's decision_logs plugin sends: a JSON array of
// decision events, Content-Type application/json and (OPA always sets it)
// Content-Encoding gzip. Each event becomes one decision (internal/opa),
// logged with the decisions permission of the uploader's identity, all of
// them through the batch path, so an upload shares group commits.
//
// OPA keeps a chunk and uploads it again until it gets a 2xx. So the
// answer is all-or-nothing where retrying can help: 503 (or 429) when any
// event could not be acknowledged now (the ones that were are then
// resubmissions, idempotent by decision_id); 200 once every event is
// logged, was logged before, or can never be logged. An event that can
// never be logged — not mappable (a result that is neither a boolean nor
// an object with a boolean allow, an evaluation error, no path), or
// refused by the log (an invalid id or timestamp, the id of another
// decision) — is left out, logged by govlogd at warn level, counted in
// govlog_opa_events_total{result="refused"} and listed in the answer:
//
//	{"acknowledged": 7, "refused": [{"decision_id": "…", "error": {"code": "invalid_decision", "message": "…"}}]}
//
// Retrying such an event could only block OPA's queue forever. An upload
// that is not a gzip-compressed (or plain) JSON array is 400, larger than
// the limit 413: those are not OPA's uploads.
func (s *Server) handleOPA() error {
	counter := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "govlog_opa_events_total",
		Help: "Events of OPA decision-log uploads, by result: logged (or logged before) or refused (never loggable).",
	}, []string{"result"})
	if err := s.cfg.Registry.Register(counter); err != nil {
		return fmt.Errorf("failed to register the OPA metrics: %w", err)
	}
	ev := &opaEvents{logged: counter.WithLabelValues("logged"), refused: counter.WithLabelValues("refused")}
	if err := s.cfg.OPA.Mapping.Validate(); err != nil {
		return fmt.Errorf("failed to create server: OPA mapping: %w", err)
	}
	s.handle(http.MethodPost, OPADecisionLogsPath, func(c echo.Context, _ query) error {
		return s.postOPADecisionLogs(c, ev)
	})
	return nil
}

// opaRefusal is an event the log will never hold.
type opaRefusal struct {
	DecisionID string      `json:"decision_id"`
	Error      errorDetail `json:"error"`
}

// opaAnswer is the body of a 200 answer to an upload.
type opaAnswer struct {
	Acknowledged int          `json:"acknowledged"`
	Refused      []opaRefusal `json:"refused"`
}

func (s *Server) postOPADecisionLogs(c echo.Context, ev *opaEvents) error {
	if err := s.accepting(); err != nil {
		return err
	}
	who, err := s.submitter(c, PermDecisions)
	if err != nil {
		return err
	}
	body, err := s.readOPAUpload(c)
	if err != nil {
		return err
	}
	events, err := parseOPAEvents(body)
	if err != nil {
		return err
	}
	if err := s.charge(c, who, max(len(events), 1)); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.SubmitTimeout)
	defer cancel()
	ans, err := s.processOPAEvents(ctx, events, who)
	for _, r := range ans.Refused {
		s.logger.Warn("refused an OPA decision-log event: it can never be logged",
			"decision_id", r.DecisionID, "code", r.Error.Code, "message", r.Error.Message, "submitter", who)
	}
	if err != nil {
		return err
	}
	ev.logged.Add(float64(ans.Acknowledged))
	ev.refused.Add(float64(len(ans.Refused)))
	return writeJSON(c, http.StatusOK, ans)
}

// readOPAUpload reads an upload body: application/json, gzip-compressed
// or not, at most MaxUploadBytes either way.
func (s *Server) readOPAUpload(c echo.Context) ([]byte, error) {
	limit := s.cfg.OPA.MaxUploadBytes
	if limit <= 0 {
		limit = DefaultOPAMaxUploadBytes
	}
	r := c.Request()
	if mt, _, err := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType)); err != nil || mt != echo.MIMEApplicationJSON {
		return nil, &apiError{http.StatusUnsupportedMediaType, codeUnsupportedMediaType, "Content-Type must be application/json"}
	}
	var gzipped bool
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "gzip":
		gzipped = true
	case "", "identity":
	default:
		return nil, &apiError{http.StatusUnsupportedMediaType, codeUnsupportedMediaType, fmt.Sprintf("Content-Encoding %q: only gzip is accepted", clip(enc))}
	}
	tooLarge := &apiError{http.StatusRequestEntityTooLarge, codeTooLarge, fmt.Sprintf("the upload exceeds %d bytes", limit)}
	if r.ContentLength > limit {
		return nil, tooLarge
	}
	var rd io.Reader = http.MaxBytesReader(c.Response().Writer, r.Body, limit)
	if gzipped {
		zr, err := gzip.NewReader(rd)
		if err != nil {
			return nil, opaReadError(err, tooLarge)
		}
		defer zr.Close()
		rd = zr
	}
	body, err := io.ReadAll(io.LimitReader(rd, limit+1))
	if err != nil {
		return nil, opaReadError(err, tooLarge)
	}
	if int64(len(body)) > limit {
		return nil, tooLarge
	}
	return body, nil
}

func opaReadError(err, tooLarge error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge
	}
	return invalidRequest("failed to read the upload (it must be gzip-compressed JSON, or plain JSON): %v", err)
}

// parseOPAEvents splits an upload into its events. The upload must be a
// JSON array; each item is kept as written, to be judged alone.
func parseOPAEvents(body []byte) ([]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, invalidRequest("the upload must be a JSON array of decision-log events")
	}
	var events []json.RawMessage
	for dec.More() {
		var ev json.RawMessage
		if err := dec.Decode(&ev); err != nil {
			return nil, invalidRequest("the upload is not well-formed JSON")
		}
		events = append(events, ev)
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim(']') {
		return nil, invalidRequest("the upload is not well-formed JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalidRequest("unexpected data after the array of events")
	}
	return events, nil
}

// processOPAEvents maps every event to a decision and logs the mappable
// ones through processBatch, MaxBatchItems at a time. It returns what was
// acknowledged and refused for good; and an error (the first
// unavailability or pushback) when any event could not be acknowledged
// now, in which case the whole upload is to be sent again.
func (s *Server) processOPAEvents(ctx context.Context, events []json.RawMessage, who string) (opaAnswer, error) {
	refused := make([]*errorDetail, len(events)) // per event, in order
	ids := make([]string, len(events))
	var bodies []json.RawMessage
	var from []int // from[i] is the event of bodies[i]
	for i, raw := range events {
		var ev opa.Event
		var body []byte
		err := json.Unmarshal(raw, &ev)
		if err == nil {
			if host, _, serr := net.SplitHostPort(ev.RequestedBy); serr == nil {
				ev.RequestedBy = host // the client's address, not its port
			}
			body, err = s.cfg.OPA.Mapping.Decision(&ev)
		} else {
			err = fmt.Errorf("%w: the event is not a decision-log event object: %w", opa.ErrUnmappable, err)
		}
		ids[i] = clip(ev.DecisionID)
		if err != nil {
			refused[i] = &errorDetail{Code: codeInvalidDecision, Message: clip(err.Error())}
			continue
		}
		bodies = append(bodies, body)
		from = append(from, i)
	}
	ans := opaAnswer{Refused: []opaRefusal{}}
	var retry error
	for start := 0; start < len(bodies); start += MaxBatchItems {
		end := min(start+MaxBatchItems, len(bodies))
		results, err := s.processBatch(ctx, bodies[start:end], who)
		if err != nil {
			return ans, err
		}
		for i, r := range results {
			eb, failed := r.(errorBody)
			switch {
			case !failed:
				ans.Acknowledged++
			case eb.Error.Code == codeLogUnavailable || eb.Error.Code == codeOverloaded:
				if retry == nil || eb.Error.Code == codeLogUnavailable {
					retry = &apiError{classifyCode(eb.Error.Code), eb.Error.Code, eb.Error.Message}
				}
			default:
				refused[from[start+i]] = &eb.Error
			}
		}
	}
	for i, r := range refused {
		if r != nil {
			ans.Refused = append(ans.Refused, opaRefusal{ids[i], *r})
		}
	}
	return ans, retry
}

// classifyCode is the status of a retryable error code.
func classifyCode(code string) int {
	if code == codeOverloaded {
		return http.StatusTooManyRequests
	}
	return http.StatusServiceUnavailable
}
