package server

import (
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/govlog/govlog/log"
)

// Search and export (GET /v1/search, GET /v1/export): the filters of the
// wire contract, parsed strictly.

// searchFilters are the query parameters both endpoints take.
var searchFilters = []string{"kind", "subject", "action", "resource", "outcome", "policy_id", "decision_id", "violation", "from", "to"}

// Search limits.
const (
	defaultSearchLimit = 100
	maxSearchLimit     = 1000
)

// violationPattern is the syntax of a violation code: snake_case.
var violationPattern = regexp.MustCompile(`^[a-z][a-z_]{0,63}$`)

// parseSearchQuery reads the filters of q into a log.Query.
func parseSearchQuery(q query) (*log.Query, error) {
	var lq log.Query
	text := func(name string, maxChars int, dst *string) error {
		v, ok := q[name]
		if !ok {
			return nil
		}
		if n := utf8.RuneCountInString(v); v == "" || n > maxChars || !utf8.ValidString(v) {
			return invalidRequest("%s: must be 1 to %d characters", name, maxChars)
		}
		*dst = v
		return nil
	}
	for _, f := range []struct {
		name string
		max  int
		dst  *string
	}{
		{"subject", 256, &lq.Subject}, {"action", 256, &lq.Action}, {"resource", 1024, &lq.Resource},
		{"policy_id", 256, &lq.PolicyID}, {"decision_id", 128, &lq.DecisionID},
	} {
		if err := text(f.name, f.max, f.dst); err != nil {
			return nil, err
		}
	}
	if v, ok := q["kind"]; ok {
		switch v {
		case log.SearchDecision, log.SearchExecution, log.SearchRevocation, log.SearchKey:
			lq.Kind = v
		default:
			return nil, invalidRequest("kind: must be decision, execution, revocation or key, got %q", clip(v))
		}
	}
	if v, ok := q["outcome"]; ok {
		if v != log.OutcomeAllow && v != log.OutcomeDeny {
			return nil, invalidRequest("outcome: must be allow or deny, got %q", clip(v))
		}
		lq.Outcome = v
	}
	if v, ok := q["violation"]; ok {
		if !violationPattern.MatchString(v) {
			return nil, invalidRequest("violation: must be any or a violation code, got %q", clip(v))
		}
		lq.Violation = v
	}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"from", &lq.From}, {"to", &lq.To}} {
		v, ok := q[f.name]
		if !ok {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return nil, invalidRequest("%s: must be an RFC 3339 timestamp, got %q", f.name, clip(v))
		}
		*f.dst = t.UTC()
	}
	if !lq.From.IsZero() && !lq.To.IsZero() && !lq.From.Before(lq.To) {
		return nil, invalidRequest("from must be before to")
	}
	return &lq, nil
}

// Cursors: the index at which the next page starts, as 8 big-endian bytes
// in unpadded base64url. Clients treat it as opaque.
func encodeCursor(next uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], next)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func decodeCursor(s string) (uint64, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != 8 || base64.RawURLEncoding.EncodeToString(b) != s {
		return 0, invalidRequest("after: not a cursor of this log")
	}
	return binary.BigEndian.Uint64(b), nil
}

// getSearch handles GET /v1/search.
func (s *Server) getSearch(c echo.Context, q query) error {
	ctx := c.Request().Context()
	lq, err := parseSearchQuery(q)
	if err != nil {
		return err
	}
	limit := uint64(defaultSearchLimit)
	if n, ok, err := q.uint("limit"); err != nil {
		return err
	} else if ok {
		if n < 1 || n > maxSearchLimit {
			return invalidRequest("limit: must be 1 to %d, got %d", maxSearchLimit, n)
		}
		limit = n
	}
	var start uint64
	if v, ok := q["after"]; ok {
		if start, err = decodeCursor(v); err != nil {
			return err
		}
	}
	size, err := s.latestSize(ctx)
	if err != nil {
		return err
	}
	if start > size {
		return invalidRequest("after: not a cursor of this log")
	}
	found, err := s.log.Backend().Search(ctx, lq, start, size, int(limit)+1)
	if err != nil {
		return err
	}
	resp := log.SearchPage{Results: make([]log.SearchResult, 0, min(len(found), int(limit)))}
	for i, f := range found {
		if i == int(limit) {
			resp.Next = encodeCursor(found[i-1].Index + 1)
			break
		}
		sum, err := log.Summarize(f.Leaf)
		if err != nil {
			return err
		}
		resp.Results = append(resp.Results, log.NewSearchResult(f.Index, &sum))
	}
	return writeJSON(c, http.StatusOK, resp)
}
