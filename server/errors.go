package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/govlog/govlog/internal/distributor"
	"github.com/govlog/govlog/log"
)

// Error codes of the wire contract.
const (
	codeInvalidJSON          = "invalid_json"
	codeInvalidDecision      = "invalid_decision"
	codeInvalidExecution     = "invalid_execution"
	codeInvalidRequest       = "invalid_request"
	codeNotFound             = "not_found"
	codeMethodNotAllowed     = "method_not_allowed"
	codeIDConflict           = "id_conflict"
	codeSequenceConflict     = "sequence_conflict"
	codeNotAuthorized        = "not_authorized"
	codeTooLarge             = "too_large"
	codeUnsupportedMediaType = "unsupported_media_type"
	codeUnknownParent        = "unknown_parent"
	codeUnknownDecision      = "unknown_decision"
	codeInvalidRevocation    = "invalid_revocation"
	codeParentDenied         = "parent_denied"
	codeParentRevoked        = "parent_revoked"
	codeNotRevocable         = "not_revocable"
	codeOverloaded           = "overloaded"
	codeLogUnavailable       = "log_unavailable"
)

// Retry-After values, in seconds.
const (
	retryOverloaded  = "1"
	retryUnavailable = "5"
)

// maxMessage bounds the length of an error message.
const maxMessage = 512

// apiError is an error the API answers as is.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// errorBody is the JSON error body (and a batch item's error).
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Details lists every broken field of a submission, the first being
	// the message, at most maxDetails.
	Details []fieldDetail `json:"details,omitempty"`
}

// fieldDetail is one broken field of a submission.
type fieldDetail struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// maxDetails bounds the fields an error body lists: a body may hold
// thousands of unknown members.
const maxDetails = 64

// errorBodyOf is the body of the error err, which classify made ae.
func errorBodyOf(ae *apiError, err error) errorBody {
	b := errorBody{errorDetail{Code: ae.Code, Message: ae.Message}}
	var fes log.FieldErrors
	if errors.As(err, &fes) {
		for _, fe := range fes[:min(len(fes), maxDetails)] {
			b.Error.Details = append(b.Error.Details, fieldDetail{fe.Field, clip(fe.Reason)})
		}
	}
	return b
}

// invalidRequest is a 400 invalid_request. The message is clipped: %q
// of a clipped value can still be four times longer than the value.
func invalidRequest(format string, args ...any) error {
	return &apiError{Status: http.StatusBadRequest, Code: codeInvalidRequest, Message: clip(fmt.Sprintf(format, args...))}
}

// classify maps any error to the status, code and message the API answers.
// It is the one place where errors become HTTP: the error handler and the
// batch items both use it. Whatever it does not recognise is 503
// log_unavailable: never a 500, and never an acknowledgement.
func classify(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return &apiError{http.StatusNotFound, codeNotFound, "no such resource"}
		case http.StatusMethodNotAllowed:
			return &apiError{http.StatusMethodNotAllowed, codeMethodNotAllowed, "method not allowed on this resource"}
		case http.StatusRequestEntityTooLarge:
			return &apiError{http.StatusRequestEntityTooLarge, codeTooLarge, "request too large"}
		case http.StatusUnsupportedMediaType:
			return &apiError{http.StatusUnsupportedMediaType, codeUnsupportedMediaType, "Content-Type must be application/json"}
		}
		if he.Code >= 400 && he.Code < 500 {
			return &apiError{http.StatusBadRequest, codeInvalidRequest, clip(fmt.Sprint(he.Message))}
		}
		return unavailable(err)
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &apiError{http.StatusRequestEntityTooLarge, codeTooLarge, fmt.Sprintf("the body exceeds %d bytes", mbe.Limit)}
	}
	// Availability first: an unavailable log may wrap any other error.
	switch {
	case errors.Is(err, log.ErrPushback):
		return &apiError{http.StatusTooManyRequests, codeOverloaded, "too many submissions are waiting; retry later"}
	case errors.Is(err, log.ErrUnavailable), errors.Is(err, log.ErrFork),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return unavailable(err)
	}
	for _, m := range []struct {
		target error
		status int
		code   string
	}{
		{log.ErrInvalidJSON, http.StatusBadRequest, codeInvalidJSON},
		{log.ErrInvalidDecision, http.StatusBadRequest, codeInvalidDecision},
		{log.ErrInvalidExecution, http.StatusBadRequest, codeInvalidExecution},
		{log.ErrInvalidRevocation, http.StatusBadRequest, codeInvalidRevocation},
		{log.ErrParentDenied, http.StatusConflict, codeParentDenied},
		{log.ErrParentRevoked, http.StatusConflict, codeParentRevoked},
		{log.ErrNotRevocable, http.StatusConflict, codeNotRevocable},
		{log.ErrOutOfRange, http.StatusBadRequest, codeInvalidRequest},
		{log.ErrTooLarge, http.StatusRequestEntityTooLarge, codeTooLarge},
		{log.ErrIDConflict, http.StatusConflict, codeIDConflict},
		{log.ErrSequenceConflict, http.StatusConflict, codeSequenceConflict},
		{log.ErrNotAuthorized, http.StatusConflict, codeNotAuthorized},
		{log.ErrUnknownParent, http.StatusUnprocessableEntity, codeUnknownParent},
		{log.ErrUnknownDecision, http.StatusUnprocessableEntity, codeUnknownDecision},
		{log.ErrNotFound, http.StatusNotFound, codeNotFound},
	} {
		if errors.Is(err, m.target) {
			return &apiError{m.status, m.code, clip(err.Error())}
		}
	}
	return unavailable(err)
}

// unavailable is the answer to every failure that is not the client's: the
// message says nothing of the cause (it is logged instead).
func unavailable(err error) *apiError {
	msg := "the log cannot acknowledge this now; nothing was acknowledged, retrying is safe"
	var nce *distributor.NotCosignedError
	switch {
	case errors.Is(err, errShuttingDown):
		msg = "the server is shutting down; nothing was acknowledged, retrying is safe"
	case errors.As(err, &nce):
		// The policy is public (GET /v1/log): naming its witnesses tells
		// the caller nothing new, and the operator where to look.
		msg = clip(fmt.Sprintf("the witness quorum did not cosign a checkpoint covering entry %d in time: no cosignature from %s; "+
			"nothing was acknowledged, resubmitting is safe", nce.Index, strings.Join(nce.Missing, ", ")))
	}
	return &apiError{http.StatusServiceUnavailable, codeLogUnavailable, msg}
}

// errShuttingDown marks the refusals of a draining server.
var errShuttingDown = errors.New("the server is shutting down")

// clip bounds an error message to maxMessage bytes of valid UTF-8 (and "…").
func clip(s string) string {
	// Invalid UTF-8 first: JSON would turn each bad byte into a 3-byte
	// U+FFFD after the cut (FuzzQueryParams found a message of 512 bytes
	// that decoded to far more). The cut falls on a rune boundary.
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= maxMessage {
		return s
	}
	i := maxMessage
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// handleError is Echo's HTTPErrorHandler: it writes the JSON error body of
// any error a handler, the router or a middleware returned.
func (s *Server) handleError(err error, c echo.Context) {
	ae := classify(err)
	switch {
	case ae.Status >= 500:
		s.logger.Error("request failed", "method", c.Request().Method, "route", c.Path(), "status", ae.Status, "err", err)
	default:
		s.logger.Debug("request refused", "method", c.Request().Method, "route", c.Path(), "status", ae.Status, "code", ae.Code, "err", err)
	}
	if c.Response().Committed {
		return
	}
	switch ae.Status {
	case http.StatusTooManyRequests:
		// A rate limit sets its own (ratelimit.go).
		if c.Response().Header().Get("Retry-After") == "" {
			c.Response().Header().Set("Retry-After", retryOverloaded)
		}
	case http.StatusServiceUnavailable:
		c.Response().Header().Set("Retry-After", retryUnavailable)
	}
	if err := writeJSON(c, ae.Status, errorBodyOf(ae, err)); err != nil {
		s.logger.Debug("failed to write an error response", "err", err)
	}
}

// encodeJSON encodes v without HTML escaping, with a trailing newline.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("failed to encode the response: %w", err)
	}
	return buf.Bytes(), nil
}

func writeJSON(c echo.Context, status int, v any) error {
	b, err := encodeJSON(v)
	if err != nil {
		return err
	}
	return c.Blob(status, echo.MIMEApplicationJSON, b)
}
