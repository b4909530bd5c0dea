package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/govlog/govlog/log"
)

// SearchResult is one entry of a search answer (wire contract §4,
// GET /v1/search).
type SearchResult = log.SearchResult

// SearchPage is one page of a search: Next is the cursor of the next page
// (the after parameter), "" on the last page.
type SearchPage = log.SearchPage

// Search returns one page of the entries matching the filters of params
// (kind, subject, action, resource, outcome, policy_id, decision_id,
// violation, from, to, after, limit). The results are the server's, not
// verified: export them (Export) for evidence.
func (c *Client) Search(ctx context.Context, params url.Values) (*SearchPage, error) {
	u := c.base.JoinPath("/v1/search")
	u.RawQuery = params.Encode()
	var res *response
	err := c.retry(ctx, http.MethodGet, "/v1/search", func() (retryAfter time.Duration, err error) {
		res, retryAfter, err = c.attempt(ctx, http.MethodGet, u.String(), nil)
		return retryAfter, err
	})
	if err != nil {
		return nil, fmt.Errorf("failed to search: %w", err)
	}
	var p SearchPage
	if err := json.Unmarshal(res.body, &p); err != nil {
		return nil, fmt.Errorf("failed to search: the answer is not a search page: %w", err)
	}
	return &p, nil
}

// Export streams the evidence bundle of the entries matching the filters
// of params (as Search, without after and limit) to w, and returns how
// many bytes it wrote. The bundle is not verified: verifier.Bundle does
// that offline. A failure after the first byte leaves w incomplete.
func (c *Client) Export(ctx context.Context, params url.Values, w io.Writer) (int64, error) {
	u := c.base.JoinPath("/v1/export")
	u.RawQuery = params.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, fmt.Errorf("failed to export: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("failed to export: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
		ae := apiError(resp, body)
		ae.Method, ae.URL = http.MethodGet, u.Redacted()
		return 0, fmt.Errorf("failed to export: %w", ae)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("failed to export: the answer broke off after %d bytes: %w", n, err)
	}
	return n, nil
}
